"""fit / evaluate: convergence, after_step, early stopping, TBPTT, packed variable lengths."""

import math

import numpy as np
import pytest
import torch

from edgernn.data import Dataset, Split
from edgernn.runtime.errors import ConfigError
from edgernn.train import TrainConfig, build_model, evaluate, fit


def small(dataset, **kw):
    return build_model(dataset, layers=1, hidden=16, **kw)


def test_sine_learns_far_better_than_predicting_the_mean(tiny_sine):
    result = fit(small(tiny_sine), tiny_sine, TrainConfig(epochs=12, lr=1e-2), progress=False)
    target_std = tiny_sine.preprocessing["target_std"][0]  # RMSE of always predicting the mean
    assert result.best_metric < 0.5 * target_std
    assert result.history[0]["val_rmse"] > result.best_metric
    assert result.best_epoch == min(range(1, 13), key=lambda e: result.history[e - 1]["val_rmse"])


def test_best_weights_are_returned(tiny_sine):
    result = fit(small(tiny_sine), tiny_sine, TrainConfig(epochs=6, lr=3e-2, schedule="none"),
                 progress=False)
    val = evaluate(result.model, tiny_sine.val, tiny_sine)
    assert val["rmse"] == pytest.approx(result.best_metric)


def test_after_step_runs_after_every_optimizer_step_and_its_edits_stick(tiny_sine):
    steps = []

    def prune(model, step):
        steps.append(step)
        with torch.no_grad():
            model.rnn.weight_hh_l0[:4] = 0.0

    cfg = TrainConfig(epochs=3, batch_size=50, schedule="none", patience=0)
    result = fit(small(tiny_sine), tiny_sine, cfg, after_step=prune, progress=False)
    per_epoch = math.ceil(len(tiny_sine.train) / 50)
    assert steps == list(range(1, 3 * per_epoch + 1)) and result.global_step == steps[-1]
    assert float(result.model.rnn.weight_hh_l0[:4].detach().abs().sum()) == 0.0


def test_early_stopping_when_val_metric_stalls(tiny_digits):
    cfg = TrainConfig(epochs=10, lr=1e-12, patience=2, schedule="none")
    result = fit(small(tiny_digits), tiny_digits, cfg, progress=False)
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 1


def test_digits_accuracy_rises(tiny_digits):
    result = fit(small(tiny_digits), tiny_digits, TrainConfig(epochs=8, lr=1e-2), progress=False)
    metrics = evaluate(result.model, tiny_digits.test, tiny_digits)
    assert metrics["accuracy"] > 0.6 and set(metrics) == {"accuracy", "loss"}


def test_language_model_metrics_and_tbptt_steps(tiny_chars):
    steps = []
    cfg = TrainConfig(epochs=2, batch_size=32, tbptt=16, lr=1e-2, schedule="cosine")
    model = build_model(tiny_chars, layers=1, hidden=32, embedding_dim=8)
    before = evaluate(model, tiny_chars.val, tiny_chars)
    result = fit(model, tiny_chars, cfg, after_step=lambda m, s: steps.append(s), progress=False)
    batches = math.ceil(len(tiny_chars.train) / 32)
    assert len(steps) == 2 * batches * 3  # 48 steps / 16 = 3 windows per batch
    after = evaluate(result.model, tiny_chars.val, tiny_chars)
    assert after["loss"] < before["loss"] - 0.5
    assert after["bpc"] == pytest.approx(after["loss"] / math.log(2))


def test_tbptt_many_to_one_takes_one_step_per_batch(tiny_sine):
    steps = []
    cfg = TrainConfig(epochs=1, batch_size=40, tbptt=5)
    fit(small(tiny_sine), tiny_sine, cfg, after_step=lambda m, s: steps.append(s), progress=False)
    assert len(steps) == math.ceil(len(tiny_sine.train) / 40)


def last_step_sign_task(seed=0, n=400, t=10):
    """Label = sign of feature 0 at the last *valid* step: needs packing / last-step gathering."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, t + 1, n)
    X = rng.normal(size=(n, t, 2)).astype(np.float32)
    X[np.arange(t)[None, :] >= lengths[:, None]] = 0.0
    y = (X[np.arange(n), lengths - 1, 0] > 0).astype(np.int64)
    parts = [Split(X[s], y[s], lengths[s]) for s in (slice(0, 300), slice(300, 350), slice(350, n))]
    return Dataset("signs", "classification", "last", *parts, input_size=2, output_size=2,
                   metric="accuracy")


def test_variable_length_batches_are_packed():
    data = last_step_sign_task()
    result = fit(small(data, cell="gru"), data, TrainConfig(epochs=10, lr=1e-2), progress=False)
    assert evaluate(result.model, data.test, data)["accuracy"] > 0.9


def test_tbptt_with_lengths_is_refused():
    data = last_step_sign_task()
    with pytest.raises(ConfigError, match="tbptt needs equal-length sequences"):
        fit(small(data), data, TrainConfig(epochs=1, tbptt=4), progress=False)


def test_regression_metrics_are_in_original_units(tiny_sine):
    model = small(tiny_sine).eval()
    metrics = evaluate(model, tiny_sine.test, tiny_sine)
    mean, std = tiny_sine.preprocessing["target_mean"][0], tiny_sine.preprocessing["target_std"][0]
    with torch.no_grad():
        pred = model(torch.from_numpy(tiny_sine.test.X)).numpy() * std + mean
    truth = tiny_sine.test.y * std + mean
    assert metrics["rmse"] == pytest.approx(float(np.sqrt(np.mean((pred - truth) ** 2))), rel=1e-4)
    assert metrics["mae"] == pytest.approx(float(np.mean(np.abs(pred - truth))), rel=1e-4)


@pytest.mark.parametrize("field, value, message", [
    ("optimizer", "sgd", "unknown optimizer 'sgd'"),
    ("schedule", "step", "unknown schedule 'step'"),
    ("epochs", 0, "epochs must be >= 1"),
    ("clip", -1.0, "clip must be >= 0"),
])
def test_config_is_validated(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


def test_bidirectional_language_model_is_refused(tiny_chars):
    with pytest.raises(ConfigError, match="bidirectional language model"):
        build_model(tiny_chars, bidirectional=True)


def test_per_step_labels_with_lengths_mask_the_padding(tmp_path):
    from edgernn.data import load_npz

    rng = np.random.default_rng(1)
    lengths = rng.integers(3, 13, 300)
    X = rng.normal(size=(300, 12, 1)).astype(np.float32)
    valid = np.arange(12)[None, :] < lengths[:, None]
    y = np.where(valid, (X[..., 0] > 0).astype(np.int64), -100)
    np.savez(tmp_path / "steps.npz", X=X, y=y, lengths=lengths)
    data = load_npz(tmp_path / "steps.npz")
    result = fit(small(data), data, TrainConfig(epochs=6, lr=1e-2), progress=False)
    assert data.head == "every" and evaluate(result.model, data.test, data)["accuracy"] > 0.9
