"""The step graph: verified against torch for every cell, depth and precision."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from converter_fixtures import add_variant, tiny_model

from edgernn.bundle_io import save_model_bundle
from edgernn.converters import (
    METADATA_KEY,
    ExportOptions,
    ExportSpec,
    build_step_graph,
    export_variant,
)
from edgernn.converters.verify import session
from edgernn.runtime.bundle import read_bundle
from edgernn.runtime.errors import NotStreamableError

CASES = [(cell, layers, variant) for cell in ("lstm", "gru", "rnn") for layers in (1, 2)
         for variant in ("fp32", "int8")]


@pytest.mark.parametrize("cell,layers,variant", CASES)
def test_step_graph_matches_torch_over_a_stream(make_bundle, cell, layers, variant):
    bundle = read_bundle(make_bundle(int8=True, cell=cell, num_layers=layers, seed=layers))
    done = export_variant(bundle, variant, ExportOptions(steps=1000))
    step = done.verification["step"]
    print(f"{cell} layers={layers} {variant}: onnxruntime vs torch max abs {step['max_abs']:.3g}, "
          f"1,000-step drift {step['drift']:.3g}")  # shown with pytest -s
    assert step["passed"], step["problems"]
    assert step["steps"] == 1000
    assert step["max_abs"] <= done.spec.tolerance.max_abs
    assert step["drift"] <= done.spec.tolerance.drift
    assert done.verification["sequence"]["passed"]
    assert done.verification["trt_compat"]["ok"], done.verification["trt_compat"]["problems"]
    if variant == "int8":
        ops = {n.op_type for n in done.step.graph.node}
        assert "DequantizeLinear" in ops
        int8 = [i for i in done.step.graph.initializer if i.data_type == 3]  # INT8
        assert len(int8) >= 2 * 2 * layers + 1  # q and zero point per matrix
        assert done.verification["vs_fp32"]["max_abs"] > 0  # the cost of compression
    else:
        assert step["max_abs"] < 1e-5 and step["drift"] < 1e-5


def test_fp16_and_sparse_int8_variants(make_bundle):
    path = make_bundle(cell="lstm", num_layers=2)
    model = tiny_model(cell="lstm", num_layers=2)
    with torch.no_grad():
        model.rnn.weight_hh_l0[::2] = 0.0  # a pruned matrix
    save_model_bundle(model, path, force=True)
    add_variant(path, "fp16", fp16=True)
    add_variant(path, "sparse-int8", int8=True, sparse=True)
    bundle = read_bundle(path)
    for variant, marker in (("fp16", "Cast"), ("sparse-int8", "DequantizeLinear")):
        done = export_variant(bundle, variant, ExportOptions(steps=300))
        assert done.verification["step"]["passed"], done.verification["step"]["problems"]
        assert marker in {n.op_type for n in done.step.graph.node}
        assert done.verification["trt_compat"]["ok"]


def test_int8_weights_come_from_the_bundle_not_requantized(make_bundle):
    bundle = read_bundle(make_bundle(int8=True, cell="gru"))
    done = export_variant(bundle, "int8", ExportOptions(steps=10))
    stored = bundle.tensors("int8")
    graph = {i.name: i for i in done.step.graph.initializer}
    from onnx import numpy_helper

    q = numpy_helper.to_array(graph["rnn_weight_hh_l0_q"])
    np.testing.assert_array_equal(q.T, stored["rnn.weight_hh_l0.q"])
    scale = numpy_helper.to_array(graph["rnn_weight_hh_l0_scale"])
    np.testing.assert_array_equal(scale, stored["rnn.weight_hh_l0.scale"])


def test_interface_names_layout_metadata_and_versions(make_bundle):
    bundle = read_bundle(make_bundle(cell="lstm", num_layers=2, output_activation="sigmoid"))
    done = export_variant(bundle, "fp32", ExportOptions(steps=5))
    graph = done.step
    inputs = [i.name for i in graph.graph.input]
    outputs = [o.name for o in graph.graph.output]
    assert inputs == ["x", "state_c_in", "state_h_in"]
    assert outputs == ["y", "state_c_out", "state_h_out"]
    assert [n.replace("_in", "") for n in sorted(inputs[1:])] == \
           [n.replace("_out", "") for n in sorted(outputs[1:])]
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[1].type.tensor_type.shape.dim]
    assert dims == ["batch", 2, 8]  # batch-first (batch, layers, hidden)
    assert graph.ir_version <= 10 and graph.opset_import[0].version == 17
    assert "Sigmoid" in {n.op_type for n in graph.graph.node if n.name == "output_activation"}
    contract = json.loads({p.key: p.value for p in graph.metadata_props}[METADATA_KEY])
    assert contract["state_pairs"] == {"state_h_in": "state_h_out", "state_c_in": "state_c_out"}
    assert [s["name"] for s in contract["states"]] == ["h", "c"]
    assert contract["states"][0]["reset_value"] == 0.0
    y = session(graph).run(None, {"x": np.zeros((4, 3), np.float32),
                                  "state_c_in": np.zeros((4, 2, 8), np.float32),
                                  "state_h_in": np.zeros((4, 2, 8), np.float32)})[0]
    assert y.shape == (4, 2) and ((y > 0) & (y < 1)).all()


def test_token_input_uses_gather_on_the_embedding(make_bundle):
    path = make_bundle(cell="gru", vocab_size=11, input_size=4, output_size=11, head="every",
                       task="language_model")
    done = export_variant(read_bundle(path), "fp32", ExportOptions(steps=200))
    assert done.verification["step"]["passed"], done.verification["step"]["problems"]
    assert done.step.graph.node[0].op_type == "Gather"
    assert done.step.graph.input[0].type.tensor_type.elem_type == 7  # INT64


def test_relu_rnn_and_every_step_head(make_bundle):
    path = make_bundle(cell="rnn", nonlinearity="relu", head="every", num_layers=2)
    done = export_variant(read_bundle(path), "fp32", ExportOptions(steps=300))
    assert done.verification["step"]["passed"], done.verification["step"]["problems"]
    assert "Relu" in {n.op_type for n in done.step.graph.node}


def test_bidirectional_has_a_sequence_graph_only(make_bundle):
    bundle = read_bundle(make_bundle(cell="lstm", bidirectional=True, num_layers=2))
    done = export_variant(bundle, "fp32")
    assert done.step is None and "step" not in done.verification
    assert done.verification["sequence"]["passed"], done.verification["sequence"]["problems"]
    with pytest.raises(NotStreamableError, match="bidirectional"):
        build_step_graph(ExportSpec(bundle.config), bundle.tensors("fp32"))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sequence_graph_takes_lengths_for_padded_batches(make_bundle, cell):
    bundle = read_bundle(make_bundle(cell=cell, num_layers=2))
    done = export_variant(bundle, "fp32", ExportOptions(steps=20))
    graph = done.sequence
    assert [i.name for i in graph.graph.input] == ["x", "lengths"]
    recurrent = [n for n in graph.graph.node if n.op_type == cell.upper()]
    assert recurrent and all(len(n.input) > 4 and n.input[4] for n in recurrent)  # sequence_lens
    assert done.verification["sequence"]["passed"], done.verification["sequence"]["problems"]
    x = np.random.default_rng(1).standard_normal((2, 6, 3)).astype(np.float32)
    padded = x.copy()
    padded[1, 4:] = 99.0  # garbage past the end must not matter
    outs = [session(graph).run(None, {"x": v, "lengths": np.array([6, 4])}) for v in (x, padded)]
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, atol=1e-6)
    plain = export_variant(bundle, "fp32", ExportOptions(steps=20, lengths=False)).sequence
    assert [i.name for i in plain.graph.input] == ["x"]


def _chaotic_bundle(make_bundle):
    """A model whose recurrent weights are scaled up until float32 rounding grows over a stream."""
    path = make_bundle(cell="lstm", hidden_size=32)
    model = tiny_model(0, hidden_size=32)
    with torch.no_grad():
        model.rnn.weight_hh_l0.mul_(6.0)
    save_model_bundle(model, path, force=True)
    return read_bundle(path)


def test_chaotic_model_is_gated_step_wise_and_flagged(make_bundle):
    done = export_variant(_chaotic_bundle(make_bundle), "fp32", ExportOptions(steps=1000))
    step = done.verification["step"]
    assert step["chaotic"] and step["float64_floor"] > 1e-4
    assert step["passed"], step["problems"]
    forced = step["outputs"]["1000 teacher-forced steps"]
    assert forced["y"]["max_abs"] < 1e-4  # every step exact from torch's own state


def test_a_wrong_graph_fails_the_teacher_forced_check(make_bundle, monkeypatch):
    """Swapping h and c inside the graph is caught even where free-running drift is not gated."""
    from edgernn.converters import verify

    bundle = _chaotic_bundle(make_bundle)
    real_run = verify.run

    def swapped(sess, feeds):
        out = real_run(sess, feeds)
        if "state_c_out" in out and "x" in feeds and feeds["x"].ndim == 2:
            out["state_c_out"], out["state_h_out"] = out["state_h_out"], out["state_c_out"]
        return out

    monkeypatch.setattr(verify, "run", swapped)
    done = export_variant(bundle, "fp32", ExportOptions(steps=50))
    assert not done.verification["step"]["passed"]
    assert any("teacher-forced" in p for p in done.verification["step"]["problems"])
