"""User data as ``.npz``: X (N, T, F) float; y labels, targets or per-step targets; lengths.

Optional ``X_val, y_val, lengths_val, X_test, y_test, lengths_test``; otherwise a seeded
70/15/15 split. Features (and float targets) are standardized with training statistics.
Arrays are read with ``allow_pickle=False``: object arrays are refused, never unpickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edgernn.data.scaling import (
    apply_standard,
    fit_standard,
    scaling_record,
    seeded_split,
    valid_mask,
    zero_padding,
)
from edgernn.data.types import Dataset, Split
from edgernn.runtime.errors import DataError

PARTS = ("", "_val", "_test")


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no .npz file at {path}")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a readable .npz file (not a zip archive of .npy arrays)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except ValueError as exc:  # object arrays need pickle, which is never allowed here
        raise DataError(f"{path}: holds an object array that only pickle could load (refused); "
                        "store plain numeric arrays") from exc
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc


def load_npz(path: str | Path, seed: int = 0) -> Dataset:
    """A Dataset from an .npz file; see the module docstring for the keys."""
    arrays = read_npz(path)
    if "X" not in arrays or "y" not in arrays:
        raise DataError(f"{path}: needs keys 'X' (N, T, F) float and 'y'; it has {sorted(arrays)}")
    for suffix in ("_val", "_test"):
        given = [k for k in (f"X{suffix}", f"y{suffix}") if k in arrays]
        if len(given) == 1:
            raise DataError(f"{path}: {given[0]!r} is given without its pair "
                            f"({'y' if given[0][0] == 'X' else 'X'}{suffix})")
    given = {s: _check(arrays, s, path) for s in PARTS if f"X{s}" in arrays}
    kind = _kind(given[""][1], given[""][0].shape[1], path)
    for suffix, part in given.items():
        _same_layout(given[""], part, kind, suffix, path)
    parts = _fill_missing(given, seed)
    return _dataset(Path(path), parts, kind, len(given) == 3)


def _check(arrays: dict, suffix: str, path) -> tuple:
    X, y = arrays[f"X{suffix}"], arrays[f"y{suffix}"]
    lengths = arrays.get(f"lengths{suffix}")
    if X.ndim != 3 or not np.issubdtype(X.dtype, np.number):
        raise DataError(f"{path}: 'X{suffix}' must be a float array (N, T, F), "
                        f"got {X.dtype} {X.shape}")
    n, t = X.shape[:2]
    if y.shape[:1] != (n,):
        raise DataError(f"{path}: 'y{suffix}' must have N={n} rows like 'X{suffix}' {X.shape}, "
                        f"got {y.shape}")
    if not np.issubdtype(y.dtype, np.number):
        raise DataError(f"{path}: 'y{suffix}' must be numeric, got {y.dtype}")
    for key, arr in ((f"X{suffix}", X), (f"y{suffix}", y)):
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise DataError(f"{path}: {key!r} holds NaN or inf at index {_first_bad(arr)}")
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (n,) or not np.issubdtype(lengths.dtype, np.integer):
            raise DataError(f"{path}: 'lengths{suffix}' must be int (N,) = ({n},), "
                            f"got {lengths.dtype} {lengths.shape}")
        if lengths.min() < 1 or lengths.max() > t:
            raise DataError(f"{path}: 'lengths{suffix}' must lie in 1..T={t}, "
                            f"got {lengths.min()}..{lengths.max()}")
        lengths = lengths.astype(np.int64)
    return X.astype(np.float32), y, lengths


def _first_bad(arr: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])


def _kind(y: np.ndarray, t: int, path) -> str:
    """labels | targets | step_labels | step_targets, from y's shape and dtype."""
    integer = np.issubdtype(y.dtype, np.integer)
    if y.ndim == 1:
        return "labels" if integer else "targets"
    if y.ndim == 2 and not integer:
        return "targets"
    if y.shape[1] != t:
        raise DataError(f"{path}: 'y' {y.dtype} {y.shape} is read as per-step labels and needs "
                        f"shape (N, T={t}); use float (N, O) for targets")
    if y.ndim == 2:
        return "step_labels"
    if integer:
        raise DataError(f"{path}: 'y' {y.shape} per-step targets must be float (N, T, O)")
    return "step_targets"


