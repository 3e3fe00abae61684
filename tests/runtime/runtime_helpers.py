"""Helpers for runtime tests: hand-encoded variants and the torch reference outputs."""

import numpy as np

from edgernn.runtime import weights as W
from edgernn.runtime.bundle import safetensors_bytes, update_bundle

VARIANTS = ("fp32", "fp16", "int8", "sparse80", "sparse80-int8")


def encode_variant(tensors: dict, name: str) -> dict:
    """The bundle entries of variant ``name`` from fp32 torch-named tensors."""
    out = {}
    for key, w in tensors.items():
        matrix = w.ndim == 2 and key != "embedding.weight"
        if name.startswith("sparse") and matrix:
            w = np.where(np.abs(w) >= np.quantile(np.abs(w), 0.8), w, 0).astype(np.float32)
        out.update(W.encode(key, w, int8=matrix and "int8" in name,
                            sparse=matrix and name.startswith("sparse"), fp16=name == "fp16"))
    return out


def add_variants(path, tensors: dict, names) -> None:
    files, records = {}, {}
    for name in names:
        if name == "fp32":
            continue
        entries = encode_variant(tensors, name)
        rel = f"weights/{name}.safetensors"
        files[rel] = safetensors_bytes(entries)
        records[name] = {"files": [rel], "precision": "int8" if "int8" in name else "fp32",
                         "size_bytes": len(files[rel]), "nonzero_params": W.nonzero_count(entries),
                         "metrics": {}}

    def patch(manifest):
        manifest["variants"].update(records)

    update_bundle(path, files, patch)


def reference_outputs(path, variant, xs):
    """torch step_outputs of the model holding ``variant``'s decoded weights; xs (T, F)."""
    import torch

    from edgernn.bundle_io import load_model

    model = load_model(path, variant)
    with torch.no_grad():
        return model.step_outputs(torch.from_numpy(np.asarray(xs))[None])[0].numpy()


def add_onnx_steps(path, names) -> bool:
    """Write the converters' step graph of each variant into the bundle; False without them."""
    try:
        from edgernn.converters import ExportSpec, build_step_graph
    except ImportError:
        return False
    from edgernn.runtime.bundle import read_bundle

    bundle = read_bundle(path)
    if all(n in bundle.manifest.get("exports", {}).get("onnx", {}) for n in names):
        return True
    files, records = {}, {}
    for name in names:
        precision = bundle.variant(name)["precision"]
        spec = ExportSpec(bundle.config_for(name), variant=name, precision=precision)
        rel = f"onnx/{name}-step.onnx"
        files[rel] = build_step_graph(spec, bundle.tensors(name)).SerializeToString()
        records[name] = {"step": rel, "precision": precision}

    def patch(manifest):
        manifest.setdefault("exports", {}).setdefault("onnx", {}).update(records)

    update_bundle(path, files, patch)
    return True
