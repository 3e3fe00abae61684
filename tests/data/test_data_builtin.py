"""Built-in datasets: shapes, determinism, splits without leakage, the registry."""

import numpy as np
import pytest

from edgernn.data import list_datasets, load_dataset
from edgernn.data.chars import VOCABULARY
from edgernn.data.csvfile import read_columns
from edgernn.data.files import CO2_CSV
from edgernn.runtime.errors import DataError


def test_registry_lists_the_builtin_sets():
    assert set(list_datasets()) == {"sine", "co2", "chars", "digits"}


def test_unknown_name_names_the_known_ones():
    with pytest.raises(DataError, match="unknown dataset 'mnist'.*sine, co2, chars, digits"):
        load_dataset("mnist")


def test_unknown_option_is_refused():
    with pytest.raises(DataError, match="does not take \\['windw'\\]"):
        load_dataset("co2", windw=3)


def test_sine_is_seeded():
    a, b, c = (load_dataset("sine", seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.train.X, b.train.X)
    assert not np.array_equal(a.train.X, c.train.X)
    assert a.train.X.shape[1:] == (32, 1) and a.train.y.shape[1:] == (1,)
    assert len(a.train) + len(a.val) + len(a.test) == 1500
    # standardized with training statistics
    assert abs(float(a.train.X.mean())) < 1e-3 and abs(float(a.train.X.std()) - 1) < 1e-3


def test_co2_splits_by_time_and_scales_on_train_only():
    d = load_dataset("co2")
    change = np.diff(read_columns(CO2_CSV, ["co2"])[:, 0])
    train_rows = change[: int(len(change) * 0.7)]
    assert d.preprocessing["input_mean"][0] == pytest.approx(train_rows.mean(), rel=1e-4)
    assert d.preprocessing["target_std"][0] == pytest.approx(train_rows.std(), rel=1e-4)
    # the last training target precedes every val target, which precedes every test target
    mean, std = d.preprocessing["target_mean"][0], d.preprocessing["target_std"][0]

    def unscale(split):
        return split.y[:, 0] * std + mean

    window = d.train.X.shape[1]
    np.testing.assert_allclose(unscale(d.train)[:3], change[window:window + 3], atol=1e-4)
    n_train, n_val = len(d.train), len(d.val)
    np.testing.assert_allclose(unscale(d.val)[0], change[window + n_train], atol=1e-4)
    np.testing.assert_allclose(unscale(d.test)[0], change[window + n_train + n_val], atol=1e-4)
    assert d.source["baseline"]["test_rmse"] > 0 and d.source["licence"] == "public domain"


def test_chars_is_a_next_character_task():
    d = load_dataset("chars", size=20_000, seq_len=50)
    assert d.head == "every" and d.task == "language_model" and d.vocab_size == len(VOCABULARY)
    np.testing.assert_array_equal(d.train.X[0, 1:], d.train.y[0, :-1])
    np.testing.assert_array_equal(d.train.X[1, 0], d.train.y[0, -1])
    assert d.preprocessing["vocabulary"] == VOCABULARY
    assert "".join(VOCABULARY[i] for i in d.train.X[0]).strip()


def test_digits_is_ten_class_sequences():
    d = load_dataset("digits")
    assert d.train.X.shape[1:] == (8, 8) and d.output_size == 10 and d.metric == "accuracy"
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    assert set(np.unique(d.train.y)) == set(range(10))
    assert d.class_names == [str(i) for i in range(10)]
