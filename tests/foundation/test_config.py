import pytest

from edgernn.runtime.config import ModelConfig
from edgernn.runtime.errors import ConfigError


def test_config_round_trips_through_json():
    config = ModelConfig(cell="gru", input_size=5, hidden_size=32, num_layers=2, output_size=3,
                         head="every", task="classification", dropout=0.1, vocab_size=None)
    assert ModelConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("kwargs, message", [
    ({"cell": "transformer"}, "unknown cell 'transformer'"),
    ({"hidden_size": 0}, "hidden_size must be a positive int"),
    ({"cell": "lstm", "nonlinearity": "relu"}, "applies to the rnn cell only"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"head": "mean"}, "unknown head"),
])
def test_config_rejects_bad_values_with_a_message(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**kwargs)


def test_config_rejects_unknown_keys():
    with pytest.raises(ConfigError, match=r"unknown model config keys \['cells'\]"):
        ModelConfig.from_dict({"cells": "lstm"})


def test_bidirectional_is_not_streamable_and_lstm_carries_two_states():
    assert not ModelConfig(bidirectional=True).streamable
    assert ModelConfig(cell="lstm").state_names == ("h", "c")
    assert ModelConfig(cell="gru").state_names == ("h",)
