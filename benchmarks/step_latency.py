"""Streaming step latency vs baselines across hidden sizes: LSTM, input 16, 1 stream, fp32 and int8.

Every row of one hidden size is measured in the same run (``edgernn.runtime.bench``): the runtime
backends available here, torch's full-sequence forward per step, torch LSTMCell stepping and
onnxruntime's plain ``session.run`` on the exported step graph. Writes
results/step_latency.{md,json} and results/step_latency_h128.png.

    python benchmarks/step_latency.py            # about 2 minutes on 2 cores
    python benchmarks/step_latency.py --quick    # seconds, for tests
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, make_bundle, markdown_table, ratio_to, write_results  # noqa: E402

HIDDEN = (64, 128, 256, 512)
ORT = "onnxruntime run"


def main() -> None:
    args = arguments(__doc__, steps=5000)
    from edgernn.runtime import bench

    from edgernn.cli.bench import plot_latency

    hidden = (16, 32) if args.quick else HIDDEN
    quick = args.quick
    settings = bench.Settings(steps=50 if quick else args.steps, warmup=5 if quick else 500,
                              threads=args.threads, check_steps=20 if quick else 200,
                              seq_len=50 if quick else 1000, repeats=2 if quick else 5)
    documents, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for h in hidden:
            path = make_bundle(Path(tmp) / f"lstm{h}", h, export_steps=8 if args.quick else 32)
            report, opened = bench.run(path, None, ["fp32", "int8"], [1], settings)
            doc = report.to_dict(opened)
            documents.append(doc)
            rows += [_row(h, r, doc["rows"]) for r in doc["rows"]]
            if h == 128:
                plot_latency(report, args.out / "step_latency_h128.png")
    columns = ["H", "row", "variant", "p50 µs", "p99 µs", "µs/step", "× torch full-seq",
               "× ort run", "contract err"]
    text = markdown_table(columns, rows) + "\n\n" + _headlines(documents, hidden)
    write_results(args.out, "step_latency", documents, text)


def _row(h: int, r: dict, rows: list[dict]) -> list:
    lat = r["latency_us"] or {}
    name = r["name"] if r["kind"] == "baseline" else r["engine"]
    return [h, name, r["variant"], lat.get("p50"), lat.get("p99"), r["per_stream_step_us"],
            r["vs_torch_fullseq"], ratio_to(rows, r, ORT), r["contract_error"]]


def _headlines(documents: list[dict], hidden) -> str:
    """The issue's speed targets, each with the ratio measured here."""
    lines = []
    for h, doc in zip(hidden, documents):
        ours = [r for r in doc["rows"] if r["kind"] == "edgernn"]
        by = {(r["name"], r["variant"]): r for r in ours}
        for (backend, variant), r in sorted(by.items()):
            ort = ratio_to(doc["rows"], r, ORT)
            lines.append(f"- H={h} {backend} {variant}: {r['vs_torch_fullseq']:.2f}× torch full-seq"
                         + (f", {ort:.2f}× onnxruntime run" if ort else ""))
        for backend in sorted({r["name"] for r in ours}):
            if (backend, "fp32") in by and (backend, "int8") in by:
                fp32, int8 = by[backend, "fp32"], by[backend, "int8"]
                speedup = fp32["per_stream_step_us"] / int8["per_stream_step_us"]
                lines.append(f"- H={h} {backend}: int8 speed-up over fp32 {speedup:.2f}×")
    return ("Targets (issue 5, H=128): fp32 ≤ 1.0× and int8 ≤ 0.6× torch full-seq, both ≤ 0.3× "
            "onnxruntime run; int8 ≥ 1.5× faster than fp32 at H ≥ 256.\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
