"""The cubic gradual schedule and the mask-keeping hook."""

import pytest
import torch

from edgernn.compress.prune import CubicSchedule, unstructured_keeper
from edgernn.models import RecurrentModel
from edgernn.runtime.config import ModelConfig


def test_cubic_schedule_ramps_fast_then_slow_and_ends_at_the_target():
    schedule = CubicSchedule(0.8, total_steps=300)
    events = {t: schedule(t) for t in range(1, 301) if schedule(t) is not None}
    assert max(events) == schedule.ramp_steps == 200 and len(events) == 10
    values = list(events.values())
    assert values == sorted(values) and values[-1] == pytest.approx(0.8)
    steps = [b - a for a, b in zip(values, values[1:])]
    assert steps == sorted(steps, reverse=True)  # the cubic front-loads pruning
    assert events[100] == pytest.approx(0.8 * (1 - 0.5 ** 3))


def test_gradual_keeper_reaches_the_target_sparsity_on_schedule():
    model = RecurrentModel(ModelConfig(cell="gru", input_size=4, hidden_size=10))
    keeper = unstructured_keeper(model, 0.6, "gradual", total_steps=30)
    assert (model.rnn.weight_hh_l0 == 0).float().mean() == 0
    zeros = []
    for step in range(1, 31):
        keeper(model, step)
        zeros.append((model.rnn.weight_hh_l0 == 0).float().mean().item())
    assert zeros == sorted(zeros) and zeros[-1] == pytest.approx(0.6, abs=0.01)
    assert zeros[4] < 0.6


def test_oneshot_keeper_prunes_at_once():
    model = RecurrentModel(ModelConfig(cell="lstm", input_size=4, hidden_size=10))
    unstructured_keeper(model, 0.5, "oneshot", total_steps=30)
    assert torch.mean((model.rnn.weight_ih_l0 == 0).float()).item() == pytest.approx(0.5)
