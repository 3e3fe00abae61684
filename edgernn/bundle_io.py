"""Save a trained RecurrentModel as a bundle, and load one back as torch (build side)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from edgernn.models import RecurrentModel
from edgernn.runtime import weights as W
from edgernn.runtime.bundle import (
    Bundle,
    new_manifest,
    read_bundle,
    safetensors_bytes,
    write_bundle,
)

FP32_FILE = "weights/fp32.safetensors"


def save_model_bundle(
    model: RecurrentModel, out: str | Path, *, preprocessing: dict | None = None,
    task: dict | None = None, metrics: dict | None = None, provenance: dict | None = None,
    extra_files: dict | None = None, force: bool = False,
) -> Bundle:
    """Write ``model`` as a new bundle with its fp32 variant; ``metrics`` are held-out figures."""
    tensors = model.to_numpy()
    manifest = new_manifest(
        model.config, preprocessing=preprocessing, task=task,
        provenance={"torch_version": torch.__version__, "python": platform.python_version(),
                    **(provenance or {})},
    )
    blob = safetensors_bytes(tensors, metadata={"variant": "fp32"})
    manifest["variants"]["fp32"] = variant_entry(
        [FP32_FILE], "fp32", len(blob), W.nonzero_count(tensors), metrics or {},
    )
    return write_bundle(out, manifest, {FP32_FILE: blob, **(extra_files or {})}, force=force)


def variant_entry(files: list[str], precision: str, size_bytes: int, nonzero: int,
                  metrics: dict, **extra) -> dict:
    """The manifest record of one variant."""
    return {"files": files, "precision": precision, "size_bytes": size_bytes,
            "nonzero_params": nonzero, "metrics": metrics, **extra}


def load_model(bundle: str | Path | Bundle, variant: str = "fp32") -> RecurrentModel:
    """A torch model holding the (dequantized, densified) weights of a bundle variant."""
    bundle = bundle if isinstance(bundle, Bundle) else read_bundle(bundle)
    tensors = W.decode_all(bundle.tensors(variant))
    return RecurrentModel.from_numpy(bundle.config_for(variant), tensors)
