"""``digits``: UCI handwritten digits (8x8), read row by row as 8 steps of 8 features."""

from __future__ import annotations

import gzip

import numpy as np

from edgernn.data.files import DIGITS_CSV_GZ
from edgernn.data.scaling import apply_standard, fit_standard, scaling_record, seeded_split
from edgernn.data.types import Dataset, Split

SOURCE = {
    "dataset": "digits",
    "title": "Optical Recognition of Handwritten Digits (test set, 1797 images)",
    "origin": "UCI Machine Learning Repository, via scikit-learn's digits.csv.gz",
    "licence": "CC BY 4.0",
}


def load_digits(seed: int = 0) -> Dataset:
    """10-class sequence classification; features standardized per column on the training part."""
    with gzip.open(DIGITS_CSV_GZ, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    X = table[:, :64].reshape(-1, 8, 8)
    y = table[:, 64].astype(np.int64)
    train, val, test = seeded_split(len(y), seed)
    stats = fit_standard(X[train].reshape(-1, 8))
    split = [Split(apply_standard(X[idx], *stats), y[idx]) for idx in (train, val, test)]
    return Dataset(
        name="digits", task="classification", head="last", train=split[0], val=split[1],
        test=split[2], input_size=8, output_size=10, metric="accuracy",
        preprocessing=scaling_record(stats), source={**SOURCE, "seed": seed},
        class_names=[str(d) for d in range(10)],
    )
