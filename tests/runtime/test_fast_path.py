"""The compiled stepper (fused_step.c's module): same numbers as the checked path, same errors,
StreamPool's dict form, and no lost update when threads share a model."""

import threading

import numpy as np
import pytest
from runtime_helpers import reference_outputs

from edgernn.runtime import InputError, StreamError, StreamPool, load
from edgernn.runtime.backends.kernel import _build, kernel_status
from edgernn.runtime.bundle import safetensors_bytes, update_bundle

pytestmark = pytest.mark.skipif(
    not kernel_status()[0] or _build()[1] is None,
    reason=f"no compiled stepper here: {kernel_status()[1]} (or no Python/numpy headers)")

PRE = {"input_mean": [1.0, -2.0, 0.5, 0.0], "input_std": [2.0, 0.5, 4.0, 1.0],
       "target_mean": [10.0, 0.0, -1.0], "target_std": [3.0, 1.0, 0.5]}


def samples(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


@pytest.mark.parametrize("cell,layers", [("lstm", 2), ("gru", 1), ("rnn", 2)])
@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_fast_step_equals_the_checked_path_bit_for_bit(make_bundle, cell, layers, variant):
    path = make_bundle(cell, layers, variants=("fp32", "int8"), preprocessing=PRE)
    fast, checked = (load(path, backend="numpy", variant=variant) for _ in range(2))
    assert fast._bound is not None
    xs = samples(60)
    # float64 samples take the checked path: numpy preprocessing, ctypes kernel, numpy scaling
    ys_fast = np.stack([fast.step(x) for x in xs])
    ys_checked = np.stack([checked.step(x.astype(np.float64)) for x in xs])
    np.testing.assert_array_equal(ys_fast, ys_checked)
    assert fast.state == checked.state
    if variant == "fp32":
        scaled = (xs - np.float32(PRE["input_mean"])) / np.float32(PRE["input_std"])
        expect = reference_outputs(path, "fp32", scaled) * np.float32(PRE["target_std"]) \
            + np.float32(PRE["target_mean"])
        np.testing.assert_allclose(ys_fast, expect, atol=1e-4)


def test_fast_step_returns_a_fresh_array_and_refuses_like_the_checked_path(make_bundle):
    model = load(make_bundle("lstm", 1), backend="numpy")
    x = samples(1)[0]
    y1, y2 = model.step(x), model.step(x)
    assert y1.shape == (3,) and y1.dtype == np.float32 and not np.shares_memory(y1, y2)
    before = model.state
    for bad in (np.array([1.0, np.nan, 0.0, 0.0], np.float32),
                np.array([np.inf, 0.0, 0.0, 0.0], np.float32)):
        with pytest.raises(InputError, match="NaN or Inf"):
            model.step(bad)
    assert model.state == before
    with pytest.raises(InputError, match="shape"):
        model.step(np.ones(5, np.float32))
    with pytest.raises(InputError, match="shape"):
        model.step(np.ones((1, 4), np.float32))
    with pytest.raises(InputError, match="float32"):
        model.step(np.ones(4, np.int32))
    strided = np.ones((4, 3), np.float32)[:, 1]  # non-contiguous and big-endian samples step too
    np.testing.assert_array_equal(load(model.bundle.path, backend="numpy").step(strided),
                                  load(model.bundle.path, backend="numpy").step(
                                      np.ones(4, ">f4")))


def test_nan_propagates_when_asked(make_bundle):
    model = load(make_bundle("gru", 1), backend="numpy", nan_policy="propagate")
    assert np.isnan(model.step(np.full(4, np.nan, np.float32))).all()


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_pool_dict_form_equals_the_array_form(make_bundle, variant):
    path = make_bundle("lstm", 2, variants=("fp32", "int8"), preprocessing=PRE)
    fast_pool, array_pool = (StreamPool(load(path, backend="numpy", variant=variant), 40)
                             for _ in range(2))
    ids = [fast_pool.open() for _ in range(40)]
    assert ids == [array_pool.open() for _ in range(40)]
    rng = np.random.default_rng(3)
    for t in range(12):
        # all streams in order (rows stepped in place), then shuffled subsets (rows gathered)
        chosen = ids if t % 3 == 0 else list(rng.permutation(ids)[: rng.integers(1, 40)])
        xs = rng.normal(size=(len(chosen), 4)).astype(np.float32)
        got = fast_pool.step({int(i): x for i, x in zip(chosen, xs)})
        want = array_pool.step_arrays(chosen, xs)
        assert list(got) == [int(i) for i in chosen]
        np.testing.assert_array_equal(np.stack(list(got.values())), want)
    for i in ids:
        np.testing.assert_array_equal(fast_pool.state(i)["h"], array_pool.state(i)["h"])
        np.testing.assert_array_equal(fast_pool.state(i)["c"], array_pool.state(i)["c"])


def test_pool_array_form_fast_equals_checked(make_bundle):
    path = make_bundle("gru", 2, preprocessing=PRE)
    fast_pool, checked_pool = (StreamPool(load(path, backend="numpy"), 40) for _ in range(2))
    ids = [fast_pool.open() for _ in range(40)]
    assert ids == [checked_pool.open() for _ in range(40)]
    rng = np.random.default_rng(4)
    for t in range(8):
        chosen = ids if t % 2 == 0 else [int(i) for i in rng.permutation(ids)[:25]]
        xs = rng.normal(size=(len(chosen), 4)).astype(np.float32)
        # float64 samples take the checked path (numpy gather, scale, step, scatter)
        np.testing.assert_array_equal(fast_pool.step_arrays(chosen, xs),
                                      checked_pool.step_arrays(chosen, xs.astype(np.float64)))
    for i in ids:
        np.testing.assert_array_equal(fast_pool.state(i)["h"], checked_pool.state(i)["h"])
    a, b = ids[:2]
    before = fast_pool.state(a)["h"]
    with pytest.raises(InputError, match="twice"):
        fast_pool.step_arrays([a, b, a], samples(3))
    with pytest.raises(StreamError, match="unknown"):
        fast_pool.step_arrays([a, 999], samples(2))
    with pytest.raises(InputError, match="shape"):
        fast_pool.step_arrays([a, b], samples(3))
    np.testing.assert_array_equal(fast_pool.state(a)["h"], before)
    assert fast_pool.step_arrays([a, b], samples(2)[:, ::-1]).shape == (2, 3)  # strided


def test_pool_dict_form_keeps_its_errors(make_bundle):
    pool = StreamPool(load(make_bundle("rnn", 1), backend="numpy"), 3)
    a, b = pool.open(), pool.open()
    x = samples(1)[0]
    before = pool.state(a)
    with pytest.raises(InputError, match="NaN or Inf"):
        pool.step({a: x, b: np.full(4, np.nan, np.float32)})
    np.testing.assert_array_equal(pool.state(a)["h"], before["h"])
    with pytest.raises(StreamError, match="unknown"):
        pool.step({a: x, 7: x})
    with pytest.raises(InputError, match="shape"):
        pool.step({a: x, b: np.ones(3, np.float32)})
    ys = pool.step({a: x, b: x.astype(np.float64)})  # converted on the checked path
    np.testing.assert_array_equal(ys[a], ys[b])


def test_threads_sharing_a_model_lose_no_step(make_bundle):
    """Fast (float32) and checked (float64) steps of one constant sample from four threads: each
    step either happens or is refused, so the state equals that many steps in a row."""
    path = make_bundle("lstm", 1, hidden=64)
    model = load(path, backend="numpy")
    x = samples(1)[0]
    done, refused, barrier = [], [], threading.Barrier(4)

    def work(k):
        barrier.wait()
        for _ in range(300):
            try:
                model.step(x if k % 2 else x.astype(np.float64))
                done.append(1)
            except StreamError as exc:
                assert "another thread" in str(exc)
                refused.append(1)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    replay = load(path, backend="numpy")
    for _ in done:
        replay.step(x)
    assert len(done) + len(refused) == 1200
    np.testing.assert_array_equal(model.state.tensors["h"], replay.state.tensors["h"])


def test_mixed_precision_layer_keeps_separate_products(make_bundle, tmp_path):
    """A layer with an int8 input matrix and an fp32 recurrent one is not joined."""
    from edgernn.runtime import weights as W
    from edgernn.runtime.bundle import read_bundle

    path = make_bundle("lstm", 1, hidden=32)
    tensors = read_bundle(path).tensors("fp32")
    entries = {}
    for name, w in tensors.items():
        entries.update(W.encode(name, w, int8=name == "rnn.weight_ih_l0"))

    def patch(manifest):
        manifest["variants"]["mixed"] = {
            "files": ["weights/mixed.safetensors"], "precision": "mixed", "size_bytes": 0,
            "nonzero_params": W.nonzero_count(entries), "metrics": {}}

    import shutil

    copy = tmp_path / "mixed"
    shutil.copytree(path, copy)
    update_bundle(copy, {"weights/mixed.safetensors": safetensors_bytes(entries)}, patch)
    xs = samples(200)
    got = load(copy, backend="numpy", variant="mixed").run(xs)
    reference = load(copy, backend="numpy", variant="mixed", kernel="numpy").run(xs)
    np.testing.assert_allclose(got, reference, atol=2e-2)
    assert np.abs(got - reference).max() > 1e-5  # the int8 product quantized its activations


def test_without_the_module_the_kernel_runs_through_ctypes(make_bundle, monkeypatch):
    """Without Python's or numpy's headers the library is built without its module: no
    stepper, and steps (single and pooled) go through ctypes with the same results."""
    from edgernn.runtime.backends import kernel

    path = make_bundle("lstm", 2, preprocessing=PRE)
    xs = samples(30)
    with_module = load(path, backend="numpy")
    expect = with_module.run(xs)
    library = kernel._build()[0]
    monkeypatch.setattr(kernel, "_build", lambda: (library, None, "built"))
    plain = load(path, backend="numpy")
    assert plain._bound is None and plain._pool_stepper is None
    assert "fused C kernel" in plain.backend.describe()
    np.testing.assert_array_equal(plain.run(xs), expect)
    pool = StreamPool(plain, 2)
    a, b = pool.open(), pool.open()
    ys = pool.step({a: xs[0], b: xs[0]})
    np.testing.assert_array_equal(ys[a], expect[0])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("variant,atol", [("fp32", 2e-6), ("int8", 5e-2)])
def test_odd_sizes_and_stream_counts_match_the_reference(make_bundle, cell, variant, atol):
    """Hidden 20 (gate blocks not a multiple of the tiles), input 3, output 5; 13 and 70 streams
    (8-row, 4-row and single-row tiles, several 32-stream chunks), subsets gathered by row."""
    path = make_bundle(cell, 2, hidden=20, input_size=3, output=5, variants=("fp32", "int8"))
    rng = np.random.default_rng(7)
    for streams in (13, 70):
        fast = StreamPool(load(path, backend="numpy", variant=variant), streams)
        ref = StreamPool(load(path, backend="numpy", variant=variant, kernel="numpy"), streams)
        ids = [fast.open() for _ in range(streams)]
        assert ids == [ref.open() for _ in range(streams)]
        for t in range(6):
            chosen = ids if t % 2 == 0 else [int(i) for i in rng.permutation(ids)[:streams - 3]]
            xs = rng.normal(size=(len(chosen), 3)).astype(np.float32)
            got = fast.step(dict(zip(chosen, xs)))
            want = ref.step_arrays(chosen, xs)
            np.testing.assert_allclose(np.stack([got[i] for i in chosen]), want, atol=atol)


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_token_steps_take_the_compiled_path_with_the_same_results(make_bundle, variant):
    path = make_bundle("gru", 2, input_size=5, output=8, vocab_size=8, task="language_model",
                       variants=("fp32", "int8"), preprocessing={"vocabulary": list("abcdefgh")})
    fast, checked = (load(path, backend="numpy", variant=variant) for _ in range(2))
    assert fast._bound is not None
    ids = np.random.default_rng(5).integers(0, 8, 40)
    # 0-d arrays and strings take the checked path; ints and numpy integers the compiled one
    ys_fast = [fast.step(int(i) if k % 2 else i) for k, i in enumerate(ids)]
    ys_checked = [checked.step(np.array(i) if k % 2 else "abcdefgh"[i]) for k, i in enumerate(ids)]
    np.testing.assert_array_equal(ys_fast, ys_checked)
    assert fast.state == checked.state
    before = fast.state
    for bad in (8, -1, True, 2**70):
        with pytest.raises(InputError, match="token ids"):
            fast.step(bad)
    assert fast.state == before
    pool = StreamPool(fast, 2)
    a = pool.open()
    np.testing.assert_array_equal(pool.step({a: 3})[a],
                                  load(path, backend="numpy", variant=variant).step(3))
