"""Small bundles for compression tests: one trained LSTM on digits, untrained ones per cell."""

import pytest

from edgernn.bundle_io import save_model_bundle
from edgernn.data import load_dataset
from edgernn.models import RecurrentModel
from edgernn.runtime.config import ModelConfig
from edgernn.train import TrainConfig, train_bundle


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A 2-layer LSTM (16 units) trained 3 epochs on digits: the master copy, never modified."""
    out = tmp_path_factory.mktemp("trained") / "bundle"
    train_bundle("digits", out, TrainConfig(epochs=3), cell="lstm", layers=2, hidden=16,
                 progress=False)
    return out


@pytest.fixture
def bundle(trained, tmp_path):
    """A private copy of the trained bundle for one test to change."""
    import shutil

    return shutil.copytree(trained, tmp_path / "bundle")


@pytest.fixture
def untrained(digits, tmp_path):
    """``make(cell)``: an untrained digits bundle of that cell, scored on digits' held-out split."""
    def make(cell: str, hidden: int = 12):
        config = ModelConfig(cell=cell, input_size=8, hidden_size=hidden, output_size=10,
                             task="classification")
        model = RecurrentModel(config).init_weights(0)
        return save_model_bundle(
            model, tmp_path / cell, preprocessing=digits.preprocessing,
            task={"metric": "accuracy", "higher_is_better": True, "dataset": "digits"},
        ).path
    return make
