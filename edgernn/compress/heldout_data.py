"""The dataset a bundle was trained on, rebuilt with the same split for held-out scoring.

A built-in dataset is reloaded by the name and training seed the bundle records; a user's .npz
or CSV file is read again with the loader options recorded in ``provenance["dataset"]``. Either
way the result must reproduce the bundle's preprocessing statistics (fitted on the training
part), or the split is not the one the model was trained on and scoring stops.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgernn.runtime.bundle import Bundle
from edgernn.runtime.errors import BundleError, DataError


def training_data(bundle: Bundle, data: str | Path | None = None, dataset=None):
    """The bundle's dataset: ``dataset`` as given, re-read from file ``data``, or built in."""
    if dataset is None:
        dataset = _from_file(bundle, Path(data)) if data is not None else _built_in(bundle)
    if not _same(dataset.preprocessing, bundle.preprocessing):
        raise BundleError(
            f"{bundle.path}: dataset {dataset.name!r} has other preprocessing statistics than "
            "the bundle records, so its held-out split is not the one the model was trained on"
        )
    return dataset


def _provenance(bundle: Bundle) -> tuple[dict, int]:
    provenance = bundle.manifest.get("provenance") or {}
    seed = int((provenance.get("train_config") or {}).get("seed", 0))
    return provenance.get("dataset") or {}, seed


def _built_in(bundle: Bundle):
    from edgernn.data import load_dataset

    source, seed = _provenance(bundle)
    name = (bundle.manifest.get("task") or {}).get("dataset")
    if not name:
        raise BundleError(
            f"{bundle.path}: the manifest does not say which dataset the model was trained on "
            "(task.dataset), so variants cannot be scored on held-out data; pass the Dataset "
            "to compress_bundle(dataset=...)"
        )
    if source.get("kind") in ("npz", "csv"):
        raise DataError(
            f"{bundle.path} was trained on your file {source.get('dataset')!r}; give it again "
            "(--data FILE, or compress_bundle(data=FILE)) to score variants on its held-out split"
        )
    return load_dataset(name, seed=seed)


def _from_file(bundle: Bundle, path: Path):
    from edgernn.data import load_csv, load_npz

    source, seed = _provenance(bundle)
    if path.suffix == ".npz":
        return load_npz(path, seed=seed)
    if source.get("kind") != "csv":
        raise DataError(f"{path}: give the .npz file, or the CSV file, the bundle was trained on")
    return load_csv(path, source["target"], source.get("features"), window=source["window"],
                    horizon=source["horizon"], difference=bool(source.get("differenced")))


def _same(a, b) -> bool:
    """Equal preprocessing records, numbers compared to float32 precision."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float | int) and isinstance(b, float | int):
        return bool(np.isclose(a, b, rtol=1e-5, atol=1e-7))
    return a == b
