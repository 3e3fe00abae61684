"""Standardization fitted on the training part only, and seeded index splits."""

from __future__ import annotations

import numpy as np

from edgernn.runtime.errors import DataError

FRACTIONS = (0.7, 0.15, 0.15)  # train / val / test


def valid_mask(n: int, t: int, lengths: np.ndarray | None) -> np.ndarray:
    """(N, T) bool: True on the steps that hold data (X is padded at the end)."""
    if lengths is None:
        return np.ones((n, t), dtype=bool)
    return np.arange(t)[None, :] < np.asarray(lengths)[:, None]


def fit_standard(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std of a (rows, columns) array; a constant column gets std 1."""
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def apply_standard(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((np.asarray(values, dtype=np.float32) - mean) / std).astype(np.float32)


def zero_padding(X: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Set the padded steps of (N, T, ...) back to zero after scaling."""
    if lengths is None:
        return X
    mask = valid_mask(X.shape[0], X.shape[1], lengths)
    return np.where(mask.reshape(mask.shape + (1,) * (X.ndim - 2)), X, 0).astype(X.dtype)


def seeded_split(n: int, seed: int, fractions=FRACTIONS) -> tuple[np.ndarray, ...]:
    """Shuffled train/val/test index arrays; each part gets at least one item."""
    if n < 3:
        raise DataError(f"need at least 3 sequences to split into train/val/test, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * fractions[1])))
    n_test = max(1, int(round(n * fractions[2])))
    n_train = n - n_val - n_test
    return order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]


def scaling_record(input_stats=None, target_stats=None) -> dict:
    """The bundle's ``preprocessing`` entries for feature and target standardization."""
    record = {}
    if input_stats is not None:
        record["input_mean"], record["input_std"] = (s.tolist() for s in input_stats)
    if target_stats is not None:
        record["target_mean"], record["target_std"] = (s.tolist() for s in target_stats)
    return record
