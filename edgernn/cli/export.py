"""`edgernn export` (ONNX / TensorRT / Triton, verified) and `edgernn build-engine`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgernn.cli import console
from edgernn.runtime.errors import VerificationError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
TARGET_NAMES = ("gpu", "jetson-orin", "jetson-xavier", "jetson-nano")


def columns(steps: int) -> tuple[str, ...]:
    return ("format", "variant", "graph", "max abs error", f"{steps:,}-step drift", "vs fp32",
            "size", "status")


@click.command("export", context_settings=CONTEXT)
@click.argument("bundle_dir", required=False, type=click.Path(file_okay=False))
@click.option("--format", "formats", default="onnx", show_default=True,
              help="Comma-separated: onnx, tensorrt, triton (ONNX is always written).")
@click.option("--variant", "variants", default="fp32", show_default=True,
              help="Comma-separated bundle variants, e.g. fp32,int8,fp16.")
@click.option("--target", type=click.Choice(TARGET_NAMES), default="gpu", show_default=True,
              help="Where the engine runs; Jetson targets get a build plan to run on the device.")
@click.option("--max-streams", type=click.IntRange(min=1), default=64, show_default=True,
              help="Most streams batched in one call (TensorRT profile, Triton max_batch_size).")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Streamed steps in the drift check.")
@click.option("--lengths/--no-lengths", default=None,
              help="Give the sequence graph a per-sequence lengths input (default: when the head "
                   "reads the last step).")
@click.option("--from-torch", "from_torch", metavar="MODULE.py:FUNCTION",
              help="Adopt a PyTorch model: FUNCTION() returns the nn.Module.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="State dict for --from-torch (.pt loaded with weights_only, or .safetensors).")
@click.option("--out", type=click.Path(file_okay=False), help="Bundle to create for --from-torch.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write the full verification report (kept when export is refused).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def export(bundle_dir, formats, variants, target, max_streams, steps, lengths, from_torch, weights,
           out, force, report_path, as_json) -> None:
    """Export a bundle's variants, verified against torch before anything is written.

    \b
    Examples:
      edgernn export runs/sine --format onnx,triton --variant fp32,int8
      edgernn export runs/sine --format tensorrt --target jetson-orin
      edgernn export --from-torch model.py:build --weights w.pt --out runs/adopted

    Each graph is checked (onnx.checker, onnxruntime vs torch per output, 1,000 streamed steps
    vs torch and the sequence graph); any miss refuses the export and exits non-zero.
    """
    from edgernn.converters import export_bundle

    if from_torch:
        if bundle_dir or not (weights and out):
            raise click.UsageError("--from-torch needs --weights and --out, and no BUNDLE_DIR")
        bundle_dir = adopt_to_bundle(from_torch, weights, out, force)
    elif not bundle_dir:
        raise click.UsageError("give a BUNDLE_DIR, or --from-torch with --weights and --out")
    try:
        report = export_bundle(bundle_dir, formats, variants, target, max_streams, steps,
                               lengths=lengths)
    except VerificationError as exc:
        keep_report(exc.report, report_path)
        show_refusal(exc.report, as_json)
        raise
    keep_report(report, report_path)
    if as_json:
        console.print_json({k: report[k] for k in ("bundle", "target", "formats", "rows",
                                                   "errors")})
    else:
        console.print_table(f"export {report['bundle']} (target {target})", columns(steps),
                            [table_row(r) for r in report["rows"]])
    if report["errors"]:
        raise click.ClickException("; ".join(report["errors"]))


def table_row(row: dict) -> list:
    size = console.human_bytes(row["size_bytes"]) if row["size_bytes"] else None
    return [row["format"], row["variant"], row["graph"], row["max_abs"], row["drift"],
            row["vs_fp32"], size, row["status"]]


def show_refusal(report: dict, as_json: bool) -> None:
    if as_json:
        console.print_json({"refused": True, **report})
        return
    rows = [(variant, check, problem if isinstance(problem, str) else
             f"{problem['node']} ({problem['op'] or 'tensor'}): {problem['reason']}")
            for variant, checks in report.get("variants", {}).items()
            for check, record in checks.items() if isinstance(record, dict)
            for problem in record.get("problems", [])]
    console.print_table("export refused", ("variant", "check", "problem"), rows)


def keep_report(report: dict, path: str | None) -> None:
    if path:
        Path(path).write_text(json.dumps(report, indent=2, default=str) + "\n")
        console.info(f"report written to {path}")


def adopt_to_bundle(spec: str, weights: str, out: str, force: bool) -> str:
    """Import MODULE.py, call FUNCTION(), load the weights, adopt and save as a new bundle."""
    import importlib.util

    import torch

    import edgernn
    from edgernn.bundle_io import save_model_bundle

    path, _, name = spec.rpartition(":")
    if not path or not name or not Path(path).is_file():
        raise click.BadParameter(f"{spec!r} is not MODULE.py:FUNCTION of an existing file",
                                 param_hint="--from-torch")
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not callable(getattr(module, name, None)):
        raise click.BadParameter(f"{path} has no function {name!r}", param_hint="--from-torch")
    net = getattr(module, name)()
    if weights.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(weights)
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    model = edgernn.adopt(net.eval())
    save_model_bundle(model, out, provenance={"adopted_from": spec}, force=force)
    console.info(f"adopted {type(net).__name__} as a {model.config.cell} bundle at {out}")
    return out


@click.command("build-engine", context_settings=CONTEXT)
@click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--variant", default="fp32", show_default=True)
@click.option("--target", type=click.Choice(TARGET_NAMES), default=None,
              help="The plan's target (default: the only one exported for the variant).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def build_engine(bundle_dir, variant, target, as_json) -> None:
    """Build the TensorRT engine of a bundle's build plan here (on the device) and store it."""
    from edgernn.converters.jetson import build_from_plan

    report = build_from_plan(bundle_dir, variant, target)
    if as_json:
        console.print_json(report)
        return
    console.print_table(f"engine built in {bundle_dir}", ("field", "value"),
                        [(k, json.dumps(v) if isinstance(v, dict | list) else v)
                         for k, v in report.items()])


COMMANDS = [export, build_engine]
