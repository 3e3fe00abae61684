"""The numpy cells against ONNX's own LSTM/GRU/RNN node test cases.

The onnx wheel ships no ``data/node`` directory, so the cases are regenerated with onnx's own
case generators (``onnx.backend.test.case.node``), which build each model and its expected
outputs with onnx's reference implementation.
"""

import importlib

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

from edgernn.runtime import cells  # noqa: E402
from edgernn.runtime.errors import ConfigError  # noqa: E402

OPS = {"LSTM": cells.lstm, "GRU": cells.gru, "RNN": cells.rnn}
INPUTS = {"LSTM": ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"],
          "GRU": ["X", "W", "R", "B", "sequence_lens", "initial_h"],
          "RNN": ["X", "W", "R", "B", "sequence_lens", "initial_h"]}


def _cases():
    import onnx.backend.test.case.node as node_cases

    for module in ("lstm", "gru", "rnn"):
        importlib.import_module(f"onnx.backend.test.case.node.{module}")
    return [c for c in node_cases._NodeTestCases if c.model.graph.node[0].op_type in OPS]


CASES = _cases()


def run_node(node, inputs):
    """Run one ONNX LSTM/GRU/RNN node with the numpy cells, by the node's input/output names."""
    args = {name: value for name, value in zip([n for n in node.input if n], inputs)}
    by_position = {}
    for position, name in enumerate(node.input):
        if name:
            by_position[INPUTS[node.op_type][position]] = args[name]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    outs = OPS[node.op_type](**by_position, **attrs)
    return [out for name, out in zip(node.output, outs) if name]


def test_every_op_has_cases():
    ops = sorted({c.model.graph.node[0].op_type for c in CASES})
    assert ops == ["GRU", "LSTM", "RNN"]
    assert any(a.name == "layout" for c in CASES for a in c.model.graph.node[0].attribute)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_onnx_node_case(case):
    node = case.model.graph.node[0]
    (inputs, expected), = case.data_sets
    inputs = [numpy_helper.to_array(i) if not isinstance(i, np.ndarray) else i for i in inputs]
    got = run_node(node, inputs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=case.rtol, atol=max(case.atol, 1e-6))


def test_gru_linear_before_reset_matches_torch():
    torch = pytest.importorskip("torch")
    from edgernn.runtime.gates import onnx_layer_params

    torch.manual_seed(1)
    net = torch.nn.GRU(3, 5)
    tensors = {f"rnn.{k}": v.detach().numpy() for k, v in net.state_dict().items()}
    W, R, B = onnx_layer_params(tensors, "gru", 0)
    x, h0 = torch.randn(6, 2, 3), torch.randn(1, 2, 5)
    ref, ref_h = net(x, h0)
    Y, Y_h = cells.gru(x.numpy(), W[None], R[None], B[None], initial_h=h0.numpy(),
                       linear_before_reset=1)
    np.testing.assert_allclose(Y[:, 0], ref.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(Y_h, ref_h.detach().numpy(), atol=1e-5)
    Y0, _ = cells.gru(x.numpy(), W[None], R[None], B[None], initial_h=h0.numpy())
    assert np.abs(Y0 - Y).max() > 1e-3  # the attribute is honoured, not ignored


def test_sequence_lens_and_clip():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 2, 3)).astype(np.float32)
    W = rng.normal(size=(1, 4, 3)).astype(np.float32)
    R = rng.normal(size=(1, 4, 4)).astype(np.float32)
    Y, Y_h = cells.rnn(X, W, R, sequence_lens=np.array([4, 2]))
    assert np.all(Y[2:, 0, 1] == 0)
    np.testing.assert_array_equal(Y_h[0, 1], Y[1, 0, 1])
    Yc, _ = cells.rnn(X, W, R, clip=0.1)
    assert np.abs(Yc).max() <= np.tanh(0.1) + 1e-6


@pytest.mark.parametrize("kwargs, match", [
    ({"activations": ["Sigmoid", "Softsign", "Tanh"]}, "Softsign"),
    ({"activation_alpha": [0.5]}, "activation_alpha"),
    ({"input_forget": 1}, "input_forget"),
    ({"layout": 2}, "layout"),
    ({"direction": "sideways"}, "direction"),
    ({"peephole_mode": 1}, "peephole_mode"),
])
def test_unsupported_attributes_raise(kwargs, match):
    X = np.zeros((2, 1, 3), np.float32)
    W, R = np.zeros((1, 8, 3), np.float32), np.zeros((1, 8, 2), np.float32)
    with pytest.raises(ConfigError, match=match):
        cells.lstm(X, W, R, **kwargs)
