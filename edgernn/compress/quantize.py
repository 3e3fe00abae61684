"""Weight encodings of a variant: int8 (per channel or per tensor), fp16, and mixed precision.

Every 2-D matrix (input, recurrent, head and embedding weights) is quantized symmetrically to
int8; vectors (biases) stay fp32. A matrix holding zeros is stored in whichever of the dense or
sparse (bitmask + values) encodings is smaller, so a pruned variant's size reflects its sparsity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from edgernn.runtime import weights as W


def matrix_names(tensors: dict[str, np.ndarray]) -> list[str]:
    return sorted(name for name, t in tensors.items() if np.ndim(t) == 2)


def encode_tensors(
    tensors: dict[str, np.ndarray], *, int8: bool = False, per_channel: bool = True,
    fp16: bool = False, keep_fp32: Iterable[str] = (),
) -> dict[str, np.ndarray]:
    """Bundle entries of a variant; ``keep_fp32`` names matrices left out of int8."""
    keep = set(keep_fp32)
    out: dict[str, np.ndarray] = {}
    for name, w in tensors.items():
        quantize = int8 and np.ndim(w) == 2 and name not in keep
        out.update(_smallest(name, w, int8=quantize, per_channel=per_channel, fp16=fp16))
    return out


def _smallest(name: str, w: np.ndarray, **kwargs) -> dict[str, np.ndarray]:
    dense = W.encode(name, w, **kwargs)
    if np.ndim(w) != 2 or np.all(w != 0):
        return dense
    sparse = W.encode(name, w, sparse=True, **kwargs)
    return sparse if _nbytes(sparse) < _nbytes(dense) else dense


def _nbytes(entries: dict[str, np.ndarray]) -> int:
    return sum(a.nbytes for a in entries.values())


@dataclass
class Fallback:
    """The outcome of a mixed-precision search under an accuracy budget."""

    entries: dict[str, np.ndarray]
    metrics: dict
    drop: float
    fallback: list[str]
    met: bool
    sensitivity: dict[str, float] = field(default_factory=dict)


def fallback_search(
    tensors: dict[str, np.ndarray], max_drop: float, *, per_channel: bool,
    score: Callable[[dict], dict], drop: Callable[[dict], float],
    sensitivity_drop: Callable[[dict], float],
) -> Fallback:
    """Int8 with the most sensitive matrices kept in fp32, as few as meet ``max_drop``.

    ``score(entries)`` gives held-out metrics of a variant; ``drop(metrics)`` its worst drop
    against fp32 on every split (what the budget is checked against); ``sensitivity_drop`` the
    validation drop used to rank matrices, each quantized alone. Kept matrices are added in
    order of sensitivity until the budget is met; at least one matrix stays int8. If no mix meets
    the budget the one with the smallest drop is returned with ``met=False``.
    """
    names = matrix_names(tensors)
    sensitivity = {
        name: sensitivity_drop(score(encode_tensors(
            tensors, int8=True, per_channel=per_channel, keep_fp32=set(names) - {name})))
        for name in names
    }
    order = sorted(names, key=lambda n: sensitivity[n], reverse=True)
    best = None
    for k in range(len(order)):
        entries = encode_tensors(tensors, int8=True, per_channel=per_channel, keep_fp32=order[:k])
        metrics = score(entries)
        worst = drop(metrics)
        candidate = Fallback(entries, metrics, worst, sorted(order[:k]), worst <= max_drop,
                             sensitivity)
        if candidate.met:
            return candidate
        if best is None or candidate.drop < best.drop:
            best = candidate
    return best
