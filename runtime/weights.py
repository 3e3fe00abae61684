"""Tensor encodings inside a bundle's safetensors files, and their decoding to numpy.

A tensor named ``W`` is stored in one of these forms (keys are suffixes of ``W``):

- dense float: ``W`` (float32 or float16);
- dense int8: ``W.q`` int8 ``(rows, cols)`` and ``W.scale`` float32 ``(rows,)`` per output
  channel (or ``(1,)`` per tensor), symmetric: ``W ~= W.q * W.scale[:, None]``;
- sparse: ``W.mask`` (``np.packbits`` of the nonzero mask, row-major), ``W.shape`` int64, and the
  nonzero values in row-major order as ``W.values`` (float) or ``W.q`` + ``W.scale`` (int8).

Everything here is numpy-only so devices can read bundles without torch.
"""

from __future__ import annotations

import numpy as np

from .errors import BundleError

SUFFIXES = (".q", ".scale", ".mask", ".shape", ".values")


def quantize_symmetric(w: np.ndarray, per_channel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantization of a 2-D matrix; per output row by default."""
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"quantize_symmetric needs a 2-D matrix, got shape {w.shape}")
    amax = np.abs(w).max(axis=1) if per_channel else np.array([np.abs(w).max()], np.float32)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale[:, None] if per_channel else w / scale[0]), -127, 127)
    return q.astype(np.int8), scale


def dequantize(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * (scale[:, None] if scale.shape[0] == q.shape[0] else scale[0])


def encode(
    name: str, w: np.ndarray, *, int8: bool = False, per_channel: bool = True,
    sparse: bool = False, fp16: bool = False,
) -> dict[str, np.ndarray]:
    """Encode one tensor as bundle entries. int8 and sparse apply to 2-D matrices only."""
    w = np.asarray(w, dtype=np.float32)
    if (int8 or sparse) and w.ndim != 2:
        raise ValueError(f"{name}: int8/sparse encodings need a 2-D matrix, got {w.shape}")
    if not sparse:
        if int8:
            q, scale = quantize_symmetric(w, per_channel)
            return {f"{name}.q": q, f"{name}.scale": scale}
        return {name: w.astype(np.float16) if fp16 else w}
    mask = w != 0
    out = {f"{name}.mask": np.packbits(mask.ravel()), f"{name}.shape": np.array(w.shape, np.int64)}
    if int8:
        # scales from the full rows so zeros stay exact and rows keep their range
        q, scale = quantize_symmetric(w, per_channel)
        out.update({f"{name}.q": q[mask], f"{name}.scale": scale})
    else:
        out[f"{name}.values"] = w[mask].astype(np.float16 if fp16 else np.float32)
    return out


def base_names(entries: dict[str, np.ndarray]) -> list[str]:
    """Tensor names, with the encoding suffixes stripped, in sorted order."""
    names = set()
    for key in entries:
        for suffix in SUFFIXES:
            stem = key[: -len(suffix)]
            if key.endswith(suffix) and stem and _is_encoded(entries, stem):
                names.add(stem)
                break
        else:
            names.add(key)
    return sorted(names)


def _is_encoded(entries: dict, name: str) -> bool:
    return f"{name}.q" in entries or f"{name}.mask" in entries


def encoding_of(entries: dict[str, np.ndarray], name: str) -> str:
    """One of 'fp32', 'fp16', 'int8', 'sparse-fp32', 'sparse-fp16', 'sparse-int8'."""
    if f"{name}.mask" in entries:
        if f"{name}.q" in entries:
            return "sparse-int8"
        return "sparse-fp16" if entries[f"{name}.values"].dtype == np.float16 else "sparse-fp32"
    if f"{name}.q" in entries:
        return "int8"
    if name not in entries:
        raise BundleError(f"tensor {name!r} is not in the weights file")
    return "fp16" if entries[name].dtype == np.float16 else "fp32"


def decode_int8(entries: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(int8 dense matrix, per-row float32 scales) of an int8 tensor, sparse or dense."""
    q, scale = entries[f"{name}.q"], entries[f"{name}.scale"]
    if f"{name}.mask" in entries:
        q = _scatter(entries, name, q)
    if scale.shape[0] == 1:
        scale = np.full(q.shape[0], scale[0], np.float32)
    return q, scale.astype(np.float32)


def decode(entries: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The float32 dense value of tensor ``name``, whatever its encoding."""
    kind = encoding_of(entries, name)
    if kind.endswith("int8"):
        q, scale = decode_int8(entries, name)
        return q.astype(np.float32) * scale[:, None]
    if kind.startswith("sparse"):
        return _scatter(entries, name, entries[f"{name}.values"]).astype(np.float32)
    return entries[name].astype(np.float32)


def decode_all(entries: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: decode(entries, name) for name in base_names(entries)}


def _scatter(entries: dict, name: str, values: np.ndarray) -> np.ndarray:
    shape = tuple(int(d) for d in entries[f"{name}.shape"])
    n = int(np.prod(shape))
    mask = np.unpackbits(entries[f"{name}.mask"], count=n).astype(bool)
    if int(mask.sum()) != values.shape[0]:
        raise BundleError(
            f"tensor {name!r}: mask has {int(mask.sum())} nonzeros but {values.shape[0]} values"
        )
    dense = np.zeros(n, dtype=values.dtype)
    dense[mask] = values
    return dense.reshape(shape)


def nonzero_count(entries: dict[str, np.ndarray]) -> int:
    """Nonzero parameters over all tensors (the count a pruned variant is judged by)."""
    total = 0
    for name in base_names(entries):
        kind = encoding_of(entries, name)
        if kind.startswith("sparse"):
            total += int(np.unpackbits(entries[f"{name}.mask"]).sum())
        else:
            total += int(np.count_nonzero(decode(entries, name)))
    return total
