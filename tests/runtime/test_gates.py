import numpy as np
import pytest

from edgernn.runtime import gates
from edgernn.runtime.errors import ConfigError


def _labelled(cell, names, h=2, cols=3):
    return np.concatenate([np.full((h, cols), names.index(n), np.float32) for n in names])


@pytest.mark.parametrize("cell, torch_names, onnx_names", [
    ("lstm", "ifgo", "iofg"),   # ONNX calls the cell gate c; torch calls it g
    ("gru", "rzn", "zrn"),
    ("rnn", "h", "h"),
])
def test_gate_blocks_land_in_onnx_order(cell, torch_names, onnx_names):
    w = _labelled(cell, list(torch_names))
    out = gates.torch_to_onnx(w, cell)
    got = [torch_names[int(out[k * 2, 0])] for k in range(len(onnx_names))]
    assert "".join(got) == onnx_names
    np.testing.assert_array_equal(gates.onnx_to_torch(out, cell), w)


def test_bias_vectors_and_bad_shapes():
    b = np.arange(12, dtype=np.float32)
    np.testing.assert_array_equal(gates.torch_to_onnx(b, "gru")[:4], b[4:8])
    with pytest.raises(ConfigError, match="does not split"):
        gates.torch_to_onnx(np.zeros((10, 2)), "lstm")
    with pytest.raises(ConfigError, match="unknown cell"):
        gates.torch_to_onnx(b, "qrnn")


def test_onnx_layer_params_matches_torch_lstm_node():
    torch = pytest.importorskip("torch")
    from edgernn.runtime.cells import lstm

    torch.manual_seed(0)
    net = torch.nn.LSTM(3, 4, batch_first=False)
    tensors = {f"rnn.{k}": v.detach().numpy() for k, v in net.state_dict().items()}
    W, R, B = gates.onnx_layer_params(tensors, "lstm", 0)
    x = torch.randn(5, 2, 3)
    ref, _ = net(x)
    Y, _, _ = lstm(x.numpy(), W[None], R[None], B[None], hidden_size=4)
    np.testing.assert_allclose(Y[:, 0], ref.detach().numpy(), atol=1e-5)
