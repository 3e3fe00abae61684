"""``sine``: a seeded synthetic forecasting set (mixtures of sines plus noise -> next value)."""

from __future__ import annotations

import numpy as np

from edgernn.data.scaling import apply_standard, fit_standard, scaling_record, seeded_split
from edgernn.data.types import Dataset, Split


def load_sine(seed: int = 0, n: int = 1500, window: int = 32, noise: float = 0.05) -> Dataset:
    """``n`` independent series, each 1-3 sines of random period (6-40 steps), phase and
    amplitude plus Gaussian noise; the model sees ``window`` steps and predicts the next one."""
    rng = np.random.default_rng(seed)
    t = np.arange(window + 1, dtype=np.float64)
    series = np.zeros((n, window + 1))
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            period = rng.uniform(6.0, 40.0)
            phase = rng.uniform(0, 2 * np.pi)
            series[i] += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * t / period + phase)
    series += rng.normal(0.0, noise, series.shape)
    X, y = series[:, :window, None].astype(np.float32), series[:, window:].astype(np.float32)
    train, val, test = seeded_split(n, seed)
    x_stats = fit_standard(X[train].reshape(-1, 1))
    y_stats = fit_standard(y[train])
    split = [Split(apply_standard(X[idx], *x_stats), apply_standard(y[idx], *y_stats))
             for idx in (train, val, test)]
    naive = {part: float(np.sqrt(np.mean((y[idx, 0] - X[idx, -1, 0]) ** 2)))
             for part, idx in (("val", val), ("test", test))}
    return Dataset(
        name="sine", task="regression", head="last", train=split[0], val=split[1], test=split[2],
        input_size=1, output_size=1, metric="rmse",
        preprocessing=scaling_record(x_stats, y_stats),
        source={"dataset": "sine", "title": "synthetic sine mixtures", "kind": "synthetic",
                "seed": seed, "n": n, "window": window, "noise": noise, "licence": "generated",
                "baseline": {"name": "last observed value", "val_rmse": naive["val"],
                             "test_rmse": naive["test"]}},
    )
