"""Structured hidden-unit pruning: a smaller dense model with the least important units removed.

Importance of unit ``j`` in layer ``k`` (summed over directions): the mean magnitude of its
output ``|h_j|`` over real roll-outs of data, times the L2 norm of its outgoing weights (its
column of the recurrent matrix over all gates, and of the next layer's input matrix or the
head). That estimates how much signal the unit sends onward. Each layer keeps its most
important units; their rows are kept in every gate of the input and recurrent matrices and
biases, their columns in the recurrent matrix, the next layer's input matrix and the head.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from edgernn.models import RNN_CLASSES, RecurrentModel
from edgernn.runtime.errors import ConfigError


def units_to_keep(hidden_size: int, fraction: float) -> int:
    """Units left after removing ``fraction`` of them; raises if none or all would remain."""
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"structured pruning fraction must be in (0, 1), got {fraction}")
    keep = int(round(hidden_size * (1.0 - float(fraction))))
    if keep < 1:
        raise ConfigError(
            f"structured pruning of {fraction:.0%} leaves no hidden units of {hidden_size}; "
            "use a smaller fraction"
        )
    if keep >= hidden_size:
        raise ConfigError(f"structured pruning of {fraction:.0%} removes none of {hidden_size} "
                          "hidden units; use a larger fraction")
    return keep


@torch.no_grad()
def layer_outputs(model: RecurrentModel, x: torch.Tensor, lengths=None) -> list[torch.Tensor]:
    """Each recurrent layer's outputs (B, T, H * directions), zero past each sequence's length.

    Sequences are not packed, so a reverse direction also reads the padding: good enough for
    importance scores, which is all this serves.
    """
    c = model.config
    inp = model.embedding(x.long()) if model.embedding is not None else x.float()
    params = dict(model.rnn.named_parameters())
    valid = torch.ones(inp.shape[:2]) if lengths is None else (
        torch.arange(inp.shape[1])[None, :] < torch.as_tensor(lengths)[:, None]).float()
    outs = []
    for k in range(c.num_layers):
        kwargs = dict(batch_first=True, bidirectional=c.bidirectional)
        if c.cell == "rnn":
            kwargs["nonlinearity"] = c.nonlinearity
        layer = RNN_CLASSES[c.cell](inp.shape[-1], c.hidden_size, 1, **kwargs)
        for name, p in layer.named_parameters():
            p.copy_(params[name.replace("_l0", f"_l{k}")])
        out, _ = layer(inp)
        out = out * valid[..., None]
        outs.append(out)
        inp = out
    return outs


def importance(model: RecurrentModel, x: torch.Tensor, lengths=None) -> list[np.ndarray]:
    """Per layer, one importance score per hidden unit (see the module docstring)."""
    c = model.config
    h, dirs = c.hidden_size, c.directions
    params = {k: v.detach() for k, v in model.named_parameters()}
    outs = layer_outputs(model, x, lengths)
    steps = float(np.sum(lengths)) if lengths is not None else x.shape[0] * x.shape[1]
    scores = []
    for k, out in enumerate(outs):
        mean_abs = out.abs().sum((0, 1)) / steps
        nxt = params[f"rnn.weight_ih_l{k + 1}"] if k + 1 < c.num_layers else params["head.weight"]
        score = torch.zeros(h)
        for d in range(dirs):
            suffix = "_reverse" if d else ""
            outgoing = params[f"rnn.weight_hh_l{k}{suffix}"].pow(2).sum(0)
            outgoing = outgoing + nxt[:, d * h:(d + 1) * h].pow(2).sum(0)
            if k + 1 < c.num_layers and dirs == 2:
                rev = params[f"rnn.weight_ih_l{k + 1}_reverse"]
                outgoing = outgoing + rev[:, d * h:(d + 1) * h].pow(2).sum(0)
            score += mean_abs[d * h:(d + 1) * h] * outgoing.sqrt()
        scores.append(score.numpy())
    return scores


def shrink(model: RecurrentModel, keep: list[np.ndarray]) -> RecurrentModel:
    """A dense model holding only the units ``keep[k]`` (sorted indices) of each layer."""
    c = model.config
    h, n, g, dirs = c.hidden_size, len(keep[0]), c.gates, c.directions
    tensors = model.to_numpy()
    out = dict(tensors)

    def cols(k: int) -> np.ndarray:  # columns fed by layer k's units, all directions
        return np.concatenate([d * h + keep[k] for d in range(dirs)])

    for k in range(c.num_layers):
        rows = np.concatenate([gate * h + keep[k] for gate in range(g)])
        for suffix in ("", "_reverse")[:dirs]:
            ih, hh = f"rnn.weight_ih_l{k}{suffix}", f"rnn.weight_hh_l{k}{suffix}"
            out[ih] = tensors[ih][rows][:, cols(k - 1)] if k > 0 else tensors[ih][rows]
            out[hh] = tensors[hh][rows][:, keep[k]]
            for b in ("bias_ih", "bias_hh"):
                out[f"rnn.{b}_l{k}{suffix}"] = tensors[f"rnn.{b}_l{k}{suffix}"][rows]
    out["head.weight"] = tensors["head.weight"][:, cols(c.num_layers - 1)]
    config = dataclasses.replace(c, hidden_size=n)
    return RecurrentModel.from_numpy(config, out)


def prune_units(model: RecurrentModel, fraction: float, x: torch.Tensor,
                lengths=None) -> RecurrentModel:
    """Remove ``fraction`` of the hidden units of every layer, least important first."""
    n = units_to_keep(model.config.hidden_size, fraction)
    scores = importance(model.eval(), x, lengths)
    keep = [np.sort(np.argsort(-s, kind="stable")[:n]) for s in scores]
    return shrink(model, keep)
