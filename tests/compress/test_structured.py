"""Hidden-unit removal: consistent across gates, layers, directions and the head."""

import numpy as np
import pytest
import torch

from edgernn.compress.structured import layer_outputs, prune_units, shrink, units_to_keep
from edgernn.models import RecurrentModel
from edgernn.runtime.config import ModelConfig
from edgernn.runtime.errors import ConfigError


def silence(model, dropped):
    """A copy of ``model`` whose ``dropped`` units of every layer send nothing onward."""
    c, h = model.config, model.config.hidden_size
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k in range(c.num_layers):
            cols = np.concatenate([d * h + dropped for d in range(c.directions)])
            for suffix in ("", "_reverse")[:c.directions]:
                params[f"rnn.weight_hh_l{k}{suffix}"][:, dropped] = 0
                nxt = f"rnn.weight_ih_l{k + 1}{suffix}" if k + 1 < c.num_layers else "head.weight"
                params[nxt][:, cols] = 0
    return model


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_removing_units_equals_silencing_them(cell, bidirectional):
    torch.manual_seed(0)
    config = ModelConfig(cell=cell, input_size=3, hidden_size=6, num_layers=2, output_size=2,
                         bidirectional=bidirectional)
    model = RecurrentModel(config).init_weights(1).eval()
    keep, dropped = np.array([0, 2, 3, 5]), np.array([1, 4])
    x = torch.randn(5, 7, 3)
    small = shrink(model, [keep, keep])
    assert small.config.hidden_size == 4
    torch.testing.assert_close(small(x), silence(model, dropped)(x), atol=1e-5, rtol=1e-5)


def test_layer_outputs_match_the_stacked_rnn():
    model = RecurrentModel(ModelConfig(cell="gru", input_size=3, hidden_size=5, num_layers=3))
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(layer_outputs(model.eval(), x)[-1], model.features(x)[0])


def test_the_least_important_units_go():
    torch.manual_seed(0)
    model = RecurrentModel(ModelConfig(cell="lstm", input_size=2, hidden_size=4)).init_weights(0)
    with torch.no_grad():  # unit 2 sends nothing onward: zero importance
        model.rnn.weight_hh_l0[:, 2] = 0
        model.head.weight[:, 2] = 0
    small = prune_units(model, 0.25, torch.randn(8, 5, 2))
    x = torch.randn(3, 5, 2)
    torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.95, -0.5, 0.05])
def test_fractions_that_leave_no_units_or_remove_none_are_refused(fraction):
    with pytest.raises(ConfigError):
        units_to_keep(8, fraction)
    assert units_to_keep(8, 0.5) == 4
