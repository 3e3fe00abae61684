"""Gate orders: the one place PyTorch and ONNX recurrent weights are converted into each other.

PyTorch stacks gates as LSTM ``i, f, g, o`` and GRU ``r, z, n``; ONNX as LSTM ``i, o, f, c`` and
GRU ``z, r, h``. The RNN cell has a single gate. Gate blocks are stacked along axis 0 of weight
matrices (gates*hidden, in) and bias vectors (gates*hidden,).
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError

# TORCH_TO_ONNX[cell][k] = index of the torch gate block that becomes ONNX gate block k
TORCH_TO_ONNX = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}
ONNX_TO_TORCH = {cell: tuple(int(i) for i in np.argsort(p)) for cell, p in TORCH_TO_ONNX.items()}


def _permute(w: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    w = np.asarray(w)
    if w.shape[0] % len(order):
        raise ConfigError(f"axis 0 of size {w.shape[0]} does not split into {len(order)} gates")
    blocks = np.split(w, len(order), axis=0)
    return np.concatenate([blocks[i] for i in order], axis=0)


def _order(cell: str, table: dict) -> tuple[int, ...]:
    if cell not in table:
        raise ConfigError(f"unknown cell {cell!r}; choose one of {', '.join(table)}")
    return table[cell]


def torch_to_onnx(w: np.ndarray, cell: str) -> np.ndarray:
    """Reorder gate blocks (axis 0) from PyTorch order to ONNX order."""
    return _permute(w, _order(cell, TORCH_TO_ONNX))


def onnx_to_torch(w: np.ndarray, cell: str) -> np.ndarray:
    """Reorder gate blocks (axis 0) from ONNX order to PyTorch order."""
    return _permute(w, _order(cell, ONNX_TO_TORCH))


def onnx_layer_params(tensors: dict[str, np.ndarray], cell: str, layer: int,
                      suffix: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX ``W`` (gates*H, in), ``R`` (gates*H, H), ``B`` (2*gates*H,) of one torch layer.

    ``tensors`` uses torch state_dict names (``rnn.weight_ih_l{k}{suffix}`` ...); ``suffix`` is
    ``"_reverse"`` for the backward direction. Missing biases count as zeros.
    """
    w_ih = tensors[f"rnn.weight_ih_l{layer}{suffix}"]
    w_hh = tensors[f"rnn.weight_hh_l{layer}{suffix}"]
    zeros = np.zeros(w_ih.shape[0], w_ih.dtype)
    b_ih = tensors.get(f"rnn.bias_ih_l{layer}{suffix}", zeros)
    b_hh = tensors.get(f"rnn.bias_hh_l{layer}{suffix}", zeros)
    return (torch_to_onnx(w_ih, cell), torch_to_onnx(w_hh, cell),
            np.concatenate([torch_to_onnx(b_ih, cell), torch_to_onnx(b_hh, cell)]))
