"""The streaming step graph: one time step of the decomposed cell, batch-first states.

Inputs ``x`` (batch, F) float32 or (batch,) int64 token ids, ``state_h_in`` (batch, layers,
hidden) [, ``state_c_in``]; outputs ``y`` (batch, O) after ``output_activation``, and
``state_h_out`` [, ``state_c_out``]. Gates are split in PyTorch order (LSTM i,f,g,o; GRU r,z,n)
straight from the bundle's tensors, so no gate reordering is needed.
"""

from __future__ import annotations

import numpy as np
import onnx

from edgernn.runtime import weights as W
from edgernn.runtime.errors import NotStreamableError

from .graph import GraphBuilder
from .quantize import matmul_weight
from .spec import ExportSpec, TensorSpec

# Triton sequence-batching controls; CORRID is accepted for routing and not used by the cell.
CONTROLS = (TensorSpec("START", "float32", (1,)), TensorSpec("READY", "float32", (1,)),
            TensorSpec("CORRID", "uint64", (1,)))


def build_step_graph(spec: ExportSpec, entries: dict[str, np.ndarray],
                     preprocessing: dict | None = None, controls: bool = False) -> onnx.ModelProto:
    """The step graph of ``spec``'s model from a variant's encoded tensors.

    ``controls`` adds Triton's sequence-batching inputs ``START`` (zero the incoming state),
    ``READY`` (an empty batch slot keeps its state), each (batch, 1) float32, and ``CORRID``.
    """
    c = spec.config
    if not c.streamable:
        raise NotStreamableError(
            f"a bidirectional {c.cell} cannot be stepped one sample at a time, so it has no step "
            "graph; export the sequence graph (it is written for every model)"
        )
    g = GraphBuilder()
    x = spec.x.name
    if c.token_input:
        x = g.op("Gather", [g.const("embedding", W.decode(entries, "embedding.weight")), x],
                 "embed", axis=0)
    states = {n: f"state_{n}_in" for n in c.state_names}
    if controls:
        keep = g.op("Sub", [g.const("one", np.float32(1.0)), "START"], "keep")
        keep = g.op("Unsqueeze", [keep, g.const("axis2", np.array([2]))], "keep3")
        states = {n: g.op("Mul", [s, keep], f"{n}_reset") for n, s in states.items()}
    new: dict[str, list[str]] = {n: [] for n in c.state_names}
    for k in range(c.num_layers):
        prev = {n: g.op("Gather", [s, g.const(f"layer{k}", np.array(k))], f"{n}{k}_in", axis=1)
                for n, s in states.items()}
        x, layer_state = CELLS[c.cell](g, spec, entries, k, x, prev)
        for n, value in layer_state.items():
            new[n].append(value)
    y = g.op("Add", [matmul_weight(g, x, entries, "head.weight"),
                     g.const("head_bias", W.decode(entries, "head.bias"))], "head")
    if c.output_activation == "sigmoid":
        y = g.op("Sigmoid", [y], "output_activation")
    g.rename_output(y, "y")
    for n, layers in new.items():
        stacked = [g.op("Unsqueeze", [v, g.const("axis1", np.array([1]))], f"{n}{k}_unsq")
                   for k, v in enumerate(layers)]
        out = stacked[0] if len(stacked) == 1 else g.op("Concat", stacked, f"{n}_stack", axis=1)
        if controls:
            ready = g.op("Unsqueeze", ["READY", g.const("axis2", np.array([2]))], f"{n}_ready")
            delta = g.op("Mul", [g.op("Sub", [out, states[n]], f"{n}_delta"), ready], f"{n}_gate")
            out = g.op("Add", [states[n], delta], f"{n}_keep_unready")
        g.rename_output(out, f"state_{n}_out")
    inputs = [*spec.step_inputs(), *(CONTROLS if controls else ())]
    return g.model(spec, inputs, spec.step_outputs(), f"edgernn_{c.cell}_step",
                   spec.metadata(preprocessing))


def _gates(g, entries, k, x, h, pieces):
    """(input projections, hidden projections), each split into ``pieces`` gate blocks."""
    gi = g.op("Add", [matmul_weight(g, x, entries, f"rnn.weight_ih_l{k}"),
                      g.const(f"b_ih{k}", W.decode(entries, f"rnn.bias_ih_l{k}"))], f"gi{k}")
    gh = g.op("Add", [matmul_weight(g, h, entries, f"rnn.weight_hh_l{k}"),
                      g.const(f"b_hh{k}", W.decode(entries, f"rnn.bias_hh_l{k}"))], f"gh{k}")
    if pieces == 1:
        return [gi], [gh]
    size = W.decode(entries, f"rnn.bias_ih_l{k}").shape[0] // pieces
    split = g.const(f"split{k}", np.array([size] * pieces))
    return (g.op("Split", [gi, split], f"gi{k}_split", outputs=pieces, axis=1),
            g.op("Split", [gh, split], f"gh{k}_split", outputs=pieces, axis=1))


def _lstm(g, spec, entries, k, x, prev):
    """i,f,g,o = x W_ih^T + b_ih + h W_hh^T + b_hh; c' = f*c + i*g; h' = o*tanh(c')."""
    gi, gh = _gates(g, entries, k, x, prev["h"], 4)
    i, f, cand, o = (g.op("Add", [a, b], f"l{k}_{n}") for a, b, n in zip(gi, gh, "ifgo"))
    i, f, o = (g.op("Sigmoid", [v], f"l{k}_{n}_act") for v, n in ((i, "i"), (f, "f"), (o, "o")))
    cand = g.op("Tanh", [cand], f"l{k}_g_act")
    c_new = g.op("Add", [g.op("Mul", [f, prev["c"]], f"l{k}_fc"),
                         g.op("Mul", [i, cand], f"l{k}_ig")], f"l{k}_c")
    h_new = g.op("Mul", [o, g.op("Tanh", [c_new], f"l{k}_c_act")], f"l{k}_h")
    return h_new, {"h": h_new, "c": c_new}


def _gru(g, spec, entries, k, x, prev):
    """r,z = sigmoid(gi + gh); n = tanh(gi_n + r*gh_n); h' = n + z*(h - n)."""
    (ri, zi, ni), (rh, zh, nh) = _gates(g, entries, k, x, prev["h"], 3)
    r = g.op("Sigmoid", [g.op("Add", [ri, rh], f"l{k}_r")], f"l{k}_r_act")
    z = g.op("Sigmoid", [g.op("Add", [zi, zh], f"l{k}_z")], f"l{k}_z_act")
    n = g.op("Tanh", [g.op("Add", [ni, g.op("Mul", [r, nh], f"l{k}_rn")], f"l{k}_n")],
             f"l{k}_n_act")
    diff = g.op("Sub", [prev["h"], n], f"l{k}_h_minus_n")
    h_new = g.op("Add", [n, g.op("Mul", [z, diff], f"l{k}_z_diff")], f"l{k}_h")
    return h_new, {"h": h_new}


def _rnn(g, spec, entries, k, x, prev):
    """h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh or relu."""
    (gi,), (gh,) = _gates(g, entries, k, x, prev["h"], 1)
    act = "Tanh" if spec.config.nonlinearity == "tanh" else "Relu"
    h_new = g.op(act, [g.op("Add", [gi, gh], f"l{k}_pre")], f"l{k}_h")
    return h_new, {"h": h_new}


CELLS = {"lstm": _lstm, "gru": _gru, "rnn": _rnn}
