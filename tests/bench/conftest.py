import pytest

from edgernn.bundle_io import save_model_bundle
from edgernn.compress.quantize import encode_tensors
from edgernn.compress.variants import write_variant
from edgernn.models import RecurrentModel
from edgernn.runtime.config import ModelConfig

PREPROCESSING = {"input_mean": [0.5, -1.0, 2.0], "input_std": [2.0, 0.5, 1.0],
                 "target_mean": [3.0, -3.0], "target_std": [4.0, 0.25]}


def make_bundle(path, cell="lstm", layers=1, hidden=16, vocab=None, int8=True):
    """A small seeded bundle (fp32 [+ int8]) with preprocessing for float input."""
    config = ModelConfig(cell=cell, input_size=3, hidden_size=hidden, num_layers=layers,
                         output_size=2, head="every", vocab_size=vocab,
                         task="language_model" if vocab else "regression")
    model = RecurrentModel(config).init_weights(0)
    bundle = save_model_bundle(model, path, preprocessing={} if vocab else PREPROCESSING)
    if int8:
        write_variant(bundle, "int8", encode_tensors(model.to_numpy(), int8=True), metrics={})
    return path


@pytest.fixture(scope="session")
def lstm_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bench") / "lstm", layers=2)


@pytest.fixture(scope="session")
def bundle_factory(tmp_path_factory):
    """make_bundle(name, **kwargs) in a fresh temporary folder."""
    return lambda name, **kwargs: make_bundle(tmp_path_factory.mktemp("bench") / name, **kwargs)
