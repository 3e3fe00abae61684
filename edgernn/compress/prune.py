"""Unstructured and N:M pruning with fine-tuning, masks held at zero throughout.

Gradual pruning follows the cubic schedule of Zhu & Gupta (2017), "To prune, or not to prune":
``s_t = s_f * (1 - (1 - t / T_p) ** 3)`` at pruning events ``t = dt, 2 dt, ...`` and ``T_p``,
with ``T_p`` two thirds of the fine-tuning steps and ``dt = T_p // 10`` (about ten events); the
last third fine-tunes at ``s_f``.
Magnitude masks are recomputed at each event per gate matrix, and re-applied after every
optimizer step (the training loop's ``after_step`` hook).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from edgernn.compress.masks import apply_masks, magnitude_masks, pattern_masks

SCHEDULES = ("gradual", "oneshot")
PRUNING_EVENTS = 10


@dataclass
class CubicSchedule:
    """Target sparsity at optimizer step ``t`` (counted from 1) on Zhu & Gupta's cubic ramp."""

    final: float
    total_steps: int

    @property
    def ramp_steps(self) -> int:
        return max(1, (2 * self.total_steps) // 3)

    @property
    def every(self) -> int:
        return max(1, self.ramp_steps // PRUNING_EVENTS)

    def __call__(self, step: int) -> float | None:
        """The sparsity to prune to at ``step``, or None when ``step`` is not a pruning event."""
        if step > self.ramp_steps or (step % self.every and step != self.ramp_steps):
            return None
        return self.final * (1.0 - (1.0 - step / self.ramp_steps) ** 3)


class MaskKeeper:
    """The ``after_step(model, step)`` hook: recompute masks on schedule, then re-apply them."""

    def __init__(self, masks: dict[str, torch.Tensor], rebuild: Callable | None = None,
                 schedule: CubicSchedule | None = None):
        self.masks = masks
        self.rebuild = rebuild
        self.schedule = schedule

    def __call__(self, model: torch.nn.Module, step: int) -> None:
        target = self.schedule(step) if self.schedule else None
        if target is not None:
            self.masks = self.rebuild(model, target)
        apply_masks(model, self.masks)


def unstructured_keeper(model, sparsity: float, schedule: str, total_steps: int) -> MaskKeeper:
    """Masks for one-shot pruning now, or a gradual ramp starting from the dense model."""
    if schedule == "oneshot" or total_steps == 0:
        keeper = MaskKeeper(magnitude_masks(model, sparsity))
    else:
        keeper = MaskKeeper(magnitude_masks(model, 0.0), magnitude_masks,
                            CubicSchedule(sparsity, total_steps))
    apply_masks(model, keeper.masks)
    return keeper


def pattern_keeper(model, n: int, m: int) -> MaskKeeper:
    keeper = MaskKeeper(pattern_masks(model, n, m))
    apply_masks(model, keeper.masks)
    return keeper


def final_masks(model, keeper: MaskKeeper, sparsity: float | None) -> dict[str, torch.Tensor]:
    """The masks a finished run must hold: the schedule's end point for a gradual run."""
    return magnitude_masks(model, sparsity) if keeper.schedule else keeper.masks
