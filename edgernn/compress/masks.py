"""Pruning masks over the recurrent matrices: magnitude per gate block and N:M patterns.

Masks are float tensors (1 keep, 0 prune) keyed by parameter name (``rnn.weight_ih_l0`` ...) and
held outside the module: ``torch.nn.utils.prune`` re-registers RNN weights as plain attributes,
which breaks the cuDNN/oneDNN flat-weight view, so we multiply in place instead.
"""

from __future__ import annotations

import re

import torch

from edgernn.runtime.errors import ConfigError

PRUNABLE = re.compile(r"^rnn\.weight_(ih|hh)_l\d+(_reverse)?$")


def prunable_names(model: torch.nn.Module) -> list[str]:
    """The input and recurrent weight matrices of every layer and direction."""
    return [name for name, _ in model.named_parameters() if PRUNABLE.match(name)]


def parse_pattern(pattern: str) -> tuple[int, int]:
    """``"2:4"`` -> (2, 4); anything but N:M with 0 < N < M raises ConfigError."""
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", str(pattern))
    if not match:
        raise ConfigError(f"pattern {pattern!r} is not N:M (for example 2:4)")
    n, m = int(match.group(1)), int(match.group(2))
    if not 0 < n < m:
        raise ConfigError(f"pattern {pattern!r} needs 0 < N < M (keep N of every M weights)")
    return n, m


def check_sparsity(sparsity: float) -> float:
    if not 0.0 <= float(sparsity) < 1.0:
        raise ConfigError(f"sparsity must be in [0, 1), got {sparsity}")
    return float(sparsity)


def magnitude_mask(weight: torch.Tensor, sparsity: float, gates: int) -> torch.Tensor:
    """Zero the smallest-|w| fraction ``sparsity`` of each gate's block of rows separately."""
    blocks = weight.detach().abs().reshape(gates, -1)
    k = int(round(sparsity * blocks.shape[1]))
    mask = torch.ones_like(blocks)
    if k > 0:
        mask.scatter_(1, blocks.argsort(dim=1, stable=True)[:, :k], 0.0)
    return mask.reshape(weight.shape)


def n_of_m_mask(weight: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep the ``n`` largest |w| in every ``m`` consecutive weights of a row (input dimension).

    A trailing partial group keeps at most ``n`` of its weights.
    """
    rows, cols = weight.shape
    pad = (-cols) % m
    mag = torch.nn.functional.pad(weight.detach().abs(), (0, pad), value=-1.0)
    groups = mag.reshape(rows, -1, m)
    keep = torch.zeros_like(groups)
    keep.scatter_(2, groups.topk(n, dim=2).indices, 1.0)
    keep = keep * (groups >= 0)
    return keep.reshape(rows, -1)[:, :cols].contiguous()


def magnitude_masks(model: torch.nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    gates = model.config.gates
    return {name: magnitude_mask(params[name], sparsity, gates) for name in prunable_names(model)}


def pattern_masks(model: torch.nn.Module, n: int, m: int) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {name: n_of_m_mask(params[name], n, m) for name in prunable_names(model)}


@torch.no_grad()
def apply_masks(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the pruned weights in place and re-flatten the RNN weights."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        params[name].mul_(mask)
    model.rnn.flatten_parameters()
