"""Test bundles built from seeded RecurrentModels, with encoded variants written by hand."""

import pytest
from runtime_helpers import add_variants

from edgernn.runtime.config import ModelConfig


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
