"""StreamPool: many independent streams, batched stepping, slot reuse, stream errors."""

import numpy as np
import pytest

from edgernn.runtime import InputError, StreamError, StreamPool, load


@pytest.fixture(params=[{"kernel": "numpy"}, {}], ids=["numpy", "numpy-auto"])
def model(request, make_bundle):
    return load(make_bundle("gru", 2), backend="numpy", **request.param)


def test_streams_are_independent_and_match_single_stepping(model):
    rng = np.random.default_rng(0)
    pool = StreamPool(model, capacity=4)
    ids = [pool.open() for _ in range(3)]
    xs = rng.normal(size=(3, 25, 4)).astype(np.float32)
    got = {i: [] for i in ids}
    for t in range(25):
        # stream 1 skips every third step: only streams with a sample are advanced
        step = {i: xs[k, t] for k, i in enumerate(ids) if not (k == 1 and t % 3 == 0)}
        for i, y in pool.step(step).items():
            got[i].append(y)
    for k, i in enumerate(ids):
        mask = [not (k == 1 and t % 3 == 0) for t in range(25)]
        expect = model.run(xs[k][mask], state=model.new_state())
        np.testing.assert_allclose(np.stack(got[i]), expect, atol=1e-6)


def test_full_pool_batch_path(model):
    pool = StreamPool(model, capacity=3)
    ids = [pool.open() for _ in range(3)]
    x = np.ones(4, np.float32)
    ys = pool.step({i: x for i in ids})
    np.testing.assert_allclose(ys[ids[0]], ys[ids[2]], atol=1e-6)
    np.testing.assert_allclose(ys[ids[0]], model.step(x, state=model.new_state()), atol=1e-6)


def test_open_close_reuse_reset_and_errors(model):
    pool = StreamPool(model, capacity=2)
    a, b = pool.open(), pool.open()
    with pytest.raises(StreamError, match="full"):
        pool.open()
    x = np.ones(4, np.float32)
    first = pool.step({a: x})[a]
    pool.step({a: x, b: x})
    pool.reset(a)
    np.testing.assert_array_equal(pool.step({a: x})[a], first)
    pool.close(a)
    with pytest.raises(StreamError, match="closed"):
        pool.step({a: x})
    with pytest.raises(StreamError, match="unknown"):
        pool.step({99: x})
    c = pool.open()  # the freed slot is reused, starting from zero state
    assert c not in (a, b) and len(pool) == 2
    np.testing.assert_array_equal(pool.step({c: x})[c], first)
    with pytest.raises(InputError, match="shape"):
        pool.step({b: np.ones(3, np.float32)})
    with pytest.raises(InputError, match="different shapes"):
        pool.step({b: np.ones(4, np.float32), c: np.ones(3, np.float32)})
    with pytest.raises(InputError, match="capacity"):
        StreamPool(model, 0)


def test_state_get_and_set_per_stream(model):
    pool = StreamPool(model, capacity=2)
    a, b = pool.open(), pool.open()
    x = np.ones(4, np.float32)
    pool.step({a: x})
    pool.set_state(b, pool.state(a))
    ys = pool.step({a: x, b: x})
    np.testing.assert_array_equal(ys[a], ys[b])


def test_step_arrays_matches_step(model):
    pool = StreamPool(model, capacity=4)
    ids = [pool.open() for _ in range(3)]
    xs = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    ys = pool.step_arrays(ids[::-1], xs[::-1])
    for i in ids:
        pool.reset(i)
    by_dict = pool.step({i: x for i, x in zip(ids, xs)})
    np.testing.assert_array_equal(ys[::-1], np.stack([by_dict[i] for i in ids]))
    with pytest.raises(InputError, match="shape"):
        pool.step_arrays(ids, xs[:2])
    with pytest.raises(InputError, match="twice"):
        pool.step_arrays([ids[0], ids[0]], xs[:2])
