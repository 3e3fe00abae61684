"""TensorRT settings, build plans and trtexec lines (always); engine builds (tensorrt + GPU)."""

from __future__ import annotations

import importlib.util

import pytest
from converter_fixtures import tiny_model

from edgernn.converters import ExportSpec, build_step_graph, get_target
from edgernn.converters.jetson import build_plan, trtexec_line
from edgernn.converters.tensorrt import build_engine, settings_for
from edgernn.runtime.errors import BackendUnavailableError, ConfigError

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def spec_for(precision="fp32", **overrides):
    model = tiny_model(**overrides)
    return model, ExportSpec(model.config, precision, precision)


def test_profile_spans_the_stream_batch_axis():
    _, spec = spec_for(cell="lstm", num_layers=2)
    settings = settings_for(spec, get_target("gpu"), max_streams=64, sparse=True)
    assert settings.profile == {
        "x": [[1, 3], [32, 3], [64, 3]],
        "state_c_in": [[1, 2, 8], [32, 2, 8], [64, 2, 8]],
        "state_h_in": [[1, 2, 8], [32, 2, 8], [64, 2, 8]],
    }
    assert settings.sparse
    assert not settings_for(spec, get_target("jetson-xavier"), 64, sparse=True).sparse


@pytest.mark.parametrize("target,precision,flag", [
    ("jetson-orin", "int8", "--stronglyTyped"), ("jetson-xavier", "fp16", "--fp16"),
    ("jetson-nano", "fp32", "--workspace=256"), ("gpu", "fp16", "--memPoolSize=workspace:256M"),
])
def test_build_plan_has_command_and_equivalent_trtexec(target, precision, flag):
    _, spec = spec_for(precision, cell="gru")
    t = get_target(target)
    plan = build_plan("v1", "v1", "onnx/v1-step.onnx", settings_for(spec, t, 8), t)
    assert plan["command"] == f"edgernn build-engine BUNDLE --variant v1 --target {target}"
    assert plan["engine"] == f"tensorrt/v1-step-{target}.plan"
    assert plan["tensorrt"] == t.trt_version
    line = plan["trtexec"]
    assert line.startswith("cd BUNDLE && trtexec --onnx=onnx/v1-step.onnx")
    assert "--minShapes=x:1x3,state_h_in:1x1x8" in line
    assert "--maxShapes=x:8x3,state_h_in:8x1x8" in line and flag in line


def test_sparse_flag_in_trtexec():
    _, spec = spec_for()
    t = get_target("jetson-orin")
    line = trtexec_line("a.onnx", "a.plan", settings_for(spec, t, 4, sparse=True), t)
    assert "--sparsity=enable" in line


def test_unknown_target():
    with pytest.raises(ConfigError, match="jetson-orin"):
        get_target("jetson-tx2")


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here")
def test_missing_tensorrt_is_a_clear_error():
    model, spec = spec_for()
    with pytest.raises(BackendUnavailableError, match="pip install 'edgernn\\[tensorrt\\]'"):
        build_engine(build_step_graph(spec, model.to_numpy()).SerializeToString(),
                     settings_for(spec, get_target("gpu"), 4))


@pytest.mark.skipif(not HAS_TRT, reason="needs the tensorrt package and an NVIDIA GPU")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_builds(tmp_path, precision):
    model, spec = spec_for(precision)
    graph = build_step_graph(spec, model.to_numpy()).SerializeToString()
    cache = tmp_path / "timing.cache"
    engine, report = build_engine(graph, settings_for(spec, get_target("gpu"), 8), cache)
    assert engine and report["engine_bytes"] == len(engine) and cache.is_file()
