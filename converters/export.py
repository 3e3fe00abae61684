"""``export_bundle``: verified ONNX / TensorRT / Triton exports written into a bundle atomically.

Everything is built and verified in memory first; only when every check passes are the files
written (``update_bundle``) and recorded under ``manifest["exports"]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import onnx
from edgernn.runtime import weights as W
from edgernn.runtime.bundle import Bundle, read_bundle, update_bundle
from edgernn.runtime.errors import ConfigError, VerificationError

from edgernn.models import RecurrentModel

from . import trt_compat
from .onnx_sequence import build_sequence_graph
from .onnx_step import build_step_graph
from .spec import OPSET, ExportSpec
from .targets import get_target
from .verify import STEPS, compression_cost, verify_sequence, verify_step

FORMATS = ("onnx", "tensorrt", "triton")


@dataclass
class VariantExport:
    """One variant's verified graphs and figures, not yet written."""

    spec: ExportSpec
    model: RecurrentModel
    entries: dict
    sequence: onnx.ModelProto
    step: onnx.ModelProto | None
    verification: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(v.get("passed", True) for v in self.verification.values() if isinstance(v, dict))

    def problems(self) -> list[str]:
        return [f"{self.spec.variant} {k}: {p}" for k, v in self.verification.items()
                if isinstance(v, dict) for p in v.get("problems", [])]


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


def export_variant(bundle: Bundle, variant: str, target: str = "gpu", steps: int = STEPS,
                   seed: int = 0, reference: RecurrentModel | None = None) -> VariantExport:
    """Build and verify the sequence graph and (when streamable) the step graph of a variant."""
    info = bundle.variant(variant)
    config = bundle.config_for(variant)
    spec = ExportSpec(config, variant, info.get("precision", "fp32"),
                      opset=min(OPSET, get_target(target).max_opset))
    entries = bundle.tensors(variant)
    model = RecurrentModel.from_numpy(config, W.decode_all(entries))
    sequence = build_sequence_graph(spec, model, bundle.preprocessing)
    result = VariantExport(spec, model, entries, sequence, None)
    result.verification["sequence"] = verify_sequence(sequence, model, spec, seed)
    if config.streamable:
        result.step = build_step_graph(spec, entries, bundle.preprocessing)
        result.verification["step"] = verify_step(result.step, model, spec, sequence, steps,
                                                  seed=seed)
        result.verification["trt_compat"] = trt_compat.check(result.step, target)
        result.verification["trt_compat"]["passed"] = True  # enforced only for TensorRT exports
    if reference is not None and variant != "fp32":
        result.verification["vs_fp32"] = compression_cost(model, reference, spec, steps, 2, seed)
    result.verification["tolerance"] = {"max_abs": spec.tolerance.max_abs,
                                        "drift": spec.tolerance.drift}
    return result


def export_bundle(bundle_dir, formats="onnx", variants="fp32", target: str = "gpu",
                  max_streams: int = 64, steps: int = STEPS, seed: int = 0) -> dict:
    """Export ``variants`` of a bundle to ``formats``; returns the report (also recorded).

    Raises VerificationError (nothing written) when any check fails.
    """
    formats = parse_list(formats, FORMATS, "format")
    get_target(target)
    bundle = read_bundle(bundle_dir)
    variants = parse_list(variants, None, "variant")
    for name in variants:
        bundle.variant(name)
    if max_streams < 1:
        raise ConfigError(f"--max-streams must be >= 1, got {max_streams}")
    reference = None
    if "fp32" in bundle.variants and variants != ["fp32"]:
        reference = RecurrentModel.from_numpy(bundle.config_for("fp32"),
                                              W.decode_all(bundle.tensors("fp32")))
    done = [export_variant(bundle, v, target, steps, seed, reference) for v in variants]
    report = {"bundle": str(bundle.path), "target": target, "formats": formats,
              "variants": {d.spec.variant: d.verification for d in done}, "rows": []}
    problems = [p for d in done for p in d.problems()]
    if problems:
        raise VerificationError(
            f"export refused, verification failed: {'; '.join(problems)}", report=report)
    files, records = {}, {fmt: {} for fmt in ("onnx", *formats)}
    for d in done:
        stem = file_stem(d.spec.variant)
        graphs = {"sequence": d.sequence, "step": d.step}
        record = {"opset": d.spec.opset, "ir_version": d.spec.ir_version,
                  "precision": d.spec.precision, "verification": d.verification}
        for kind, graph in graphs.items():
            if graph is not None:
                rel = f"onnx/{stem}-{kind}.onnx"
                files[rel] = graph.SerializeToString()
                record[kind] = rel
                report["rows"].append(_row("onnx", d, kind, len(files[rel])))
        records["onnx"][d.spec.variant] = record
    records = {k: v for k, v in records.items() if v}

    def patch(manifest: dict) -> None:
        exports = manifest.setdefault("exports", {})
        for fmt, per_variant in records.items():
            exports.setdefault(fmt, {}).update(per_variant)

    update_bundle(bundle.path, files, patch)
    return report


def _row(fmt: str, d: VariantExport, graph: str, size: int) -> dict:
    v = d.verification.get(graph, {})
    return {"format": fmt, "variant": d.spec.variant, "graph": graph,
            "max_abs": v.get("max_abs"), "drift": v.get("drift"),
            "vs_fp32": d.verification.get("vs_fp32", {}).get("max_abs"), "size_bytes": size,
            "passed": v.get("passed", True)}
