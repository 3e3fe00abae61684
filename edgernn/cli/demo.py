"""`edgernn demo`: the whole path on built-in data, one summary table at the end."""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.cli import console


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True,
              help="Where the artifacts go (an earlier demo's output there is replaced).")
@click.option("--quick", is_flag=True, help="A tiny model and short runs (a smoke test).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
def command(out: Path, quick: bool, as_json: bool) -> None:
    """Train, compress, export, verify and benchmark a model on built-in data.

    \b
    1. train an LSTM to forecast next week's Mauna Loa CO2 change (a real sensor series)
    2. compress it: int8 per-channel, fp16, 80 % gradual sparsity (+ int8)
    3. export verified ONNX graphs, a Triton repository and a Jetson TensorRT build plan
    4. benchmark every backend available here, one sample per step, against torch baselines
    5. print variant x size x held-out error x latency, and where the artifacts are
    """
    from edgernn.demo import DemoSettings, run_demo

    settings = DemoSettings.quick() if quick else DemoSettings()
    summary = run_demo(out, settings, say=console.info)
    if as_json:
        console.print_json(summary)
        return
    _print(summary)


def _print(summary: dict) -> None:
    backends = sorted({lat["name"] for v in summary["variants"] for lat in v["latency"]})
    rows = []
    for v in summary["variants"]:
        lat = {item["name"]: item for item in v["latency"]}
        rows.append([
            v["variant"], console.human_bytes(v["size_bytes"]), f"{v['size_ratio']:.2f}x",
            v["nonzero_params"], v["test"], v["delta"],
            *[lat[b]["p50_us"] if b in lat else None for b in backends],
            max((item["contract_error"] or 0.0 for item in v["latency"]), default=None),
        ])
    metric = summary["variants"][0]["metric"]
    baseline = summary["train"].get("baseline") or {}
    versus = (f"; naive '{baseline['name']}' forecast: {baseline['test_rmse']:.4g}"
              if "test_rmse" in baseline else "")
    console.print_table(
        f"edgernn demo: {summary['train']['dataset']} ({metric} on held-out test data{versus})",
        ["variant", "size", "vs fp32", "nonzero", f"test {metric}", "delta",
         *[f"{b} p50 µs/step" for b in backends], "max |err| vs torch"],
        rows,
    )
    console.print_table(
        "baselines, measured in the same run (fp32, one stream)",
        ["baseline", "variant", "p50 µs/step", "p99 µs/step"],
        [[b["name"], b["variant"], b["p50_us"], b["p99_us"]] for b in summary["baselines"]],
    )
    exports = [[r["format"], r["variant"], r["graph"], r["max_abs"], r.get("drift"), r["status"]]
               for r in summary["exports"]]
    console.print_table("exports (verified against torch)",
                        ["format", "variant", "graph", "max abs err", "1000-step drift", "status"],
                        exports)
    for error in summary["tensorrt"]["errors"]:
        console.warn(f"TensorRT: {error}")
    for skip in summary["skipped"]:
        console.warn(f"bench skipped {skip['row']}: {skip['reason']}")
    art = summary["artifacts"]
    console.print_table("artifacts", ["what", "where"], [
        ("bundle", art["bundle"]),
        ("ONNX graphs", f"{len(art['onnx'])} files under {art['bundle']}"),
        ("Triton repository", ", ".join(art["triton"]) or "-"),
        ("TensorRT build plans", ", ".join(art["tensorrt_plan"]) or "-"),
    ])
    secs = summary["stage_seconds"]
    console.info("stage seconds: " + ", ".join(f"{k} {v}" for k, v in secs.items()))
    console.info(f"next: edgernn inspect {art['bundle']}  |  "
                 f"edgernn bench {art['bundle']} --streams 1,64")


COMMANDS = [command]
