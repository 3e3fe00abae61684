"""Write a compressed variant into a bundle: its weights file and its manifest record."""

from __future__ import annotations

import numpy as np

from edgernn.bundle_io import variant_entry
from edgernn.runtime import weights as W
from edgernn.runtime.bundle import Bundle, safetensors_bytes, update_bundle


def precision_of(entries: dict[str, np.ndarray], fallback: list[str]) -> str:
    kinds = {W.encoding_of(entries, name).rsplit("-", 1)[-1] for name in W.base_names(entries)}
    if "int8" in kinds:
        return "mixed" if fallback else "int8"
    return "fp16" if kinds == {"fp16"} else "fp32"


def write_variant(bundle: Bundle, name: str, entries: dict[str, np.ndarray], metrics: dict,
                  **extra) -> tuple[Bundle, dict]:
    """Add (or replace) variant ``name`` atomically; returns the bundle and the record written.

    ``extra`` holds the optional record fields (``delta``, ``fallback``, ``sparsity``,
    ``pattern``, ``per_channel``, ``model``, ``time_s`` ...).
    """
    rel = f"weights/{name}.safetensors"
    blob = safetensors_bytes(entries, metadata={"variant": name})
    record = variant_entry([rel], precision_of(entries, extra.get("fallback", [])), len(blob),
                           W.nonzero_count(entries), metrics, **extra)

    def patch(manifest: dict) -> None:
        manifest["variants"][name] = record

    old = bundle.variants.get(name, {}).get("files", [])
    stale = tuple(f for f in old if f != rel)
    bundle = update_bundle(bundle.path, {rel: blob}, patch, remove=stale)
    return bundle, record
