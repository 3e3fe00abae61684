"""Adopt a user's PyTorch model written the tutorial way as an edgernn RecurrentModel.

Recognised shape: [Embedding] -> nn.RNN | nn.LSTM | nn.GRU (either batch_first) -> [Dropout] ->
Linear head on the last step or on every step -> [Sigmoid]. The weights are copied exactly and the
adopted model's outputs are checked against the source module before it is returned.
"""

from __future__ import annotations

import torch
from torch import nn

from edgernn.models import RecurrentModel
from edgernn.runtime.config import ModelConfig
from edgernn.runtime.errors import AdoptError

RNN_CELLS = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}
IGNORED = (nn.Dropout, nn.Identity)
TOLERANCE = 1e-6


def adopt(module: nn.Module, example_input=None, task: str | None = None) -> RecurrentModel:
    """Return a RecurrentModel equal to ``module`` (outputs within 1e-6), or raise AdoptError.

    ``example_input`` is what ``module`` takes: a tensor, or a tuple such as ``(tokens,
    lengths)`` for models that pack variable-length batches. One is made up when omitted.
    ``task`` overrides the guess (sigmoid or token input with one output per sequence:
    classification; token input with per-step output: language_model; otherwise regression).
    """
    parts = _parts(module)
    rnn, head = parts["rnn"], parts["head"]
    embedding = parts.get("embedding")
    if getattr(rnn, "proj_size", 0):
        raise AdoptError(
            f"{type(module).__name__}: LSTM with proj_size={rnn.proj_size} is not supported"
        )
    dirs = 2 if rnn.bidirectional else 1
    if head.in_features != rnn.hidden_size * dirs:
        raise AdoptError(
            f"{type(module).__name__}: the Linear head takes {head.in_features} features but the "
            f"{type(rnn).__name__} gives {rnn.hidden_size * dirs}; only a head directly on the "
            "recurrent output can be adopted"
        )
    inputs = _example(module, rnn, embedding) if example_input is None else example_input
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    module.eval()
    with torch.no_grad():
        expected = _first(module(*args))
    x = args[0] if rnn.batch_first or embedding is not None else args[0].transpose(0, 1)
    batch, steps = x.shape[0], x.shape[1]
    head_kind = _head_kind(module, expected, batch, steps, rnn.batch_first or embedding is not None)
    sigmoid = "sigmoid" in parts
    config = ModelConfig(
        cell=RNN_CELLS[type(rnn)],
        input_size=rnn.input_size,
        hidden_size=rnn.hidden_size,
        num_layers=rnn.num_layers,
        output_size=head.out_features,
        head=head_kind,
        task=task or _guess_task(sigmoid, embedding is not None, head_kind),
        nonlinearity=getattr(rnn, "nonlinearity", "tanh"),
        dropout=float(rnn.dropout),
        bidirectional=rnn.bidirectional,
        vocab_size=embedding.num_embeddings if embedding is not None else None,
        output_activation="sigmoid" if sigmoid else "none",
    )
    model = RecurrentModel(config)
    _copy_weights(model, rnn, head, embedding)
    model.eval()
    lengths = args[1] if len(args) > 1 else None
    got = model.predict(x, lengths)
    if head_kind == "every" and not (rnn.batch_first or embedding is not None):
        got = got.transpose(0, 1)
    diff = (got - expected.reshape(got.shape)).abs().max().item()
    if diff > TOLERANCE:
        raise AdoptError(
            f"{type(module).__name__}.forward does more than [Embedding] -> "
            f"{type(rnn).__name__} -> Linear (adopted outputs differ by {diff:.3g}); "
            "adopt models of that shape only"
        )
    return model


def _parts(module: nn.Module) -> dict[str, nn.Module]:
    parts: dict[str, nn.Module] = {}
    for name, child in module.named_children():
        if isinstance(child, IGNORED):
            continue
        kind = (
            "rnn" if type(child) in RNN_CELLS
            else "embedding" if isinstance(child, nn.Embedding)
            else "head" if isinstance(child, nn.Linear)
            else "sigmoid" if isinstance(child, nn.Sigmoid)
            else None
        )
        if kind is None:
            raise AdoptError(
                f"{type(module).__name__}.{name} is a {type(child).__name__}; edgernn adopts "
                "[Embedding] -> RNN/LSTM/GRU -> [Dropout] -> Linear [-> Sigmoid] models only"
            )
        if kind in parts:
            raise AdoptError(
                f"{type(module).__name__} has more than one {type(child).__name__} "
                f"({name!r}); edgernn adopts a single recurrent stack with one Linear head"
            )
        parts[kind] = child
    for needed, what in (("rnn", "nn.RNN, nn.LSTM or nn.GRU layer"), ("head", "Linear head")):
        if needed not in parts:
            raise AdoptError(f"{type(module).__name__} has no {what}; nothing to adopt")
    return parts


def _example(module: nn.Module, rnn: nn.Module, embedding):
    gen = torch.Generator().manual_seed(0)
    batch, steps = 3, 7
    if embedding is not None:
        return torch.randint(0, embedding.num_embeddings, (batch, steps), generator=gen)
    shape = (batch, steps, rnn.input_size) if rnn.batch_first else (steps, batch, rnn.input_size)
    return torch.randn(*shape, generator=gen)


def _first(output):
    return output[0] if isinstance(output, (tuple, list)) else output


def _head_kind(module, output: torch.Tensor, batch: int, steps: int, batch_first: bool) -> str:
    per_sequence = output.dim() == 2 or output.shape[1] != steps
    if output.dim() >= 2 and output.shape[0] == batch and per_sequence:
        return "last"
    time_axis = 1 if batch_first else 0
    if output.dim() == 3 and output.shape[time_axis] == steps:
        return "every"
    if output.dim() == 2 and output.shape[0] == batch * steps:
        return "every"
    raise AdoptError(
        f"{type(module).__name__} returns shape {tuple(output.shape)}; expected (batch, out) or "
        "(batch, time, out)"
    )


def _guess_task(sigmoid: bool, tokens: bool, head: str) -> str:
    if tokens and head == "every":
        return "language_model"
    return "classification" if sigmoid or tokens else "regression"


def _copy_weights(model: RecurrentModel, rnn: nn.Module, head: nn.Linear, embedding) -> None:
    with torch.no_grad():
        for name, param in model.rnn.named_parameters():
            source = getattr(rnn, name, None)
            param.copy_(source if source is not None else torch.zeros_like(param))
        model.head.weight.copy_(head.weight)
        if head.bias is not None:
            model.head.bias.copy_(head.bias)
        else:
            model.head.bias.zero_()
        if embedding is not None:
            model.embedding.weight.copy_(embedding.weight)
