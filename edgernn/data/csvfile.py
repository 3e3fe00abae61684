"""CSV time series: named numeric columns -> a forecasting Dataset (split by time)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from edgernn.data.types import Dataset
from edgernn.data.windows import forecast_dataset
from edgernn.runtime.errors import DataError


def read_columns(path: str | Path, columns: list[str]) -> np.ndarray:
    """The named columns as a (rows, len(columns)) float32 array; every cell must be a number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no CSV file at {path}")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise DataError(f"{path}: empty file; expected a header row of column names")
        header = [h.strip() for h in header]
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(f"{path}: unknown column(s) {missing}; the file has {header}")
        where = [header.index(c) for c in columns]
        rows = [[_number(path, row, i, c, line) for i, c in zip(where, columns)]
                for line, row in enumerate(reader, start=2) if row]
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    return np.asarray(rows, dtype=np.float32)


def _number(path: Path, row: list[str], i: int, column: str, line: int) -> float:
    cell = row[i].strip() if i < len(row) else ""
    try:
        value = float(cell)
    except ValueError:
        raise DataError(
            f"{path}: column {column!r} is not numeric: line {line} holds {cell!r}"
        ) from None
    if not math.isfinite(value):
        raise DataError(f"{path}: column {column!r} holds {cell!r} (NaN/inf) at line {line}; "
                        "fill or drop the gap first")
    return value


def load_csv(path: str | Path, target: str, features: list[str] | None = None,
             window: int = 24, horizon: int = 1, difference: bool = False) -> Dataset:
    """Forecast ``target`` ``horizon`` rows ahead from ``window`` rows of ``features``.

    ``features`` defaults to the target column alone. Rows are in time order. ``difference``
    replaces every column by its change from the previous row: a trending series then stays in
    the range seen in training, and the target is the change (the naive baseline is "no change").
    """
    features = list(features) if features else [target]
    columns = features + ([target] if target not in features else [])
    table = read_columns(path, columns)
    if difference:
        table = np.diff(table, axis=0)
    series = table[:, [columns.index(f) for f in features]]
    return forecast_dataset(
        Path(path).stem, series, table[:, columns.index(target)], window=window, horizon=horizon,
        naive="zero" if difference else "last",
        source={"dataset": Path(path).name, "kind": "csv", "target": target, "features": features,
                "differenced": difference},
    )
