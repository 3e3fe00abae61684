"""Triton repository: config.pbtxt parses with Triton's schema; controls behave as declared."""

from __future__ import annotations

import pytest
from converter_fixtures import tiny_model
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from edgernn.converters import ExportSpec, build_step_graph
from edgernn.converters.triton import check_config, config_text, parse_config, repository_files
from edgernn.runtime import weights as W
from edgernn.runtime.errors import VerificationError


@pytest.mark.parametrize("cell,layers,int8", [("lstm", 2, False), ("gru", 1, True),
                                               ("rnn", 2, True)])
def test_repository_config_passes_the_schema_and_controls_verify(cell, layers, int8):
    model = tiny_model(cell=cell, num_layers=layers)
    entries = {}
    for name, value in model.to_numpy().items():
        entries.update(W.encode(name, value, int8=int8 and value.ndim == 2))
    spec = ExportSpec(model.config, "int8" if int8 else "fp32", "int8" if int8 else "fp32")
    files, record = repository_files(spec, entries, build_step_graph(spec, entries), 16)
    assert record["verification"]["passed"], record["verification"]["problems"]
    text = files[record["config"]].decode()
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.max_batch_size == 16 and config.platform == "onnxruntime_onnx"
    batching = config.sequence_batching
    kinds = {c.name: c.control[0].kind for c in batching.control_input}
    Kind = model_config_pb2.ModelSequenceBatching.Control
    assert kinds == {"START": Kind.CONTROL_SEQUENCE_START, "READY": Kind.CONTROL_SEQUENCE_READY,
                     "CORRID": Kind.CONTROL_SEQUENCE_CORRID}
    states = {s.input_name: s for s in batching.state}
    assert sorted(states) == sorted(f"state_{n}_in" for n in model.config.state_names)
    for name, state in states.items():
        assert state.output_name == name.replace("_in", "_out")
        assert list(state.dims) == [layers, 8]
        assert state.initial_state[0].zero_data
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert record["model_file"] in files


def test_token_input_is_reshaped_to_a_scalar_per_stream():
    model = tiny_model(cell="gru", vocab_size=7, input_size=4, output_size=7, head="every",
                       task="language_model")
    config = parse_config(config_text(ExportSpec(model.config), 8, kind="KIND_CPU"))
    assert list(config.input[0].dims) == [1] and list(config.input[0].reshape.shape) == []
    assert config.input[0].data_type == model_config_pb2.TYPE_INT64


def test_schema_errors_and_name_mismatches_are_reported():
    model = tiny_model()
    spec = ExportSpec(model.config)
    with pytest.raises(VerificationError, match="Triton's schema"):
        parse_config(config_text(spec, 4).replace("max_batch_size", "max_batch"))
    config = parse_config(config_text(spec, 4))
    config.input[0].name = "features"
    problems = check_config(config, build_step_graph(spec, model.to_numpy(), controls=True))
    assert problems == ["input 'features' is not a graph input"]
