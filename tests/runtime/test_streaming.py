"""StreamingModel: inputs, errors, state handling, preprocessing, threads, memory."""

import pickle
import threading

import numpy as np
import pytest
from runtime_helpers import reference_outputs

from edgernn.runtime import (
    BackendUnavailableError,
    InputError,
    NotStreamableError,
    State,
    StreamError,
    load,
    pack_bundle,
)
from edgernn.runtime.errors import ConfigError

BACKENDS = [("numpy", {"kernel": "numpy"}), ("numpy", {}), ("torch", {})]


@pytest.fixture(params=BACKENDS, ids=["numpy", "numpy-auto", "torch"])
def model(request, make_bundle):
    backend, options = request.param
    return load(make_bundle("lstm", 2), backend=backend, **options)


def xs_for(steps, features=4, seed=1):
    return np.random.default_rng(seed).normal(size=(steps, features)).astype(np.float32)


@pytest.mark.parametrize("bad, match", [
    (np.zeros(5, np.float32), "shape"),
    (np.zeros((1, 4), np.float32), "shape"),       # no silent broadcasting of a batch axis
    (np.zeros(4, np.int64), "float32"),
    (np.array(["a"] * 4), "float32"),
    (3.0, "shape"),
])
def test_wrong_shape_or_dtype_is_refused(model, bad, match):
    with pytest.raises(InputError, match=match):
        model.step(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises_and_leaves_the_state(model, value):
    model.step(xs_for(1)[0])
    before = model.state
    x = np.ones(4, np.float32)
    x[2] = value
    with pytest.raises(InputError, match="NaN or Inf"):
        model.step(x)
    assert model.state == before


def test_nan_policy_propagate(make_bundle):
    model = load(make_bundle("gru", 1), backend="numpy", nan_policy="propagate")
    assert np.isnan(model.step(np.full(4, np.nan, np.float32))).all()
    with pytest.raises(ConfigError, match="nan_policy"):
        load(make_bundle("gru", 1), backend="numpy", nan_policy="zero")


def test_run_and_stream_equal_stepping(model):
    xs = xs_for(50)
    stepped = np.stack([model.step(x) for x in xs])
    model.reset()
    np.testing.assert_array_equal(model.run(xs), stepped)
    model.reset()
    np.testing.assert_array_equal(np.stack(list(model.stream(iter(xs)))), stepped)


def test_snapshot_restore_and_independent_states(model):
    xs = xs_for(40)
    model.run(xs[:20])
    snap = model.state
    tail = model.run(xs[20:])
    model.state = snap
    np.testing.assert_array_equal(model.run(xs[20:]), tail)
    # a state pickled "to another process" continues identically
    model.state = pickle.loads(pickle.dumps(snap))
    np.testing.assert_array_equal(model.run(xs[20:]), tail)
    # one model, many states: a second state does not disturb the first
    other = model.new_state()
    model.state = snap
    model.run(xs[:5], state=other)
    np.testing.assert_array_equal(model.run(xs[20:]), tail)


def test_state_is_never_reset_implicitly(model):
    x = xs_for(1)[0]
    first = model.step(x)
    assert not np.array_equal(model.step(x), first)
    model.reset()
    np.testing.assert_array_equal(model.step(x), first)


def test_bad_state_is_refused(model):
    with pytest.raises(InputError, match="shape"):
        model.state = {"h": np.zeros((1, 2, 3), np.float32), "c": np.zeros((1, 2, 16), np.float32)}
    with pytest.raises(InputError, match="needs tensors"):
        model.state = {"h": np.zeros((1, 2, 16), np.float32)}
    with pytest.raises(InputError, match="NaN"):
        model.state = {"h": np.full((1, 2, 16), np.nan, np.float32),
                       "c": np.zeros((1, 2, 16), np.float32)}
    with pytest.raises(InputError, match="batch"):
        model.step(xs_for(1)[0], state=model.new_state(3))


def test_step_batch_matches_single_streams(model):
    xs = xs_for(30 * 3).reshape(30, 3, 4)
    batch_state = model.new_state(3)
    batched = np.stack([model.step_batch(xs[t], batch_state) for t in range(30)])
    for s in range(3):
        single = model.run(xs[:, s], state=model.new_state())
        np.testing.assert_allclose(batched[:, s], single, atol=1e-6)


def test_step_after_close(model):
    model.close()
    with pytest.raises(StreamError, match="closed"):
        model.step(xs_for(1)[0])


def test_concurrent_use_is_refused_not_corrupting(make_bundle):
    model = load(make_bundle("lstm", 1, hidden=256), backend="numpy", kernel="numpy")
    errors, barrier = [], threading.Barrier(4)

    def work():
        barrier.wait()
        for x in xs_for(200):
            try:
                model.step(x, state=model.new_state())
            except StreamError as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors and "another thread" in errors[0]


def test_preprocessing_from_the_manifest(make_bundle):
    pre = {"input_mean": [1.0, 2.0, 3.0, 4.0], "input_std": [2.0, 2.0, 4.0, 4.0],
           "target_mean": [10.0, 0.0, -1.0], "target_std": [3.0, 1.0, 0.5]}
    path = make_bundle("gru", 1, preprocessing=pre)
    xs = xs_for(20)
    scaled = (xs - np.float32(pre["input_mean"])) / np.float32(pre["input_std"])
    expect = reference_outputs(path, "fp32", scaled) * np.float32(pre["target_std"]) \
        + np.float32(pre["target_mean"])
    np.testing.assert_allclose(load(path, backend="numpy").run(xs), expect, atol=1e-4)
    raw = load(path, backend="numpy", preprocess=False).run(xs)
    np.testing.assert_allclose(raw, reference_outputs(path, "fp32", xs), atol=1e-5)


def test_token_model_with_vocabulary(make_bundle):
    vocab = list("abcdefgh")
    path = make_bundle("lstm", 1, input_size=5, output=8, vocab_size=8, task="language_model",
                       preprocessing={"vocabulary": vocab})
    model = load(path, backend="numpy")
    by_string = [model.step(ch) for ch in "abc"]
    model.reset()
    np.testing.assert_array_equal([model.step(i) for i in (0, 1, 2)], by_string)
    for bad in ("z", 1.5, np.zeros(2, np.int64)):
        with pytest.raises(InputError):
            model.step(bad)
    with pytest.raises(InputError, match="token ids"):
        model.step(8)


def test_zip_bundle_and_bidirectional(make_bundle, tmp_path):
    path = make_bundle("rnn", 1)
    zipped = pack_bundle(path, tmp_path / "b.zip")
    xs = xs_for(10)
    np.testing.assert_array_equal(load(zipped, backend="numpy").run(xs),
                                  load(path, backend="numpy").run(xs))
    with pytest.raises(NotStreamableError, match="bidirectional"):
        load(make_bundle("gru", 1, bidirectional=True), backend="numpy")


def test_backend_choice_and_errors(make_bundle):
    path = make_bundle("lstm", 1)
    with pytest.raises(ConfigError, match="unknown backend"):
        load(path, backend="jax")
    with pytest.raises(ConfigError, match="kernel"):
        load(path, backend="numpy", kernel="fortran")
    with pytest.raises(ConfigError, match="name it"):
        load(path, kernel="numpy")
    assert load(path).backend.name in ("numpy", "onnxruntime")


def test_onnxruntime_without_export_says_how_to_export(make_bundle):
    pytest.importorskip("onnxruntime")
    path = make_bundle("lstm", 1, seed=3)
    with pytest.raises(BackendUnavailableError, match="edgernn export .* --format onnx"):
        load(path, backend="onnxruntime")


def test_memory_is_flat_over_many_steps(make_bundle):
    """100,000 steps here; benchmarks/runtime_speed.py --memory runs 1,000,000."""
    import tracemalloc

    model = load(make_bundle("lstm", 1), backend="numpy")
    x = xs_for(1)[0]
    for _ in range(1000):
        model.step(x)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(100_000 if model.backend.checks_finite else 10_000):
        model.step(x)
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes grew"


def test_state_object():
    s = State(("h", "c"), 2, 1, 3)
    s.tensors["h"][:] = 1
    assert s.copy() == s and s.copy() is not s
    s.reset([0])
    assert s.tensors["h"][0].sum() == 0 and s.tensors["h"][1].sum() == 3
    assert "State" in repr(s)


def test_non_contiguous_input_steps_like_a_copy(model):
    wide = xs_for(3, features=8)
    strided = [row[::2] for row in wide]  # shape (4,), not contiguous
    got = [model.step(x) for x in strided]
    model.reset()
    np.testing.assert_array_equal(got, [model.step(np.ascontiguousarray(x)) for x in strided])
