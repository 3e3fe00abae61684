"""``export_bundle``: verified ONNX / TensorRT / Triton exports written into a bundle atomically.

Everything is built and verified in memory first; only when every check passes are the files
written (``update_bundle``) and recorded under ``manifest["exports"]``.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from edgernn.models import RecurrentModel
from edgernn.runtime import weights as W
from edgernn.runtime.bundle import Bundle, read_bundle, update_bundle
from edgernn.runtime.errors import (
    BackendUnavailableError,
    ConfigError,
    NotStreamableError,
    VerificationError,
)

from . import trt_compat
from .jetson import build_plan
from .onnx_sequence import build_sequence_graph
from .onnx_step import build_step_graph
from .quantize import ort_only_int8
from .spec import OPSET, ExportSpec
from .targets import get_target
from .tensorrt import build_engine, settings_for
from .triton import repository_files
from .verify import STEPS, compression_cost, verify_sequence, verify_step

FORMATS = ("onnx", "tensorrt", "triton")
CHECKED = ("sequence", "sequence_ort_only", "step", "triton")  # records that gate the export


@dataclass
class VariantExport:
    """One variant's verified graphs and figures, not yet written."""

    spec: ExportSpec
    model: RecurrentModel
    entries: dict
    sequence: onnx.ModelProto
    step: onnx.ModelProto | None
    ort_only: onnx.ModelProto | None = None  # onnxruntime's int8 LSTM sequence graph
    verification: dict = field(default_factory=dict)

    def problems(self) -> list[str]:
        return [f"{self.spec.variant} {k}: {p}" for k in CHECKED
                for p in self.verification.get(k, {}).get("problems", [])]


def parse_list(value, allowed: tuple[str, ...] | None, what: str) -> list[str]:
    """``"a,b"`` or a sequence -> list, each checked against ``allowed``."""
    items = [s.strip() for s in (value.split(",") if isinstance(value, str) else value)]
    items = [s for s in items if s]
    if not items:
        raise ConfigError(f"no {what} given")
    for item in items:
        if allowed is not None and item not in allowed:
            raise ConfigError(f"unknown {what} {item!r}; choose from {', '.join(allowed)}")
    return items


