"""Verification of every export before it is written (Optimum-style, in a fixed order).

onnx.checker; then graph input/output names, dynamic axes, output shapes and values (max abs /
mean abs per output) of onnxruntime against the torch model holding the variant's weights; then
the streaming contract: the step graph stepped over ``steps`` samples reproduces
``model.step_outputs`` and the sequence graph.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import onnx
import torch

from edgernn.models import (
    RecurrentModel,
    state_from_batch_first,
    state_to_batch_first,
    torch_threads,
)

from .spec import TOLERANCES, ExportSpec

STEPS = 1000


def session(model: onnx.ModelProto):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def torch_reference():
    """no_grad on one thread: the references are batch-2 sequences."""
    with torch_threads(1), torch.no_grad():
        yield


def sample_x(spec: ExportSpec, batch: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    c = spec.config
    if c.token_input:
        return rng.integers(0, c.vocab_size, size=(batch, steps), dtype=np.int64)
    return rng.standard_normal((batch, steps, c.input_size)).astype(np.float32)


def diff(expected: np.ndarray, actual: np.ndarray) -> dict:
    err = np.abs(np.asarray(expected, np.float64) - np.asarray(actual, np.float64))
    return {"max_abs": float(err.max(initial=0.0)),
            "mean_abs": float(err.mean()) if err.size else 0.0}


def check_interface(model: onnx.ModelProto, inputs: list[str], outputs: list[str],
                    dynamic: dict[str, list[int]]) -> list[str]:
    """Names, then dynamic axes: the problems found, in that order."""
    problems = []
    got_in = [i.name for i in model.graph.input]
    got_out = [o.name for o in model.graph.output]
    if got_in != inputs or got_out != outputs:
        problems.append(f"names: inputs {got_in} outputs {got_out}, expected {inputs} {outputs}")
        return problems
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for axis in dynamic.get(value.name, [0]):
            if axis >= len(dims) or not dims[axis].dim_param:
                problems.append(f"axes: {value.name} axis {axis} is not dynamic")
    return problems


def compare(expected: dict, actual: dict, atol: float, problems: list[str], where: str) -> dict:
    """Shapes, then values, per output; appends to ``problems`` and returns the figures.

    ``atol`` holds for outputs within [-1, 1]; beyond, it scales with the largest reference
    magnitude (logits of size 10 may differ by 10 x atol), so the check is one of relative
    accuracy for outputs whose units the exporter cannot know.
    """
    figures = {}
    for name, ref in expected.items():
        got = actual[name]
        if got.shape != ref.shape:
            problems.append(f"{where}: shape of {name} is {got.shape}, expected {ref.shape}")
            continue
        figures[name] = diff(ref, got)
        allowed = atol * max(1.0, float(np.abs(ref).max(initial=0.0)))
        if not figures[name]["max_abs"] <= allowed:
            problems.append(f"{where}: {name} max abs {figures[name]['max_abs']:.3g} > "
                            f"{allowed:.3g} ({atol:g} x output scale)")
    return figures


def torch_step(model: RecurrentModel, spec: ExportSpec, x: np.ndarray, states: dict) -> dict:
    """One step of the torch model from given batch-first states, named like the step graph."""
    cell = spec.config.cell
    torch_state = state_from_batch_first({n.split("_")[1]: v for n, v in states.items()}, cell)
    with torch_reference():
        out, new = model.features(torch.from_numpy(x)[:, None], state=torch_state)
        y = model.activate(model.head(out[:, 0])).numpy()
    return {"y": y, **{f"state_{n}_out": v for n, v in state_to_batch_first(new, cell).items()}}


def torch_sequence(model: RecurrentModel, spec: ExportSpec, x: np.ndarray,
                   lengths: np.ndarray | None = None, every_step: bool = False) -> dict:
    """The torch model's outputs named like the sequence graph's (``y`` at every step with
    ``every_step``: what streaming reproduces)."""
    cell = spec.config.cell
    lengths = None if lengths is None else torch.from_numpy(lengths)
    with torch_reference():
        out, state = model.features(torch.from_numpy(x), lengths)
        head = out if every_step or spec.config.head == "every" else model._last_step(out, lengths)
        y = model.activate(model.head(head)).numpy()
    return {"y": y, **{f"state_{n}_out": v for n, v in state_to_batch_first(state, cell).items()}}


def run(sess, feeds: dict) -> dict:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def verify_sequence(graph: onnx.ModelProto, model: RecurrentModel, spec: ExportSpec,
                    seed: int = 0) -> dict:
    """onnxruntime vs torch on two (batch, time) shapes, checking the dynamic axes work."""
    problems = _checker(graph)
    inputs = [t.name for t in spec.sequence_inputs()]
    outputs = [t.name for t in spec.sequence_outputs()]
    dynamic = {"x": [0, 1], **({"y": [0, 1]} if spec.config.head == "every" else {})}
    problems += check_interface(graph, inputs, outputs, dynamic)
    figures = {}
    if not problems:
        sess, rng = session(graph), np.random.default_rng(seed)
        for batch, steps in ((2, 7), (3, 13)):
            x = sample_x(spec, batch, steps, rng)
            feeds, lengths = {"x": x}, None
            if spec.lengths:  # padded batches: one full length, the others shorter
                lengths = np.r_[steps, rng.integers(1, steps + 1, batch - 1)].astype(np.int64)
                feeds["lengths"] = lengths
            where = f"sequence {batch}x{steps}"
            figures[where] = compare(torch_sequence(model, spec, x, lengths), run(sess, feeds),
                                     spec.tolerance.max_abs, problems, where)
    return _report(figures, problems, max_abs=_max(figures))


def verify_step(graph: onnx.ModelProto, model: RecurrentModel, spec: ExportSpec,
                sequence: onnx.ModelProto | None = None, steps: int = STEPS, batch: int = 2,
                seed: int = 0) -> dict:
    """The step graph against torch: one step from random states; every step of a ``steps``-long
    trajectory, each started from torch's own state (``teacher-forced``); and the free-running
    stream against torch and the sequence graph (the drift).

    A model that amplifies float32 rounding on random input (its own float32 and float64 runs
    part by more than the fp32 tolerance: a chaotic regime, common for models trained on short
    sequences) makes free-running drift a property of the model, not of the export; the drift is
    then reported with ``chaotic`` set and the teacher-forced check is the one that gates.
    """
    problems = _checker(graph)
    inputs, outputs = spec.step_inputs(), spec.step_outputs()
    problems += check_interface(graph, [t.name for t in inputs], [t.name for t in outputs], {})
    if problems:
        return _report({}, problems)
    tol, sess, rng = spec.tolerance, session(graph), np.random.default_rng(seed)
    state_names = [t.name for t in inputs[1:]]
    states = {n: rng.uniform(-0.9, 0.9, (batch, *t.shape)).astype(np.float32)
              for n, t in zip(state_names, inputs[1:])}
    x = sample_x(spec, batch, 1, rng)[:, 0]
    one = compare(torch_step(model, spec, x, states), run(sess, {"x": x, **states}),
                  tol.max_abs, problems, "one step")

    xs = sample_x(spec, batch, steps, rng)
    zeros = {n: np.zeros((batch, *t.shape), np.float32) for n, t in zip(state_names, inputs[1:])}
    forced_where = f"{steps} teacher-forced steps"
    forced = compare(*_teacher_forced(sess, model, spec, xs, dict(zeros), state_names),
                     tol.max_abs, problems, forced_where)
    streamed = _free_run(sess, xs, dict(zeros), state_names)
    reference = torch_sequence(model, spec, xs, every_step=True)
    floor = diff(reference["y"], _float64_run(model, xs))["max_abs"]
    chaotic = floor > TOLERANCES["fp32"].drift * max(1.0, float(np.abs(reference["y"]).max()))
    drift_problems = [] if chaotic else problems
    where = f"{steps}-step stream vs torch"
    figures = {"one step": one,
               forced_where: forced,
               where: compare(reference, streamed, tol.drift, drift_problems, where)}
    if sequence is not None:
        feeds = {"x": xs, **({"lengths": np.full(batch, steps)} if spec.lengths else {})}
        seq = run(session(sequence), feeds)
        last = streamed["y"] if spec.config.head == "every" else streamed["y"][:, -1]
        where = f"{steps}-step stream vs sequence graph"
        figures[where] = compare(seq, {**streamed, "y": last}, tol.drift, drift_problems, where)
    drift = max(v["max_abs"] for k, f in figures.items() if "stream" in k for v in f.values())
    one = {**one, **{f"teacher-forced {k}": v for k, v in forced.items()}}
    import onnxruntime

    return _report(figures, problems, max_abs=_max({"one step": one}), drift=drift, steps=steps,
                   chaotic=chaotic, float64_floor=floor, onnxruntime=onnxruntime.__version__)


def _teacher_forced(sess, model, spec, xs, states, names) -> tuple[dict, dict]:
    """Each step of the graph from torch's state at that step: (torch outputs, graph outputs)."""
    expected, got = [], []
    for t in range(xs.shape[1]):
        ref = torch_step(model, spec, xs[:, t], states)
        expected.append(ref)
        got.append(run(sess, {"x": xs[:, t], **states}))
        states = {n: ref[n.replace("_in", "_out")] for n in names}
    stack = lambda rows: {k: np.stack([r[k] for r in rows], axis=1) for k in rows[0]}  # noqa: E731
    return stack(expected), stack(got)


