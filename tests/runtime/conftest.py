"""Test bundles built from seeded RecurrentModels, with encoded variants written by hand."""

import numpy as np
import pytest

from edgernn.runtime import weights as W
from edgernn.runtime.bundle import safetensors_bytes, update_bundle
from edgernn.runtime.config import ModelConfig

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


@pytest.fixture(scope="session")
def make_bundle(tmp_path_factory):
    """make_bundle(cell, layers, hidden=16, ...) -> bundle path (cached per arguments)."""
    torch = pytest.importorskip("torch")
    from edgernn.bundle_io import save_model_bundle
    from edgernn.models import RecurrentModel

    cache = {}

    def make(cell="lstm", layers=1, hidden=16, input_size=4, output=3, variants=("fp32",),
             preprocessing=None, seed=0, **config):
        key = (cell, layers, hidden, input_size, output, tuple(variants), repr(preprocessing),
               seed, tuple(sorted(config.items())))
        if key not in cache:
            torch.manual_seed(seed)
            cfg = ModelConfig(cell=cell, num_layers=layers, hidden_size=hidden,
                              input_size=input_size, output_size=output, head="every", **config)
            model = RecurrentModel(cfg).init_weights(seed)
            with torch.no_grad():  # nonzero biases so bias handling is exercised
                for name, p in model.named_parameters():
                    if "bias" in name:
                        p.add_(0.1 * torch.randn(p.shape))
            path = tmp_path_factory.mktemp("bundles") / f"{cell}{layers}"
            save_model_bundle(model, path, preprocessing=preprocessing)
            add_variants(path, model.to_numpy(), variants)
            cache[key] = path
        return cache[key]

    return make


def reference_outputs(path, variant, xs):
    """torch step_outputs of the model holding ``variant``'s decoded weights; xs (T, F)."""
    import torch

    from edgernn.bundle_io import load_model

    model = load_model(path, variant)
    with torch.no_grad():
        return model.step_outputs(torch.from_numpy(np.asarray(xs))[None])[0].numpy()
