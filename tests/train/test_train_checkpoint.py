"""Checkpoints: resume reproduces an uninterrupted run; Ctrl-C keeps the last finished epoch."""

import pytest
import torch

from edgernn.runtime.errors import ConfigError
from edgernn.train import TrainConfig, build_model, fit


def cfg(path, **kw):
    return TrainConfig(**{"epochs": 4, "batch_size": 48, "lr": 1e-2, "checkpoint": str(path), **kw})


def model(data):
    return build_model(data, layers=2, hidden=12, dropout=0.2, seed=1)


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_resume_reproduces_an_uninterrupted_run(tiny_sine, tmp_path):
    full = fit(model(tiny_sine), tiny_sine, cfg(tmp_path / "a.pt"), progress=False)
    fit(model(tiny_sine), tiny_sine, cfg(tmp_path / "b.pt", epochs=2), progress=False)
    resumed = fit(model(tiny_sine), tiny_sine, cfg(tmp_path / "b.pt", resume=True), progress=False)
    assert resumed.resumed_from == 2 and resumed.epochs_run == 4
    assert [h["val_rmse"] for h in resumed.history] == [h["val_rmse"] for h in full.history]
    assert same_weights(resumed.model, full.model)


def test_interrupt_keeps_the_last_finished_epoch(tiny_sine, tmp_path):
    path = tmp_path / "ckpt" / "checkpoint.pt"

    def interrupt(m, step):
        if step == 12:  # during epoch 3 (4 batches per epoch)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(model(tiny_sine), tiny_sine, cfg(path), after_step=interrupt, progress=False)
    saved = torch.load(path, weights_only=True)
    assert saved["epoch"] == 2 and not list(path.parent.glob(".*tmp"))
    resumed = fit(model(tiny_sine), tiny_sine, cfg(path, resume=True), progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]


def test_resume_without_checkpoint(tiny_sine, tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint at .* to resume from"):
        fit(model(tiny_sine), tiny_sine, cfg(tmp_path / "none.pt", resume=True), progress=False)


def test_resume_refuses_another_model(tiny_sine, tmp_path):
    fit(model(tiny_sine), tiny_sine, cfg(tmp_path / "c.pt", epochs=1), progress=False)
    other = build_model(tiny_sine, layers=1, hidden=12)
    with pytest.raises(ConfigError, match="was written for dataset 'sine' with model"):
        fit(other, tiny_sine, cfg(tmp_path / "c.pt", resume=True), progress=False)


def test_resume_refuses_a_corrupted_checkpoint(tiny_sine, tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"\x80garbage")
    with pytest.raises(ConfigError, match="not a readable checkpoint"):
        fit(model(tiny_sine), tiny_sine, cfg(path, resume=True), progress=False)
