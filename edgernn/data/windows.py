"""Forecasting windows over a time series, split by time so no future value leaks into training."""

from __future__ import annotations

import numpy as np

from edgernn.data.scaling import FRACTIONS, apply_standard, fit_standard, scaling_record
from edgernn.data.types import Dataset, Split
from edgernn.runtime.errors import DataError

NAIVE = {"last": "last observed value", "zero": "no change"}


def forecast_dataset(
    name: str, series: np.ndarray, target: np.ndarray, *, window: int, horizon: int = 1,
    source: dict | None = None, naive: str = "last", fractions=FRACTIONS,
) -> Dataset:
    """Windows of ``window`` rows of ``series`` (T, F) -> ``target`` ``horizon`` steps later.

    Each window belongs to the part (train, val, test: the first 70 %, next 15 %, last 15 % of
    time) that holds its target; scalers are fitted on the training part's rows only. The
    ``naive`` baseline (``"last"``: repeat the last known target; ``"zero"``: predict 0) is
    scored on val and test and recorded in ``source["baseline"]``.
    """
    series = np.asarray(series, dtype=np.float32)
    target = np.asarray(target, dtype=np.float32)
    if window < 1 or horizon < 1:
        raise DataError(f"window and horizon must be >= 1, got window={window}, horizon={horizon}")
    n_rows = len(series)
    ends = _part_ends(n_rows, fractions)
    starts = np.arange(n_rows - window - horizon + 1)
    target_at = starts + window - 1 + horizon
    part_of = np.searchsorted(ends, target_at, side="right")
    need = _min_rows(window, horizon, fractions)
    if len(starts) == 0 or any((part_of == k).sum() == 0 for k in range(3)):
        raise DataError(
            f"series of {n_rows} rows is too short for window={window} and horizon={horizon}: "
            f"train, val and test each need a window; give at least {need} rows or a smaller window"
        )
    x_stats = fit_standard(series[:ends[0]])
    y_stats = fit_standard(target[:ends[0], None])
    scaled = apply_standard(series, *x_stats)
    scaled_y = apply_standard(target[:, None], *y_stats)
    splits, baseline = [], {"name": NAIVE[naive]}
    for k, part in enumerate(("train", "val", "test")):
        idx = starts[part_of == k]
        X = np.stack([scaled[i:i + window] for i in idx])
        y = scaled_y[idx + window - 1 + horizon]
        splits.append(Split(X, y))
        truth = target[idx + window - 1 + horizon]
        guess = target[idx + window - 1] if naive == "last" else np.zeros_like(truth)
        if part != "train":
            baseline[f"{part}_rmse"] = float(np.sqrt(np.mean((truth - guess) ** 2)))
    return Dataset(
        name=name, task="regression", head="last", train=splits[0], val=splits[1], test=splits[2],
        input_size=series.shape[1], output_size=1, metric="rmse",
        preprocessing=scaling_record(x_stats, y_stats),
        source={**(source or {}), "window": window, "horizon": horizon,
                "split": "by time: first 70 % train, next 15 % val, last 15 % test",
                "baseline": baseline},
    )


def _part_ends(n_rows: int, fractions) -> np.ndarray:
    """Row indices where the train and val parts end."""
    return np.array([int(n_rows * fractions[0]), int(n_rows * (fractions[0] + fractions[1]))])


def _min_rows(window: int, horizon: int, fractions) -> int:
    """The fewest rows that give train, val and test at least one window each."""
    n = window + horizon
    while True:
        e0, e1 = _part_ends(n, fractions)
        if e0 >= window + horizon and n > e1 > e0:
            return n
        n += 1