def file_stem(variant: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", variant)


def fp32_model(bundle: Bundle) -> RecurrentModel:
    config = bundle.config_for("fp32")
    return RecurrentModel.from_numpy(config, W.decode_all(bundle.tensors("fp32")))


@dataclass(frozen=True)
class ExportOptions:
    """How to export: the target, the stream batch, the drift check and the sequence inputs.

    ``lengths=None`` gives the sequence graph a ``lengths`` input when the head reads the last
    step (padded batches of sequence-level predictions).
    """

    target: str = "gpu"
    max_streams: int = 64
    steps: int = STEPS
    seed: int = 0
    lengths: bool | None = None


def export_variant(bundle: Bundle, variant: str, options: ExportOptions = ExportOptions(),
                   reference: RecurrentModel | None = None) -> VariantExport:
    """Build and verify the sequence graph and (when streamable) the step graph of a variant."""
    info = bundle.variant(variant)
    config = bundle.config_for(variant)
    lengths = config.head == "last" if options.lengths is None else options.lengths
    spec = ExportSpec(config, variant, info.get("precision", "fp32"),
                      opset=min(OPSET, get_target(options.target).max_opset), lengths=lengths)
    entries = bundle.tensors(variant)
    model = RecurrentModel.from_numpy(config, W.decode_all(entries))
    sequence = build_sequence_graph(spec, model, bundle.preprocessing)
    result = VariantExport(spec, model, entries, sequence, None)
    result.verification["sequence"] = verify_sequence(sequence, model, spec, options.seed)
    if spec.precision == "int8" and config.cell == "lstm":
        result.ort_only = ort_only_int8(sequence)
        result.verification["sequence_ort_only"] = verify_sequence(result.ort_only, model, spec,
                                                                   options.seed)
    if config.streamable:
        result.step = build_step_graph(spec, entries, bundle.preprocessing)
        result.verification["step"] = verify_step(result.step, model, spec, sequence,
                                                  options.steps, seed=options.seed)
        # recorded always, enforced for --format tensorrt
        result.verification["trt_compat"] = trt_compat.check(result.step, options.target)
    if variant != "fp32" and "fp32" in bundle.variants:
        reference = reference or fp32_model(bundle)
        result.verification["vs_fp32"] = compression_cost(model, reference, spec, options.steps,
                                                          seed=options.seed)
    result.verification["tolerance"] = {"max_abs": spec.tolerance.max_abs,
                                        "drift": spec.tolerance.drift}
    return result


def export_bundle(bundle_dir, formats="onnx", variants="fp32", target: str = "gpu",
                  max_streams: int = 64, steps: int = STEPS, seed: int = 0,
                  lengths: bool | None = None) -> dict:
    """Export ``variants`` of a bundle to ``formats`` (ONNX is always written); returns the report.

    Raises VerificationError (nothing written) when any check fails. An engine build that cannot
    run here (no tensorrt) leaves the ONNX and build plan written and is listed in
    ``report["errors"]``.
    """
    formats = parse_list(formats, FORMATS, "format")
    t = get_target(target)
    bundle = read_bundle(bundle_dir)
    variants = parse_list(variants, None, "variant")
    for name in variants:
        bundle.variant(name)
    if max_streams < 1:
        raise ConfigError(f"--max-streams must be >= 1, got {max_streams}")
    if {"tensorrt", "triton"} & set(formats) and not bundle.config.streamable:
        raise NotStreamableError(
            "TensorRT and Triton exports serve the streaming step graph, which a bidirectional "
            "model does not have; export --format onnx for its sequence graph")
    reference = fp32_model(bundle) if "fp32" in bundle.variants and variants != ["fp32"] else None
    options = ExportOptions(target, max_streams, steps, seed, lengths)
    done = [export_variant(bundle, v, options, reference) for v in variants]
    report = {"bundle": str(bundle.path), "target": target, "formats": formats,
              "variants": {d.spec.variant: d.verification for d in done}, "rows": [],
              "errors": []}
    files, records = {}, {fmt: {} for fmt in ("onnx", *formats)}
    for d in done:
        records["onnx"][d.spec.variant] = _onnx_files(d, files, report["rows"])
        if "triton" in formats:
            records["triton"][d.spec.variant] = _triton_files(
                d, max_streams, bundle.preprocessing, files, report["rows"])
    problems = [p for d in done for p in d.problems()]
    problems += [f"{d.spec.variant} TensorRT: {p['node']} ({p['op'] or 'tensor'}): {p['reason']}"
                 for d in done if "tensorrt" in formats
                 for p in d.verification["trt_compat"]["problems"]]
    if problems:
        raise VerificationError(
            f"export refused, verification failed: {'; '.join(problems)}", report=report)
    if "tensorrt" in formats:
        with tempfile.TemporaryDirectory() as scratch:
            cache = Path(scratch) / "timing.cache"  # one timing cache shared by every build
            for d in done:
                sparse = bundle.variant(d.spec.variant).get("pattern") == "2:4"
                records["tensorrt"][d.spec.variant] = {
                    target: _tensorrt_files(d, t, max_streams, sparse, cache, files, report)}
    records = {k: v for k, v in records.items() if v}

    def patch(manifest: dict) -> None:
        exports = manifest.setdefault("exports", {})
        for fmt, per_variant in records.items():
            for variant, record in per_variant.items():
                if fmt == "tensorrt":
                    exports.setdefault(fmt, {}).setdefault(variant, {}).update(record)
                else:
                    exports.setdefault(fmt, {})[variant] = record

    update_bundle(bundle.path, files, patch)
    return report


def _onnx_files(d: VariantExport, files: dict, rows: list) -> dict:
    stem = file_stem(d.spec.variant)
    record = {"opset": d.spec.opset, "ir_version": d.spec.ir_version,
              "precision": d.spec.precision, "verification": d.verification}
    graphs = (("sequence", d.sequence), ("step", d.step), ("sequence_ort_only", d.ort_only))
    for kind, graph in graphs:
        if graph is not None:
            rel = f"onnx/{stem}-{kind.replace('_', '-')}.onnx"
            files[rel] = graph.SerializeToString()
            record[kind] = rel
            rows.append(_row("onnx", d, kind, len(files[rel])))
    if d.ort_only is not None:
        record["labels"] = {"sequence_ort_only": "ort-only: com.microsoft.DynamicQuantizeLSTM "
                            "runs on onnxruntime's CPU provider only, not on TensorRT"}
    return record


def _triton_files(d: VariantExport, max_streams: int, preprocessing: dict, files: dict,
                  rows: list) -> dict:
    new, record = repository_files(d.spec, d.entries, d.step, max_streams, preprocessing)
    d.verification["triton"] = record["verification"]
    files.update(new)
    rows.append(_row("triton", d, "step", len(new[record["model_file"]])))
    return record


def _tensorrt_files(d: VariantExport, t, max_streams: int, sparse: bool, cache: Path,
                    files: dict, report: dict) -> dict:
    """Build plan (always) and engine (targets that build here, when tensorrt is present)."""
    stem = file_stem(d.spec.variant)
    settings = settings_for(d.spec, t, max_streams, sparse)
    plan = build_plan(d.spec.variant, stem, f"onnx/{stem}-step.onnx", settings, t)
    plan_rel = f"tensorrt/{stem}-{t.name}.json"
    files[plan_rel] = json.dumps(plan, indent=2).encode()
    record = {"plan": plan_rel, "engine": None, "trt_compat": d.verification["trt_compat"],
              "status": f"planned: build on the device with `{plan['command']}`"}
    if t.builds_here:
        try:
            engine, build = build_engine(d.step.SerializeToString(), settings, cache)
            files[settings.timing_cache] = cache.read_bytes()
            files[plan["engine"]] = engine
            record.update(engine=plan["engine"], status="built", build=build)
        except BackendUnavailableError as exc:
            record["status"] = f"not built: {exc}"
            report["errors"].append(
                f"{d.spec.variant}: TensorRT engine not built: {exc}. The ONNX graphs and the "
                f"build plan {plan_rel} were written; run `{plan['command']}` where TensorRT "
                "and a GPU are available")
    size = len(files.get(plan["engine"], b"")) or None
    report["rows"].append(_row("tensorrt", d, "step", size, record["status"].split(":")[0]))
    return record


def _row(fmt: str, d: VariantExport, graph: str, size: int | None,
         status: str = "verified") -> dict:
    """One line of the verification table; TensorRT and Triton serve the verified step graph."""
    v = d.verification.get(graph, {})
    if status == "verified" and v.get("chaotic"):
        status = "verified (drift: chaotic on random input, step-wise checked)"
    return {"format": fmt, "variant": d.spec.variant, "graph": graph,
            "max_abs": v.get("max_abs"), "drift": v.get("drift"),
            "vs_fp32": d.verification.get("vs_fp32", {}).get("max_abs"), "size_bytes": size,
            "status": status}
