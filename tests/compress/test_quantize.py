"""Variant encodings: per-channel vs per-tensor int8, fp16, compact sparse storage, fallback."""

import numpy as np
import pytest

from edgernn.compress.quantize import encode_tensors, fallback_search, matrix_names
from edgernn.runtime import weights as W
from edgernn.runtime.bundle import safetensors_bytes


def outlier_matrix(rows=256, cols=64, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.05, (rows, cols)).astype(np.float32)
    w[rows // 2, cols // 2] = 40 * w.std()  # one outlier: max|w| ~ 40x the std
    return w


def test_outlier_matrix_is_as_described():
    w = outlier_matrix()
    assert 35 < np.abs(w).max() / w.std() < 45


def test_per_channel_beats_per_tensor_on_a_matrix_with_an_outlier():
    w = outlier_matrix()
    err = {}
    for per_channel in (True, False):
        decoded = W.decode_all(encode_tensors({"m": w}, int8=True, per_channel=per_channel))["m"]
        err[per_channel] = float(np.sqrt(np.mean((decoded - w) ** 2)))
    assert err[True] * 5 < err[False]
    # one step of the per-tensor grid is ~0.3 std: an eighth of the weights round to zero
    per_tensor = W.decode_all(encode_tensors({"m": w}, int8=True, per_channel=False))["m"]
    assert np.mean(per_tensor == 0) > 0.1
    assert np.mean(W.decode_all(encode_tensors({"m": w}, int8=True))["m"] == 0) < 0.02


def test_int8_quantizes_matrices_and_keeps_vectors_fp32():
    tensors = {"a.weight": outlier_matrix(8, 4), "a.bias": np.ones(8, np.float32)}
    entries = encode_tensors(tensors, int8=True)
    assert entries["a.weight.q"].dtype == np.int8 and entries["a.weight.scale"].shape == (8,)
    assert entries["a.bias"].dtype == np.float32
    assert encode_tensors(tensors, int8=True, per_channel=False)["a.weight.scale"].shape == (1,)
    assert encode_tensors(tensors, fp16=True)["a.weight"].dtype == np.float16


def test_sparse_matrices_are_stored_compactly_and_decode_exactly():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(128, 64)).astype(np.float32)
    w[rng.random(w.shape) < 0.8] = 0
    dense = len(safetensors_bytes({"m": w}))
    fp32 = encode_tensors({"m": w})
    q = encode_tensors({"m": w}, int8=True)
    assert "m.mask" in fp32 and "m.mask" in q
    assert len(safetensors_bytes(fp32)) < 0.27 * dense
    assert len(safetensors_bytes(q)) < 0.11 * dense
    np.testing.assert_array_equal(W.decode_all(fp32)["m"], w)
    assert np.all(W.decode_all(q)["m"][w == 0] == 0)
    assert W.nonzero_count(q) == np.count_nonzero(w)


def fake_scorer(tensors, fragile):
    """'Accuracy' falls by 0.1 for each int8-quantized matrix in ``fragile``, 0.001 otherwise."""
    def score(entries):
        quantized = [n for n in matrix_names(tensors) if f"{n}.q" in entries]
        acc = 1.0 - sum(0.1 if n in fragile else 0.001 for n in quantized)
        return {"val": {"accuracy": acc}, "test": {"accuracy": acc}}
    return score


@pytest.mark.parametrize("budget, fallback, met", [
    (0.5, [], True), (0.15, ["b"], True), (0.01, ["b", "d"], True), (0.0005, ["b", "d"], False),
])
def test_fallback_keeps_the_most_sensitive_matrices_until_the_budget_is_met(budget, fallback, met):
    tensors = {n: outlier_matrix(4, 4, i) for i, n in enumerate("abcd")}
    score = fake_scorer(tensors, fragile={"b", "d"})
    drop = lambda m: 1.0 - m["test"]["accuracy"]  # noqa: E731
    result = fallback_search(tensors, budget, per_channel=True, score=score, drop=drop,
                             sensitivity_drop=drop)
    assert result.met is met
    if met:
        assert result.fallback == fallback and result.drop <= budget
    else:  # nothing meets it: the best mix (all but one matrix in fp32) is returned, labelled
        assert len(result.fallback) == 3 and result.drop == pytest.approx(0.001)
    assert result.sensitivity["b"] > result.sensitivity["a"]
