"""Shared by the benchmark scripts: thread pinning, seeded LSTM bundles, result files.

Import this module only after the script has called nothing heavy: ``pin_threads`` must run
before numpy, torch or onnxruntime are imported for the environment variables to take effect.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def arguments(doc: str, steps: int, bundles: bool = False) -> argparse.Namespace:
    """The options every script takes (``bundles``: also ``--bundles DIR`` to keep the bundles
    made); pins the thread pools before anything heavy loads."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings, for tests")
    parser.add_argument("--steps", type=int, default=steps, help="timed calls per row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results are written")
    if bundles:
        parser.add_argument("--bundles", type=Path, default=None,
                            help="keep the bundles made here (default: a temporary folder)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    return args


def make_bundle(path: Path, hidden: int, input_size: int = 16, export_steps: int = 32) -> Path:
    """A seeded LSTM bundle (fp32 + int8 per channel) with verified ONNX step graphs."""
    from edgernn.bundle_io import save_model_bundle
    from edgernn.compress.quantize import encode_tensors
    from edgernn.compress.variants import write_variant
    from edgernn.converters.export import export_bundle
    from edgernn.models import RecurrentModel
    from edgernn.runtime.config import ModelConfig

    config = ModelConfig(cell="lstm", input_size=input_size, hidden_size=hidden, head="every")
    model = RecurrentModel(config).init_weights(0)
    bundle = save_model_bundle(model, path, force=True)
    write_variant(bundle, "int8", encode_tensors(model.to_numpy(), int8=True), metrics={})
    export_bundle(path, "onnx", "fp32,int8", steps=export_steps)
    return path


def ratio_to(rows: list[dict], row: dict, name: str) -> float | None:
    """``row``'s per stream-step time over baseline ``name``'s (same variant, same streams)."""
    for other in rows:
        same = other["variant"] == row["variant"] and other["streams"] == row["streams"]
        if other["name"] == name and same:
            return row["per_stream_step_us"] / other["per_stream_step_us"]
    return None


def fastest_backend(rows: list[dict], api: str) -> str | None:
    """The edgernn backend whose fp32 ``api`` call is the fastest per stream-step."""
    timed = [r for r in rows
             if r["kind"] == "edgernn" and r["api"] == api and r["variant"] == "fp32"]
    return min(timed, key=lambda r: r["per_stream_step_us"])["name"] if timed else None


def targets_table(title: str, rows: list[list]) -> str:
    """A titled table of ``target_row`` lines."""
    return f"{title}\n\n" + markdown_table(["target", "backend", "measured", "wanted", "met"], rows)


def target_row(what: str, backend: str, measured: float, op: str, limit: float) -> list:
    """One line of a targets table: the measured ratio against the wanted bound."""
    met = measured <= limit if op == "≤" else measured >= limit
    return [what, backend, round(measured, 2), f"{op} {limit}", "yes" if met else "no"]


def markdown_table(columns: list[str], rows: list[list]) -> str:
    def cell(v):
        if v is None:
            return "–"
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(out: Path, name: str, documents: list[dict], markdown: str) -> None:
    """``name``.json (every bench document) and ``name``.md (the table, machine, command)."""
    device = documents[0]["device"]
    argv = [f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]
    command = "python " + " ".join(shlex.quote(a) for a in argv)
    header = (f"Command: `{command}`  \nDate: {documents[0]['date']}  \n"
              f"Machine: {device['cpu']} ({device['cores']} cores; {device['cpu_flags']}), "
              f"{device['system']}, GPU: {device['gpu']}  \nLibraries: {device['libraries']}  \n"
              f"BLAS threads: {documents[0]['threads']['blas']}  \n"
              f"Load average (1 min, {device['cores']} cores) before/after each run: "
              + ", ".join(f"{d['load_average']['before']}/{d['load_average']['after']}"
                          for d in documents) + "\n\n")
    (out / f"{name}.md").write_text(header + markdown + "\n")
    document = {"command": command, "runs": documents}
    (out / f"{name}.json").write_text(json.dumps(document, indent=1) + "\n")
    print(header + markdown)