def _free_run(sess, xs, states, names) -> dict:
    """The graph stepped on its own states: y at every step and the final states."""
    ys = []
    for t in range(xs.shape[1]):
        out = run(sess, {"x": xs[:, t], **states})
        ys.append(out["y"])
        states = {n: out[n.replace("_in", "_out")] for n in names}
    return {"y": np.stack(ys, axis=1), **{n.replace("_in", "_out"): v for n, v in states.items()}}


def _float64_run(model: RecurrentModel, xs: np.ndarray) -> np.ndarray:
    """``step_outputs`` of a float64 copy of the model: the reference's own rounding floor."""
    double = copy.deepcopy(model).double()
    x = torch.from_numpy(xs) if xs.dtype == np.int64 else torch.from_numpy(xs).double()
    with torch_reference():
        return double.step_outputs(x).numpy()


def _checker(graph: onnx.ModelProto) -> list[str]:
    try:
        onnx.checker.check_model(graph, full_check=True)
    except onnx.checker.ValidationError as exc:
        return [f"onnx.checker: {str(exc).splitlines()[0]}"]
    return []


def _max(figures: dict) -> float:
    return max((v["max_abs"] for f in figures.values() for v in f.values()), default=0.0)


def _report(figures: dict, problems: list[str], **summary) -> dict:
    return {"passed": not problems, **summary, "outputs": figures, "problems": problems}


def compression_cost(model: RecurrentModel, reference: RecurrentModel, spec: ExportSpec,
                     steps: int = STEPS, batch: int = 2, seed: int = 0) -> dict:
    """Per-step output difference of a variant's model from the fp32 model over a stream."""
    x = torch.from_numpy(sample_x(spec, batch, steps, np.random.default_rng(seed)))
    with torch_reference():
        return diff(reference.step_outputs(x).numpy(), model.step_outputs(x).numpy())
