"""Triton Inference Server model repository for the step graph, with implicit state.

``config.pbtxt`` uses ``sequence_batching`` with START / READY / CORRID control inputs and one
implicit ``state`` entry per carried tensor (``initial_state`` zero data), so Triton keeps each
sequence's state on the server and batches many streams on the leading axis. The config is
validated by parsing it with Triton's own ``model_config.proto`` (shipped by ``tritonclient``).
"""

from __future__ import annotations

import numpy as np
import onnx

from edgernn.runtime.errors import BackendUnavailableError, VerificationError

from .onnx_step import build_step_graph
from .spec import ExportSpec
from .verify import compare, run, session

TYPES = {"float32": "TYPE_FP32", "int64": "TYPE_INT64"}
IDLE_MICROSECONDS = 60_000_000


def model_name(spec: ExportSpec) -> str:
    return f"edgernn_{spec.config.cell}_{spec.variant}".replace(":", "of").replace("-", "_")


def _dims(shape) -> str:
    return "[ " + ", ".join(str(d) for d in shape) + " ]"


def config_text(spec: ExportSpec, max_streams: int, instances: int = 1,
                kind: str = "KIND_GPU") -> str:
    """The ``config.pbtxt`` of the step model of ``spec``."""
    x = spec.x
    x_dims = _dims(x.shape) if x.shape else "[ 1 ]\n    reshape: { shape: [ ] }"
    states = []
    for t_in, t_out in zip(spec.states("in"), spec.states("out")):
        states.append(
            f"""    {{
      input_name: "{t_in.name}"
      output_name: "{t_out.name}"
      data_type: TYPE_FP32
      dims: {_dims(t_in.shape)}
      initial_state: {{
        name: "zero" data_type: TYPE_FP32 dims: {_dims(t_in.shape)} zero_data: true
      }}
    }}""")
    accelerator = ""
    if kind == "KIND_GPU" and spec.precision in ("fp32", "fp16"):
        accelerator = f"""
optimization {{
  execution_accelerators {{
    gpu_execution_accelerator: [ {{
      name: "tensorrt"
      parameters {{ key: "precision_mode" value: "{spec.precision.upper()}" }}
    }} ]
  }}
}}"""
    return f"""name: "{model_name(spec)}"
platform: "onnxruntime_onnx"
max_batch_size: {max_streams}
input [
  {{
    name: "{x.name}"
    data_type: {TYPES[x.dtype]}
    dims: {x_dims}
  }}
]
output [
  {{
    name: "{spec.y.name}"
    data_type: TYPE_FP32
    dims: {_dims(spec.y.shape)}
  }}
]
sequence_batching {{
  max_sequence_idle_microseconds: {IDLE_MICROSECONDS}
  control_input [
    {{ name: "START" control [ {{ kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] }} ] }},
    {{ name: "READY" control [ {{ kind: CONTROL_SEQUENCE_READY fp32_false_true: [ 0, 1 ] }} ] }},
    {{ name: "CORRID" control [ {{ kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 }} ] }}
  ]
  state [
{(","+chr(10)).join(states)}
  ]
  oldest {{
    max_candidate_sequences: {max_streams}
    preferred_batch_size: [ {max_streams} ]
    max_queue_delay_microseconds: 100
  }}
}}
instance_group [ {{ count: {instances} kind: {kind} }} ]{accelerator}
"""


def parse_config(text: str):
    """Parse ``config.pbtxt`` with Triton's ModelConfig schema; raise on any schema error."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise BackendUnavailableError(
            "validating a Triton config needs tritonclient: pip install 'edgernn[triton]'"
        ) from exc
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise VerificationError(f"config.pbtxt does not match Triton's schema: {exc}") from exc


def check_config(config, graph: onnx.ModelProto) -> list[str]:
    """Every configured input, output, control and state names a graph tensor."""
    inputs = {i.name for i in graph.graph.input}
    outputs = {o.name for o in graph.graph.output}
    problems = [f"input {i.name!r} is not a graph input" for i in config.input
                if i.name not in inputs]
    problems += [f"output {o.name!r} is not a graph output" for o in config.output
                 if o.name not in outputs]
    problems += [f"control {c.name!r} is not a graph input"
                 for c in config.sequence_batching.control_input if c.name not in inputs]
    for s in config.sequence_batching.state:
        if s.input_name not in inputs or s.output_name not in outputs:
            problems.append(f"state {s.input_name}/{s.output_name} is not a graph input/output")
    return problems


def verify_controls(graph: onnx.ModelProto, step: onnx.ModelProto, spec: ExportSpec,
                    seed: int = 0) -> dict:
    """START=0, READY=1 matches the step graph; START=1 starts from zero; READY=0 keeps state."""
    rng, problems = np.random.default_rng(seed), []
    batch, tol = 3, spec.tolerance.max_abs
    x = (rng.integers(0, spec.config.vocab_size or 1, batch) if spec.config.token_input
         else rng.standard_normal((batch, *spec.x.shape)).astype(np.float32))
    states = {t.name: rng.uniform(-0.9, 0.9, (batch, *t.shape)).astype(np.float32)
              for t in spec.states("in")}
    zeros = {k: np.zeros_like(v) for k, v in states.items()}
    ones, nil = np.ones((batch, 1), np.float32), np.zeros((batch, 1), np.float32)
    corrid = np.arange(batch, dtype=np.uint64)[:, None]
    plain, ctl = session(step), session(graph)

    def with_controls(start, ready):
        return run(ctl, {"x": x, **states, "START": start, "READY": ready, "CORRID": corrid})

    figures = {
        "running": compare(run(plain, {"x": x, **states}), with_controls(nil, ones), tol,
                           problems, "START=0 READY=1"),
        "start": compare(run(plain, {"x": x, **zeros}), with_controls(ones, ones), tol,
                         problems, "START=1"),
    }
    kept = {k.replace("_in", "_out"): v for k, v in states.items()}
    not_ready = {k: v for k, v in with_controls(nil, nil).items() if k in kept}
    figures["not ready"] = compare(kept, not_ready, tol, problems, "READY=0")
    return {"passed": not problems, "outputs": figures, "problems": problems}


def repository_files(spec: ExportSpec, entries: dict, step: onnx.ModelProto, max_streams: int,
                     preprocessing: dict | None = None, root: str = "triton",
                     kind: str = "KIND_GPU") -> tuple[dict[str, bytes], dict]:
    """The repository files for one variant (``{rel: bytes}``) and their verification record."""
    graph = build_step_graph(spec, entries, preprocessing, controls=True)
    text = config_text(spec, max_streams, kind=kind)
    problems = check_config(parse_config(text), graph)
    verification = verify_controls(graph, step, spec)
    verification["schema"] = "tritonclient model_config.proto: ok"
    verification["problems"] += problems
    verification["passed"] = not verification["problems"]
    name = model_name(spec)
    files = {f"{root}/{name}/config.pbtxt": text.encode(),
             f"{root}/{name}/1/model.onnx": graph.SerializeToString()}
    return files, {"model": name, "repository": root, "config": f"{root}/{name}/config.pbtxt",
                   "model_file": f"{root}/{name}/1/model.onnx", "verification": verification}
