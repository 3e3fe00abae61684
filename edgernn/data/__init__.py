"""Datasets: built-in offline sets, user .npz files and CSV time series."""

from edgernn.data.csvfile import load_csv
from edgernn.data.npz import load_npz
from edgernn.data.registry import list_datasets, load_dataset
from edgernn.data.types import HIGHER_IS_BETTER, Dataset, Split

__all__ = ["Dataset", "Split", "HIGHER_IS_BETTER", "load_dataset", "list_datasets", "load_npz",
           "load_csv"]
