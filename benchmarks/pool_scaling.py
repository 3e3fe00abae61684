"""StreamPool scaling with the number of streams (1…256): LSTM, input 16, hidden 128, fp32 and int8.

Per stream-step cost of one batched pool call over all streams (``StreamPool.step`` with a dict,
and its array form ``StreamPool.step_arrays``), against torch's full-sequence forward batched over
the same number of streams (per stream-step), torch LSTMCell stepping the batch and onnxruntime's
plain ``session.run`` on the batched step graph, all measured in the same run for each stream
count. Writes results/pool_scaling.{md,json,png}.

    python benchmarks/pool_scaling.py            # about 2 minutes on 2 cores
    python benchmarks/pool_scaling.py --quick    # seconds, for tests
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

STREAMS = (1, 4, 16, 64, 256)
FULLSEQ = "torch full-seq"
POOL_CALLS = ("StreamPool.step", "StreamPool.step_arrays")  # timed at every pool size


def main() -> None:
    args = common.arguments(__doc__, steps=40_000)
    from edgernn.runtime import bench

    streams = (1, 8) if args.quick else STREAMS
    hidden = 16 if args.quick else 128
    documents, rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = common.make_bundle(Path(tmp) / f"lstm{hidden}", hidden, 16,
                                  8 if args.quick else 32)
        for n in streams:
            # about the same number of stream-steps per row at every pool size
            settings = bench.Settings(
                steps=30 if args.quick else max(20, args.steps // n),
                warmup=5 if args.quick else 50, threads=args.threads,
                check_steps=10 if args.quick else 50, seq_len=50 if args.quick else 1000,
                repeats=2 if args.quick else 5, apis=POOL_CALLS)
            report, opened = bench.run(path, None, ["fp32", "int8"], [n], settings)
            doc = report.to_dict(opened)
            documents.append(doc)
            for r in doc["rows"]:
                lat = r["latency_us"] or {}
                name = r["name"] if r["kind"] == "baseline" else r["engine"]
                ort = common.ratio_to(doc["rows"], r, "onnxruntime run")
                rows.append([n, name, r["api"] or "", r["variant"], lat.get("p50"),
                             r["per_stream_step_us"],
                             r["stream_steps_per_s"], r["vs_torch_fullseq"], ort,
                             r["contract_error"]])
    columns = ["streams", "row", "call", "variant", "p50 µs per call", "µs/stream-step",
               "stream-steps/s", "× torch full-seq", "× ort run", "contract err"]
    text = common.markdown_table(columns, rows) + "\n\n" + _targets(documents, streams)
    common.write_results(args.out, "pool_scaling", documents, text)
    _plot(documents, args.out / "pool_scaling.png")


def _targets(documents: list[dict], streams) -> str:
    """Issue 5's pool targets (256 streams: fp32 ≤ 1.0×, int8 ≤ 0.7× torch full-seq batched)
    on the backend with the fastest fp32 StreamPool.step; step_arrays shown beside."""
    rows = []
    for n, doc in zip(streams, documents):
        backend = common.fastest_backend(doc["rows"], "StreamPool.step")
        rows += [common.target_row(f"{n} streams {r['variant']} {r['api']} / torch full-seq "
                                   "batched", r["name"], r["vs_torch_fullseq"], "≤",
                                   {"fp32": 1.0, "int8": 0.7}[r["variant"]])
                 for r in doc["rows"] if n == 256 and r["name"] == backend]
    return common.targets_table("Targets (issue 5; H=128, 1 thread):", rows)


def _plot(documents: list[dict], path: Path) -> None:
    """µs per stream-step against the number of streams: one panel per variant, a line per
    backend and call; torch's full-sequence forward dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = ("fp32", "int8")
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharey=True)
    for ax, variant in zip(axes, variants):
        series: dict[str, list[tuple[int, float]]] = {}
        for doc in documents:
            for r in doc["rows"]:
                if r["variant"] == variant or r["name"] in (FULLSEQ, "torch LSTMCell"):
                    label = " · ".join(filter(None, (r["name"], r["api"])))
                    series.setdefault(label, []).append((r["streams"], r["per_stream_step_us"]))
        for label, points in sorted(series.items()):
            xs, ys = zip(*points)
            ax.plot(xs, ys, "--" if label == FULLSEQ else "-", marker="o", label=label,
                    color="black" if label == FULLSEQ else None)
        counts = sorted({doc["rows"][0]["streams"] for doc in documents})
        ax.set_xscale("log")
        ax.set_xticks(counts, [str(n) for n in counts])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel("streams stepped per call")
        ax.set_title(f"{variant} (torch baselines: fp32 weights)", fontsize=10)
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("µs per stream-step (median call / streams)")
    model = documents[0]["bundle"]["model"]
    fig.suptitle(f"StreamPool scaling: {model['cell'].upper()} H={model['hidden_size']}, "
                 f"{documents[0]['settings']['threads']} thread(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
