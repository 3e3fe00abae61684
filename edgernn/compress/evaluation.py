"""Held-out scoring of variants on the dataset a bundle was trained on.

The dataset is reloaded by the name and seed the bundle records, which rebuilds the same seeded
split, so "test" is the data the fp32 model never saw. Every variant is judged by the torch model
holding its decoded weights (``decode_all``), the semantics every runtime backend reproduces.
"""

from __future__ import annotations

import numpy as np

from edgernn.models import RecurrentModel
from edgernn.runtime import weights as W
from edgernn.runtime.bundle import Bundle
from edgernn.runtime.config import ModelConfig
from edgernn.runtime.errors import BundleError

SPLITS = ("val", "test")


class HeldOut:
    """Scores models on the val and test splits of one dataset, and compares them with fp32."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.metric = dataset.metric
        self.higher_is_better = dataset.higher_is_better

    @classmethod
    def for_bundle(cls, bundle: Bundle) -> HeldOut:
        """Reload the bundle's built-in dataset and check it is the split it was trained on."""
        from edgernn.data import load_dataset

        name, seed = dataset_of(bundle)
        dataset = load_dataset(name, seed=seed)
        if not _same(dataset.preprocessing, bundle.preprocessing):
            raise BundleError(
                f"{bundle.path}: reloading dataset {name!r} (seed {seed}) gives other "
                "preprocessing statistics than the bundle records, so its held-out split is not "
                "the one the model was trained on; pass the Dataset to compress_bundle(dataset=...)"
            )
        return cls(dataset)

    def metrics(self, model: RecurrentModel) -> dict:
        from edgernn.train import evaluate

        model.eval()
        return {s: evaluate(model, getattr(self.dataset, s), self.dataset) for s in SPLITS}

    def score(self, config: ModelConfig, entries: dict[str, np.ndarray]) -> dict:
        """Metrics of the model holding the decoded weights of encoded ``entries``."""
        return self.metrics(RecurrentModel.from_numpy(config, W.decode_all(entries)))

    def value(self, metrics: dict, split: str = "test") -> float:
        return float(metrics[split][self.metric])

    def delta(self, metrics: dict, base: dict, split: str = "test") -> float:
        """Metric minus fp32's (signed, in the metric's units)."""
        return self.value(metrics, split) - self.value(base, split)

    def drop(self, metrics: dict, base: dict, split: str = "test") -> float:
        """How much worse than fp32 (positive = worse), whichever way the metric points."""
        delta = self.delta(metrics, base, split)
        return -delta if self.higher_is_better else delta

    def worst_drop(self, metrics: dict, base: dict) -> float:
        return max(self.drop(metrics, base, split) for split in SPLITS)


def dataset_of(bundle: Bundle) -> tuple[str, int]:
    """The dataset name and split seed a bundle was trained on."""
    manifest = bundle.manifest
    name = (manifest.get("task") or {}).get("dataset")
    if not name:
        raise BundleError(
            f"{bundle.path}: the manifest does not say which dataset the model was trained on "
            "(task.dataset), so variants cannot be scored on held-out data; pass the Dataset to "
            "compress_bundle(dataset=...)"
        )
    provenance = manifest.get("provenance") or {}
    seed = (provenance.get("train_config") or {}).get("seed", 0)
    return name, int(seed)


def _same(a, b) -> bool:
    """Equal preprocessing records, numbers compared to float32 precision."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float | int) and isinstance(b, float | int):
        return bool(np.isclose(a, b, rtol=1e-5, atol=1e-7))
    return a == b
