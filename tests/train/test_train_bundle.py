"""train_bundle: the whole `edgernn train` job writes a complete, loadable bundle."""

import json

import numpy as np
import pytest
import torch

from edgernn.bundle_io import load_model
from edgernn.runtime.bundle import read_bundle
from edgernn.runtime.errors import BundleError
from edgernn.train import TrainConfig, checkpoint_path, train_bundle

OPTS = dict(layers=1, hidden=12, progress=False)


def test_bundle_holds_model_metrics_history_and_provenance(tiny_digits, tmp_path):
    out = tmp_path / "digits"
    summary = train_bundle(tiny_digits, out, TrainConfig(epochs=3, lr=1e-2), cell="gru", **OPTS)
    bundle = read_bundle(out)
    m = bundle.manifest
    assert m["task"] == {"metric": "accuracy", "higher_is_better": True, "dataset": "digits",
                         "class_names": [str(i) for i in range(10)]}
    assert m["variants"]["fp32"]["metrics"]["test"] == summary["test"]
    assert set(m["variants"]["fp32"]["metrics"]) == {"test", "val"}
    assert m["preprocessing"]["input_mean"] == tiny_digits.preprocessing["input_mean"]
    assert m["provenance"]["train_config"]["epochs"] == 3
    assert m["provenance"]["dataset"]["licence"] == "CC BY 4.0"
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3] and "history.json" in m["files"]
    assert summary["params"] == sum(v.size for v in bundle.tensors("fp32").values())
    assert not checkpoint_path(out).parent.exists()
    model = load_model(out)
    X = torch.from_numpy(tiny_digits.test.X)
    acc = float((model(X).argmax(-1).numpy() == tiny_digits.test.y).mean())
    assert acc == pytest.approx(summary["test"]["accuracy"])


def test_language_model_bundle_stores_the_vocabulary(tiny_chars, tmp_path):
    train_bundle(tiny_chars, tmp_path / "lm", TrainConfig(epochs=1), embedding_dim=8, **OPTS)
    m = read_bundle(tmp_path / "lm").manifest
    assert len(m["preprocessing"]["vocabulary"]) == m["model"]["vocab_size"] == 96
    assert m["model"]["head"] == "every" and "bpc" in m["variants"]["fp32"]["metrics"]["val"]


def test_existing_output_is_refused_before_training(tiny_sine, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(BundleError, match="already exists; pass --force"):
        train_bundle(tiny_sine, tmp_path / "out", TrainConfig(epochs=1), **OPTS)
    train_bundle(tiny_sine, tmp_path / "out", TrainConfig(epochs=1), force=True, **OPTS)
    assert read_bundle(tmp_path / "out").config.cell == "lstm"


def test_interrupted_job_writes_no_bundle_and_resumes(tiny_sine, tmp_path):
    out = tmp_path / "sine"

    def interrupt(model, step):
        if step == 7:  # in epoch 3 (3 batches per epoch)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_bundle(tiny_sine, out, TrainConfig(epochs=3, batch_size=64), after_step=interrupt,
                     **OPTS)
    assert not out.exists() and checkpoint_path(out).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    summary = train_bundle(tiny_sine, out, TrainConfig(epochs=3, batch_size=64, resume=True),
                           **OPTS)
    assert summary["epochs_run"] == 3 and np.isfinite(summary["test"]["rmse"])
    assert not checkpoint_path(out).parent.exists()
