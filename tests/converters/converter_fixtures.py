"""Tiny seeded models and bundles for the converter tests (int8 via the bundle encodings)."""

from __future__ import annotations

import numpy as np
import torch

from edgernn.bundle_io import variant_entry
from edgernn.models import RecurrentModel
from edgernn.runtime import weights as W
from edgernn.runtime.bundle import read_bundle, safetensors_bytes, update_bundle
from edgernn.runtime.config import ModelConfig

torch.set_num_threads(1)  # two threads on two busy cores make torch RNNs 100x slower


def tiny_model(seed: int = 0, **overrides) -> RecurrentModel:
    """A small model with non-trivial biases so every term of the cell is exercised."""
    fields = dict(cell="lstm", input_size=3, hidden_size=8, num_layers=1, output_size=2)
    model = RecurrentModel(ModelConfig(**{**fields, **overrides})).init_weights(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "bias" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


def add_variant(path, name: str = "int8", **encoding) -> None:
    """Encode the fp32 variant's 2-D rnn/head matrices (``int8=True``, ``fp16=True``,
    ``sparse=True`` ... as in ``weights.encode``) and add them as variant ``name``."""
    fp32 = W.decode_all(read_bundle(path).tensors("fp32"))
    entries: dict[str, np.ndarray] = {}
    for tensor, value in fp32.items():
        matrix = value.ndim == 2 and not tensor.startswith("embedding")
        entries.update(W.encode(tensor, value, **(encoding if matrix else {})))
    rel = f"weights/{name}.safetensors"
    blob = safetensors_bytes(entries, metadata={"variant": name})
    precision = "int8" if encoding.get("int8") else "fp16" if encoding.get("fp16") else "fp32"
    record = variant_entry([rel], precision, len(blob), W.nonzero_count(entries), {})
    update_bundle(path, {rel: blob},
                  lambda manifest: manifest["variants"].__setitem__(name, record))


def add_int8_variant(path) -> None:
    add_variant(path, "int8", int8=True)