def _same_layout(ref: tuple, part: tuple, kind: str, suffix: str, path) -> None:
    (X0, y0, _), (X, y, _) = ref, part
    if X.shape[2] != X0.shape[2]:
        raise DataError(f"{path}: 'X{suffix}' has {X.shape[2]} features, 'X' has {X0.shape[2]}")
    per_step = kind.startswith("step")
    if per_step and X.shape[1] != X0.shape[1]:
        raise DataError(f"{path}: 'X{suffix}' has T={X.shape[1]} steps, 'X' has T={X0.shape[1]}")
    if y.ndim != y0.ndim or (kind != "labels" and y.shape[1:] != y0.shape[1:]) or \
            np.issubdtype(y.dtype, np.integer) != np.issubdtype(y0.dtype, np.integer):
        raise DataError(f"{path}: 'y{suffix}' {y.dtype} {y.shape} does not match the layout of "
                        f"'y' {y0.dtype} {y0.shape}")


def _fill_missing(given: dict, seed: int) -> list[tuple]:
    """train, val, test; missing parts come out of the training arrays by a seeded split."""
    train = given[""]
    if "_val" not in given and "_test" not in given:
        return [_take(train, idx) for idx in seeded_split(len(train[0]), seed)]
    missing = "_val" if "_val" not in given else "_test" if "_test" not in given else None
    if missing is None:
        return [train, given["_val"], given["_test"]]
    keep, carved = np.split(np.random.default_rng(seed).permutation(len(train[0])),
                            [len(train[0]) - max(1, round(0.15 * len(train[0])))])
    if len(keep) == 0:
        raise DataError(f"too few sequences ({len(train[0])}) to carve a {missing[1:]} part")
    given = {**given, "": _take(train, keep), missing: _take(train, carved)}
    return [given[s] for s in PARTS]


def _take(part: tuple, idx: np.ndarray) -> tuple:
    X, y, lengths = part
    return X[idx], y[idx], None if lengths is None else lengths[idx]


def _dataset(path: Path, parts: list[tuple], kind: str, all_given: bool) -> Dataset:
    X, y, lengths = parts[0]
    x_stats = fit_standard(X[valid_mask(*X.shape[:2], lengths)])
    per_step = kind.startswith("step")
    regression = kind.endswith("targets")
    y_stats = None
    if regression:
        y_rows = y.reshape(len(y), -1) if not per_step else y[valid_mask(*y.shape[:2], lengths)]
        y_stats = fit_standard(y_rows.reshape(len(y_rows), -1))
    splits = []
    for X_, y_, len_ in parts:
        Xs = zero_padding(apply_standard(X_, *x_stats), len_)
        if regression:
            shape = (len(y_), -1) if not per_step else y_.shape[:2] + (-1,)
            ys = apply_standard(y_.reshape(shape), *y_stats)
            ys = zero_padding(ys, len_) if per_step else ys
        else:  # padded per-step labels (often -1 or -100) become 0; the loss masks them
            ys = zero_padding(y_.astype(np.int64), len_) if per_step else y_.astype(np.int64)
        splits.append(Split(Xs, ys, len_))
    if regression:
        output_size = splits[0].y.shape[-1]
    else:
        output_size = int(max(int(s.y.max()) for s in splits)) + 1
        if min(int(s.y.min()) for s in splits) < 0:
            raise DataError(f"{path}: labels in 'y' must be >= 0")
    return Dataset(
        name=path.stem, task="regression" if regression else "classification",
        head="every" if per_step else "last", train=splits[0], val=splits[1], test=splits[2],
        input_size=X.shape[2], output_size=output_size, metric="rmse" if regression else "accuracy",
        preprocessing=scaling_record(x_stats, y_stats),
        source={"dataset": path.name, "kind": "npz", "layout": kind,
                "split": "given" if all_given else "seeded"},
        class_names=None if regression else [str(i) for i in range(output_size)],
    )
