import numpy as np
import pytest

from edgernn.runtime import weights as W


@pytest.fixture
def matrix():
    return np.random.default_rng(0).normal(size=(24, 16)).astype(np.float32)


def test_int8_per_channel_error_is_bounded_by_half_a_step(matrix):
    entries = W.encode("w", matrix, int8=True)
    assert entries["w.q"].dtype == np.int8 and entries["w.scale"].shape == (24,)
    err = np.abs(W.decode(entries, "w") - matrix)
    assert np.all(err <= entries["w.scale"][:, None] / 2 + 1e-7)


def test_per_channel_beats_per_tensor_with_an_outlier(matrix):
    matrix[3, 5] = 40 * matrix.std()
    per_channel = W.decode(W.encode("w", matrix, int8=True), "w")
    per_tensor = W.decode(W.encode("w", matrix, int8=True, per_channel=False), "w")
    rows = np.arange(24) != 3
    error = {name: np.abs(w - matrix)[rows].mean()
             for name, w in (("channel", per_channel), ("tensor", per_tensor))}
    assert error["channel"] * 10 < error["tensor"]


@pytest.mark.parametrize("int8, fp16", [(False, False), (False, True), (True, False)])
def test_sparse_round_trip_and_size_reflects_sparsity(matrix, int8, fp16):
    keep = np.abs(matrix) > np.quantile(np.abs(matrix), 0.8)
    pruned = np.where(keep, matrix, 0).astype(np.float32)
    entries = W.encode("w", pruned, sparse=True, int8=int8, fp16=fp16)
    decoded = W.decode(entries, "w")
    assert np.array_equal(decoded == 0, pruned == 0)
    assert np.allclose(decoded, pruned, atol=0.02 if int8 or fp16 else 0)
    nbytes = sum(v.nbytes for v in entries.values())
    assert nbytes < 0.35 * pruned.nbytes
    assert W.nonzero_count(entries) == np.count_nonzero(pruned)
    assert W.encoding_of(entries, "w").startswith("sparse")


def test_base_names_strip_encoding_suffixes(matrix):
    entries = {**W.encode("a.weight", matrix, int8=True), "a.bias": np.zeros(3, np.float32)}
    assert W.base_names(entries) == ["a.bias", "a.weight"]
    q, scale = W.decode_int8(entries, "a.weight")
    assert q.dtype == np.int8 and scale.shape == (24,)
