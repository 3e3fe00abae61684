"""Held-out scoring of variants on the val and test splits the fp32 model never trained on.

Every variant is judged by the torch model holding its decoded weights (``decode_all``): the
weight-only semantics every runtime backend reproduces.
"""

from __future__ import annotations

import numpy as np

from edgernn.models import RecurrentModel
from edgernn.runtime import weights as W
from edgernn.runtime.config import ModelConfig

SPLITS = ("val", "test")


class HeldOut:
    """Scores models on the val and test splits of one dataset, and compares them with fp32."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.metric = dataset.metric
        self.higher_is_better = dataset.higher_is_better

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
