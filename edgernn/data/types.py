"""Split and Dataset: what every data source produces and every trainer consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HIGHER_IS_BETTER = {"accuracy": True, "rmse": False, "mae": False, "loss": False, "bpc": False}


@dataclass
class Split:
    """One split, already preprocessed (standardized features or token ids).

    ``X``: (N, T, F) float32, or (N, T) int64 token ids. ``y``: (N,) int64 labels, (N, O) float32
    targets, (N, T) int64 per-step labels or (N, T, O) float32 per-step targets. ``lengths``: (N,)
    valid steps per sequence (X padded at the end), or None when all are full length.
    """

    X: np.ndarray
    y: np.ndarray
    lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.X.shape[0])


@dataclass
class Dataset:
    """Train/val/test splits plus what the model and the bundle need to know about them."""

    name: str
    task: str  # classification | regression | language_model
    head: str  # last | every
    train: Split
    val: Split
    test: Split
    input_size: int  # features per step (embedding width chosen by the trainer for tokens)
    output_size: int
    metric: str  # primary held-out metric, a key of HIGHER_IS_BETTER
    vocab_size: int | None = None
    preprocessing: dict = field(default_factory=dict)  # goes into the bundle manifest
    source: dict = field(default_factory=dict)  # provenance and licence
    class_names: list[str] | None = None

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.metric]
