"""User .npz data: layouts, given or seeded splits, training-only statistics, bad files."""

import numpy as np
import pytest

from edgernn.data import load_npz
from edgernn.runtime.errors import DataError


def save(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def rng_X(n=40, t=6, f=3, seed=0):
    return np.random.default_rng(seed).normal(5.0, 2.0, (n, t, f)).astype(np.float32)


def test_labels_with_seeded_split(tmp_path):
    y = np.arange(40) % 3
    d = load_npz(save(tmp_path, X=rng_X(), y=y), seed=3)
    assert d.task == "classification" and d.head == "last" and d.output_size == 3
    assert (len(d.train), len(d.val), len(d.test)) == (28, 6, 6)
    assert abs(float(d.train.X.mean())) < 1e-4  # standardized on train
    again = load_npz(save(tmp_path, X=rng_X(), y=y), seed=3)
    np.testing.assert_array_equal(d.test.X, again.test.X)


def test_float_targets_are_standardized_and_recorded(tmp_path):
    y = np.random.default_rng(1).normal(100, 10, (40, 2)).astype(np.float32)
    d = load_npz(save(tmp_path, X=rng_X(), y=y))
    assert d.task == "regression" and d.output_size == 2 and d.metric == "rmse"
    assert len(d.preprocessing["target_mean"]) == 2 and 80 < d.preprocessing["target_mean"][0] < 120


def test_per_step_labels_with_lengths_ignore_padding(tmp_path):
    X = rng_X()
    lengths = np.random.default_rng(2).integers(2, 7, 40)
    X[np.arange(6)[None, :] >= lengths[:, None]] = 1e6  # padding must not reach the statistics
    y = np.where(np.arange(6)[None, :] < lengths[:, None], 1, -100)  # padded labels: -100
    d = load_npz(save(tmp_path, X=X, y=y, lengths=lengths))
    assert d.output_size == 2 and d.train.y.min() == 0
    assert d.head == "every" and d.train.lengths is not None
    assert abs(d.preprocessing["input_mean"][0] - 5.0) < 1.0
    assert float(np.abs(d.train.X).max()) < 100  # padding zeroed after scaling


def test_given_val_and_test_are_used(tmp_path):
    y = np.arange(40) % 2
    d = load_npz(save(tmp_path, X=rng_X(), y=y, X_val=rng_X(10, seed=1), y_val=y[:10],
                      X_test=rng_X(12, seed=2), y_test=y[:12]))
    assert (len(d.train), len(d.val), len(d.test)) == (40, 10, 12) and d.source["split"] == "given"


def test_only_test_given_carves_val_from_train(tmp_path):
    y = np.arange(40) % 2
    d = load_npz(save(tmp_path, X=rng_X(), y=y, X_test=rng_X(12, seed=2), y_test=y[:12]))
    assert (len(d.train), len(d.val), len(d.test)) == (34, 6, 12)


@pytest.mark.parametrize("arrays, message", [
    (dict(X=rng_X()), r"needs keys 'X' \(N, T, F\) float and 'y'; it has \['X'\]"),
    (dict(X=rng_X()[:, :, 0], y=np.zeros(40)),
     r"'X' must be a float array \(N, T, F\), got float32 \(40, 6\)"),
    (dict(X=rng_X(), y=np.zeros(39)), r"'y' must have N=40 rows"),
    (dict(X=rng_X(), y=np.zeros((40, 5), np.int64)), r"per-step labels and needs shape \(N, T=6\)"),
    (dict(X=rng_X(), y=np.zeros(40), lengths=np.full(40, 9)), r"'lengths' must lie in 1..T=6"),
    (dict(X=rng_X(), y=np.zeros(40), lengths=np.ones(39, np.int64)),
     r"'lengths' must be int \(N,\)"),
    (dict(X=rng_X(), y=np.zeros(40), X_val=rng_X(5, f=2), y_val=np.zeros(5)),
     r"'X_val' has 2 features, 'X' has 3"),
    (dict(X=rng_X(), y=np.zeros(40), X_val=rng_X(5)),
     r"'X_val' is given without its pair \(y_val\)"),
])
def test_bad_layouts_name_the_key_and_shape(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message):
        load_npz(save(tmp_path, **arrays))


def test_nan_is_located(tmp_path):
    X = rng_X()
    X[3, 2, 1] = np.nan
    with pytest.raises(DataError, match=r"'X' holds NaN or inf at index \(3, 2, 1\)"):
        load_npz(save(tmp_path, X=X, y=np.zeros(40)))


def test_object_arrays_are_refused_not_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, X=np.array([object()], dtype=object), y=np.zeros(1))
    with pytest.raises(DataError, match="pickle"):
        load_npz(path)


def test_not_an_npz(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_npz(path)
