"""The whole path on built-in data: train, compress, export, verify, benchmark, summarize."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DemoSettings:
    """What the demo runs; ``quick`` shrinks everything for tests."""

    dataset: str = "co2"
    cell: str = "lstm"
    hidden: int = 64
    epochs: int = 25
    finetune_epochs: int = 2
    sparsity: float = 0.8
    bench_steps: int = 3000
    variants: tuple[str, ...] = ("fp32", "int8", "fp16", "sparse80", "sparse80-int8")
    exported: tuple[str, ...] = ("fp32", "int8", "sparse80-int8")

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(hidden=16, epochs=2, finetune_epochs=1, bench_steps=200)


def run_demo(out: str | Path, settings: DemoSettings | None = None,
             say: Callable[[str], None] = print) -> dict:
    """Run every stage into ``out`` (replaced if it exists); returns the summary document.

    torch runs on one thread: these models are small enough that a second thread only adds
    synchronisation.
    """
    from edgernn.models import torch_threads

    with torch_threads(1):
        return _run(Path(out), settings or DemoSettings(), say)


def _run(out: Path, s: DemoSettings, say: Callable[[str], None]) -> dict:
    from edgernn.compress import compress_bundle
    from edgernn.converters import export_bundle
    from edgernn.runtime import bench
    from edgernn.runtime.backends import backend_status
    from edgernn.train import TrainConfig, train_bundle

    _clear(out)
    bundle = out / f"{s.dataset}-{s.cell}"
    timings: dict[str, float] = {}

    def stage(name: str, message: str):
        say(f"[{len(timings) + 1}/5] {message}")
        timings[name] = time.perf_counter()

    def done(name: str) -> None:
        timings[name] = round(time.perf_counter() - timings[name], 2)

    stage("train", f"training a {s.cell.upper()} (hidden {s.hidden}) on the built-in "
                   f"'{s.dataset}' set")
    trained = train_bundle(s.dataset, bundle, TrainConfig(epochs=s.epochs, seed=0), cell=s.cell,
                           layers=1, hidden=s.hidden, force=True, progress=False)
    done("train")

    stage("compress", f"compressing: int8 per-channel, fp16, {s.sparsity:.0%} gradual sparsity")
    reports = compress_bundle(bundle, int8=True, fp16=True, sparsity=s.sparsity,
                              schedule="gradual", finetune_epochs=s.finetune_epochs)
    done("compress")

    stage("export", "exporting verified ONNX step/sequence graphs, a Triton repository and a "
                    "Jetson Orin TensorRT build plan")
    exported = export_bundle(bundle, formats="onnx,triton", variants=",".join(s.exported))
    jetson = export_bundle(bundle, formats="tensorrt", variants="fp32,int8",
                           target="jetson-orin")
    done("export")

    backends = [name for name, st in backend_status().items()
                if st["available"] and name in ("numpy", "onnxruntime")]
    stage("bench", f"benchmarking {', '.join(backends)} one sample at a time")
    report, opened = bench.run(bundle, backends=backends, variants=list(s.exported),
                               streams=(1,), settings=bench.Settings(
                                   steps=s.bench_steps, warmup=min(500, s.bench_steps),
                                   rounds=3))
    done("bench")
    bench_doc = report.to_dict(opened)

    stage("summary", "summarizing")
    summary = {
        "bundle": str(bundle),
        "train": trained,
        "variants": _variant_rows(reports, bench_doc["rows"], s.variants),
        "baselines": [_latency(r) for r in bench_doc["rows"] if r["kind"] == "baseline"],
        "exports": exported["rows"],
        "tensorrt": {"rows": jetson["rows"], "errors": jetson["errors"]},
        "skipped": bench_doc["skipped"],
        "device": bench_doc["device"],
        "artifacts": _artifacts(bundle),
    }
    done("summary")
    summary["stage_seconds"] = timings
    return summary


MARKER = ".edgernn-demo"


def _clear(out: Path) -> None:
    """Replace a previous demo's output; refuse any other non-empty directory."""
    if out.exists():
        if any(out.iterdir()) and not (out / MARKER).exists():
            from edgernn.runtime.errors import ConfigError

            raise ConfigError(f"{out} exists and is not an earlier demo's output; "
                              "choose another --out or remove it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("written by edgernn demo; replaced on the next run\n")


def _latency(row: dict) -> dict:
    lat = row.get("latency_us") or {}
    return {"name": row["name"], "variant": row["variant"],
            "p50_us": lat.get("p50", row["per_stream_step_us"]), "p99_us": lat.get("p99"),
            "contract_error": row.get("contract_error"),
            "vs_torch_fullseq": row["vs_torch_fullseq"]}


def _variant_rows(reports: list[dict], rows: list[dict], wanted: tuple[str, ...]) -> list[dict]:
    by_variant: dict[str, list[dict]] = {}
    for row in rows:
        if row["kind"] == "edgernn":
            by_variant.setdefault(row["variant"], []).append(_latency(row))
    return [{
        "variant": r["variant"], "size_bytes": r["size_bytes"], "size_ratio": r["size_ratio"],
        "nonzero_params": r["nonzero_params"], "metric": r["metric"], "test": r["test"],
        "delta": r["delta"], "latency": by_variant.get(r["variant"], []),
    } for r in reports if r["variant"] in wanted]


def _artifacts(bundle: Path) -> dict:
    from edgernn.runtime.bundle import read_bundle

    manifest = read_bundle(bundle).manifest
    return {
        "bundle": str(bundle),
        "manifest": str(bundle / "manifest.json"),
        "onnx": sorted(str(bundle / rel) for rel in manifest["files"] if rel.endswith(".onnx")),
        "triton": sorted({str(bundle / rel.split("/")[0]) for rel in manifest["files"]
                          if rel.startswith("triton")}),
        "tensorrt_plan": sorted(str(bundle / rel) for rel in manifest["files"]
                                if rel.startswith("tensorrt")),
    }
