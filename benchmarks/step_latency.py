"""Streaming step latency vs baselines across hidden sizes: LSTM, input 16, 1 stream, fp32 and int8.

Every row of one hidden size is measured in the same run (``edgernn.runtime.bench``): the runtime
backends available here, torch's full-sequence forward per step, torch LSTMCell stepping and
onnxruntime's plain ``session.run`` on the exported step graph. Writes
results/step_latency.{md,json} and results/step_latency_h128.png.

    python benchmarks/step_latency.py                        # about a minute on 2 cores
    python benchmarks/step_latency.py --bundles runs/bench   # keep the bundles
    python benchmarks/step_latency.py --quick                # seconds, for tests
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

HIDDEN = (64, 128, 256, 512)
ORT = "onnxruntime run"


def main() -> None:
    args = common.arguments(__doc__, steps=10_000, bundles=True)
    from edgernn.cli.bench import plot_latency
    from edgernn.runtime import bench

    hidden = (16, 32) if args.quick else HIDDEN
    quick = args.quick
    settings = bench.Settings(steps=50 if quick else args.steps, warmup=5 if quick else 500,
                              threads=args.threads, check_steps=20 if quick else 200,
                              seq_len=50 if quick else 1000, repeats=2 if quick else 5)
    documents, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for h in hidden:
            path = common.make_bundle((args.bundles or Path(tmp)) / f"lstm{h}", h,
                               export_steps=8 if args.quick else 32)
            report, opened = bench.run(path, None, ["fp32", "int8"], [1], settings)
            doc = report.to_dict(opened)
            documents.append(doc)
            rows += [_row(h, r, doc["rows"]) for r in doc["rows"]]
            if h == 128:
                plot_latency(report, args.out / "step_latency_h128.png")
    columns = ["H", "row", "variant", "p50 µs", "p99 µs", "µs/step", "× torch full-seq",
               "× ort run", "contract err"]
    text = common.markdown_table(columns, rows) + "\n\n" + _targets(documents, hidden)
    common.write_results(args.out, "step_latency", documents, text)


def _row(h: int, r: dict, rows: list[dict]) -> list:
    lat = r["latency_us"] or {}
    name = r["name"] if r["kind"] == "baseline" else r["engine"]
    return [h, name, r["variant"], lat.get("p50"), lat.get("p99"), r["per_stream_step_us"],
            r["vs_torch_fullseq"], common.ratio_to(rows, r, ORT), r["contract_error"]]


def _targets(documents: list[dict], hidden) -> str:
    """Issue 5's single-stream targets on the fastest backend, each with the measured ratio."""
    target, rows = common.target_row, []
    for h, doc in zip(hidden, documents):
        backend = common.fastest_backend(doc["rows"], "step")
        ours = {r["variant"]: r for r in doc["rows"]
                if r["kind"] == "edgernn" and r["name"] == backend}
        fp32, int8 = ours.get("fp32"), ours.get("int8")
        if h == 128:
            for r, limit in ((fp32, 1.0), (int8, 0.6)):
                if r:
                    what = f"H={h} {r['variant']} / torch full-seq"
                    rows.append(target(what, backend, r["vs_torch_fullseq"], "≤", limit))
            for r in (fp32, int8):
                ort = r and common.ratio_to(doc["rows"], r, ORT)
                if ort:
                    what = f"H={h} {r['variant']} / onnxruntime run ({r['variant']} graph)"
                    rows.append(target(what, backend, ort, "≤", 0.3))
        if h >= 256 and fp32 and int8:
            speedup = fp32["per_stream_step_us"] / int8["per_stream_step_us"]
            rows.append(target(f"H={h} int8 speed-up over fp32", backend, speedup, "≥", 1.5))
    return common.targets_table("Targets (issue 5; one stream, 1 thread, fastest backend):", rows)


if __name__ == "__main__":
    main()
