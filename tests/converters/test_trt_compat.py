"""The static TensorRT compatibility check: passes every step graph, names offending nodes."""

from __future__ import annotations

import onnx
import pytest
from converter_fixtures import tiny_model
from onnx import TensorProto, helper

from edgernn.converters import ExportSpec, build_sequence_graph, build_step_graph
from edgernn.converters.trt_compat import check, require
from edgernn.runtime import weights as W
from edgernn.runtime.errors import VerificationError


def graphs(cell: str, layers: int):
    model = tiny_model(cell=cell, num_layers=layers)
    fp32 = model.to_numpy()
    int8 = {}
    for name, value in fp32.items():
        int8.update(W.encode(name, value, int8=value.ndim == 2))
    spec = ExportSpec(model.config)
    return model, spec, build_step_graph(spec, fp32), build_step_graph(spec, int8)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 2])
def test_every_step_graph_passes_for_gpu_and_orin(cell, layers):
    model, spec, fp32, int8 = graphs(cell, layers)
    for target in ("gpu", "jetson-orin"):
        for graph in (fp32, int8):
            report = check(graph, target)
            assert report["ok"], report["problems"]
    assert check(build_sequence_graph(spec, model), "gpu")["ok"]
    assert check(fp32, "jetson-xavier")["ok"]


def test_weight_only_int8_needs_tensorrt_10_and_names_nodes():
    _, _, _, int8 = graphs("gru", 1)
    with pytest.raises(VerificationError, match="rnn_weight_ih_l0_dq") as err:
        require(int8, "jetson-xavier", "the int8 step graph")
    assert all(p["op"] == "DequantizeLinear" for p in err.value.report["problems"])
    nano = check(int8, "jetson-nano")
    reasons = " ".join(p["reason"] for p in nano["problems"])
    assert "no int8 support" in reasons and "opset 17 > 13" in reasons


def test_onnxruntime_dynamic_quantization_is_rejected(tmp_path):
    from onnxruntime.quantization import quantize_dynamic

    _, _, fp32, _ = graphs("lstm", 1)
    src, dst = tmp_path / "fp32.onnx", tmp_path / "ort-int8.onnx"
    onnx.save(fp32, src)
    quantize_dynamic(str(src), str(dst))
    report = check(onnx.load(dst), "gpu")
    assert not report["ok"]
    ops = {p["op"] for p in report["problems"]}
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear"}, report["problems"]


def lstm_node_graph(**attrs):
    node = helper.make_node("LSTM", ["X", "W", "R"], ["Y"], name="lstm0", hidden_size=2, **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                      for n in ("X", "W", "R")],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_recurrent_attributes_and_custom_domains():
    assert check(lstm_node_graph(), "gpu")["ok"]
    bad = check(lstm_node_graph(layout=1, input_forget=1), "gpu")["problems"]
    assert {p["node"] for p in bad} == {"lstm0"}
    assert {p["reason"].split("=")[0] for p in bad} == {"layout", "input_forget"}
    custom = lstm_node_graph()
    custom.graph.node[0].domain = "com.microsoft"
    assert "custom-domain" in check(custom, "gpu")["problems"][0]["reason"]


def test_float64_tensors_are_rejected():
    graph = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["b"], name="id")], "g",
        [helper.make_tensor_value_info("a", TensorProto.DOUBLE, [1])],
        [helper.make_tensor_value_info("b", TensorProto.DOUBLE, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    problems = check(model, "gpu")["problems"]
    assert {p["node"] for p in problems} == {"a", "b"}
    assert "DOUBLE" in problems[0]["reason"]
