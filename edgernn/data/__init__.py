"""Datasets: built-in offline sets, user .npz files and CSV time series."""

from edgernn.data.types import HIGHER_IS_BETTER, Dataset, Split

__all__ = ["Dataset", "Split", "HIGHER_IS_BETTER"]
