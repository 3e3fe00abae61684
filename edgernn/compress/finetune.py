"""Fine-tuning after pruning, through the training loop with its ``after_step`` hook."""

from __future__ import annotations

import dataclasses
import math

from edgernn.models import RecurrentModel
from edgernn.train import TrainConfig, fit

LR_FACTOR = 1 / 3  # fine-tuning runs at a third of the training learning rate


def finetune_config(train_config: dict | None, epochs: int, seed: int) -> TrainConfig:
    """The bundle's training settings, with a lower learning rate and no checkpoint."""
    base = TrainConfig(**{k: v for k, v in (train_config or {}).items()
                          if k in {f.name for f in dataclasses.fields(TrainConfig)}})
    return dataclasses.replace(base, epochs=max(epochs, 1), lr=base.lr * LR_FACTOR, seed=seed,
                               patience=0, checkpoint=None, resume=False)


def steps_per_epoch(dataset, config: TrainConfig) -> int:
    return math.ceil(len(dataset.train) / config.batch_size)


def finetune(model: RecurrentModel, dataset, config: TrainConfig, epochs: int, after_step=None,
             progress: bool = False) -> RecurrentModel:
    """Train ``epochs`` more epochs; with ``after_step`` (masks) the last epoch's weights are kept.

    ``fit`` restores its best validation epoch; under a pruning schedule an earlier epoch may
    hold fewer zeros than the target, so masked runs go one epoch per ``fit`` call, with the
    hook's step counter carried over.
    """
    if epochs == 0:
        return model
    if after_step is None:
        return fit(model, dataset, dataclasses.replace(config, epochs=epochs),
                   progress=progress).model
    per_epoch = steps_per_epoch(dataset, config)
    for epoch in range(epochs):
        def hook(m, step, offset=epoch * per_epoch):
            after_step(m, offset + step)

        one = dataclasses.replace(config, epochs=1, seed=config.seed + epoch)
        model = fit(model, dataset, one, after_step=hook, progress=progress).model
    return model
