import numpy as np
import pytest

from edgernn.runtime import InputError, generate, load, sample


def test_sample_greedy_topk_and_seeded():
    logits = np.array([0.0, 3.0, 1.0, 2.0])
    assert sample(logits, temperature=0) == 1
    draws = {sample(logits, top_k=2, rng=np.random.default_rng(s)) for s in range(200)}
    assert draws == {1, 3}
    a = [sample(logits, rng=np.random.default_rng(7)) for _ in range(5)]
    assert a == [sample(logits, rng=np.random.default_rng(7)) for _ in range(5)]
    for bad in ({"temperature": -1}, {"top_k": 0}):
        with pytest.raises(InputError):
            sample(logits, **bad)
    with pytest.raises(InputError):
        sample(np.zeros((2, 2)))


def test_generate_runs_through_step(make_bundle):
    vocab = list("abcdefgh")
    path = make_bundle("gru", 1, input_size=5, output=8, vocab_size=8, task="language_model",
                       preprocessing={"vocabulary": vocab})
    model = load(path, backend="numpy")
    before = model.state
    text = generate(model, "abc", 20, temperature=0.8, top_k=4, seed=3)
    assert len(text) == 20 and set(text) <= set(vocab)
    assert text == generate(model, "abc", 20, temperature=0.8, top_k=4, seed=3)
    assert model.state == before
    greedy = generate(model, ["a"], 5, temperature=0)
    state = model.new_state()
    logits = model.step("a", state)
    expect = []
    for _ in range(5):
        expect.append(vocab[int(np.argmax(logits))])
        logits = model.step(expect[-1], state)
    assert greedy == expect
    with pytest.raises(InputError, match="token model"):
        generate(load(make_bundle("gru", 1), backend="numpy"), [0], 3)
