"""Pruning masks: per-gate magnitude, N:M patterns, bad input, and masks surviving RNN weights."""

import pytest
import torch

from edgernn.compress.masks import (
    apply_masks,
    check_sparsity,
    magnitude_mask,
    magnitude_masks,
    n_of_m_mask,
    parse_pattern,
    prunable_names,
)
from edgernn.models import RecurrentModel
from edgernn.runtime.config import ModelConfig
from edgernn.runtime.errors import ConfigError


def test_magnitude_mask_prunes_each_gate_block_to_the_target():
    torch.manual_seed(0)
    w = torch.randn(4 * 6, 5)
    w[:6] *= 100  # one gate much larger: a global threshold would spare it and empty the others
    mask = magnitude_mask(w, 0.8, gates=4)
    for g in range(4):
        block, mag = mask[g * 6:(g + 1) * 6].bool(), w[g * 6:(g + 1) * 6].abs()
        assert block.sum().item() == 30 - round(0.8 * 30)
        assert mag[block].min() >= mag[~block].max()


def test_n_of_m_keeps_the_largest_n_in_every_group():
    w = torch.tensor([[0.1, -3.0, 2.0, 0.5, 9.0, -8.0, 0.0, 1.0, 7.0, 0.2]])
    mask = n_of_m_mask(w, 2, 4)
    assert mask.tolist() == [[0, 1, 1, 0, 1, 1, 0, 0, 1, 1]]


@pytest.mark.parametrize("bad", ["4:2", "2:2", "0:4", "2/4", "two:four", "2:4:8"])
def test_bad_patterns_are_refused(bad):
    with pytest.raises(ConfigError):
        parse_pattern(bad)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_sparsity_outside_unit_interval_is_refused(bad):
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        check_sparsity(bad)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_masks_hold_through_training_steps_with_flat_rnn_weights(cell):
    torch.manual_seed(0)
    model = RecurrentModel(ModelConfig(cell=cell, input_size=3, hidden_size=8, num_layers=2))
    masks = magnitude_masks(model, 0.75)
    assert sorted(masks) == sorted(prunable_names(model)) and len(masks) == 4
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 5, 3)).pow(2).mean().backward()
        opt.step()
        apply_masks(model, masks)
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert torch.all(params[name][mask == 0] == 0)
        assert (params[name] != 0).float().mean().item() == pytest.approx(0.25, abs=0.02)
    # the RNN module still computes with the masked weights (no stale flat copy)
    out1 = model(torch.ones(1, 2, 3))
    with torch.no_grad():
        params[next(iter(masks))].zero_()
    assert not torch.allclose(out1, model(torch.ones(1, 2, 3)))
