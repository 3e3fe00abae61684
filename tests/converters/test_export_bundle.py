"""export_bundle: verified files written atomically and recorded; refusals write nothing."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnx
import pytest

import edgernn.converters.export as export_module
from edgernn.converters import export_bundle
from edgernn.converters.verify import session
from edgernn.runtime.bundle import read_bundle
from edgernn.runtime.errors import BundleError, ConfigError, NotStreamableError, VerificationError


def test_onnx_and_triton_exports_are_recorded(make_bundle):
    path = make_bundle(int8=True, cell="lstm", num_layers=2)
    report = export_bundle(path, "onnx,triton", "fp32,int8", steps=300)
    bundle = read_bundle(path)  # checksums of everything written
    exports = bundle.manifest["exports"]
    assert exports["onnx"]["fp32"]["step"] == "onnx/fp32-step.onnx"
    assert exports["onnx"]["int8"]["sequence"] == "onnx/int8-sequence.onnx"
    figures = exports["onnx"]["int8"]["verification"]
    assert figures["step"]["passed"] and figures["step"]["steps"] == 300
    assert figures["vs_fp32"]["max_abs"] > 0
    assert exports["triton"]["fp32"]["config"] == "triton/edgernn_lstm_fp32/config.pbtxt"
    assert {(r["format"], r["variant"], r["graph"]) for r in report["rows"]} == {
        ("onnx", v, g) for v in ("fp32", "int8") for g in ("step", "sequence")
    } | {("triton", v, "step") for v in ("fp32", "int8")} | {("onnx", "int8", "sequence_ort_only")}
    ort_only = onnx.load(bundle.file(exports["onnx"]["int8"]["sequence_ort_only"]))
    assert "DynamicQuantizeLSTM" in {n.op_type for n in ort_only.graph.node}
    assert figures["sequence_ort_only"]["passed"]
    assert "ort-only" in exports["onnx"]["int8"]["labels"]["sequence_ort_only"]
    step = onnx.load(bundle.file("onnx/fp32-step.onnx"))
    feeds = {"x": np.ones((1, 3), np.float32), "state_c_in": np.zeros((1, 2, 8), np.float32),
             "state_h_in": np.zeros((1, 2, 8), np.float32)}
    assert session(step).run(None, feeds)[0].shape == (1, 2)
    assert report["errors"] == []


def test_a_second_export_keeps_the_first(make_bundle):
    path = make_bundle(int8=True, cell="rnn")
    export_bundle(path, "onnx", "fp32", steps=50)
    export_bundle(path, "tensorrt", "int8", target="jetson-orin", steps=50)
    exports = read_bundle(path).manifest["exports"]
    assert set(exports["onnx"]) == {"fp32", "int8"}
    record = exports["tensorrt"]["int8"]["jetson-orin"]
    assert record["status"].startswith("planned") and record["trt_compat"]["ok"]
    plan = json.loads(read_bundle(path).file(record["plan"]).read_text())
    assert plan["onnx"] == "onnx/int8-step.onnx" and "trtexec" in plan["trtexec"]


def test_over_tolerance_refuses_and_writes_nothing(make_bundle, monkeypatch):
    path = make_bundle(cell="gru")
    before = (path / "manifest.json").read_text()
    real = export_module.build_step_graph

    def off_by_a_little(spec, entries, *args, **kwargs):
        entries = {**entries, "head.bias": entries["head.bias"] + 1e-3}
        return real(spec, entries, *args, **kwargs)

    monkeypatch.setattr(export_module, "build_step_graph", off_by_a_little)
    with pytest.raises(VerificationError, match="export refused") as err:
        export_bundle(path, "onnx", "fp32", steps=20)
    step = err.value.report["variants"]["fp32"]["step"]
    assert not step["passed"] and step["outputs"]["one step"]["y"]["max_abs"] > 9e-4
    assert any("y max abs" in p for p in step["problems"])
    assert (path / "manifest.json").read_text() == before
    assert not (path / "onnx").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="tensorrt is installed here")
def test_missing_tensorrt_still_writes_onnx_and_plan(make_bundle):
    path = make_bundle()
    report = export_bundle(path, "tensorrt", "fp32", target="gpu", steps=20)
    assert report["errors"] and "edgernn build-engine" in report["errors"][0]
    exports = read_bundle(path).manifest["exports"]
    assert exports["onnx"]["fp32"]["step"] == "onnx/fp32-step.onnx"
    assert exports["tensorrt"]["fp32"]["gpu"]["status"].startswith("not built")


def test_tensorrt_incompatible_graph_is_refused(make_bundle):
    path = make_bundle(int8=True)
    with pytest.raises(VerificationError, match="weight-only DequantizeLinear"):
        export_bundle(path, "tensorrt", "int8", target="jetson-xavier", steps=10)
    assert read_bundle(path).manifest["exports"] == {}


def test_bad_requests(make_bundle):
    path = make_bundle()
    with pytest.raises(ConfigError, match="unknown format 'tflite'"):
        export_bundle(path, "onnx,tflite")
    with pytest.raises(ConfigError, match="unknown target"):
        export_bundle(path, target="jetson-tx1")
    with pytest.raises(BundleError, match="variant 'int8' is not in bundle"):
        export_bundle(path, "onnx", "int8")


def test_bidirectional_exports_the_sequence_graph_only(make_bundle):
    path = make_bundle(cell="gru", bidirectional=True)
    export_bundle(path, "onnx", "fp32", steps=10)
    record = read_bundle(path).manifest["exports"]["onnx"]["fp32"]
    assert "step" not in record and record["sequence"] == "onnx/fp32-sequence.onnx"
    with pytest.raises(NotStreamableError, match="bidirectional"):
        export_bundle(path, "triton", "fp32")


def test_jetson_nano_gets_opset_13_and_an_fp16_plan(make_bundle):
    path = make_bundle(cell="gru", num_layers=2)
    report = export_bundle(path, "tensorrt", "fp32", target="jetson-nano", steps=20)
    manifest = read_bundle(path).manifest
    assert manifest["exports"]["onnx"]["fp32"]["opset"] == 13
    assert manifest["exports"]["onnx"]["fp32"]["ir_version"] == 7
    record = manifest["exports"]["tensorrt"]["fp32"]["jetson-nano"]
    assert record["trt_compat"]["ok"] and record["trt_compat"]["tensorrt"] == "8.2"
    assert [r["status"] for r in report["rows"] if r["format"] == "tensorrt"] == ["planned"]
