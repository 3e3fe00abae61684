"""Streaming runtime speed: edgernn backends against torch and onnxruntime, side by side.

Every row is timed in the same process, one thread, in interleaved rounds (each round times a
block of calls of every candidate in turn; the median round is reported), so machine load hits
all candidates alike. Also: 1,000,000 steps with flat memory, and the streaming-contract error
of every backend x variant x cell. Writes results/runtime_speed.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from common import arguments, make_bundle, markdown_table

HERE = Path(__file__).resolve().parent


def interleaved(candidates: dict, rounds: int) -> dict[str, float]:
    """``{name: (block, calls)}`` -> median µs per call over ``rounds`` interleaved rounds."""
    import numpy as np

    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, (block, calls) in candidates.items():
            start = time.perf_counter()
            block()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    return {name: float(np.median(t)) for name, t in times.items()}


def single_stream(path: Path, steps: int, rounds: int) -> dict[str, float]:
    import numpy as np
    import onnxruntime as ort
    import torch

    from edgernn.bundle_io import load_model
    from edgernn.runtime import load

    rng = np.random.default_rng(0)
    xs = rng.normal(size=(steps, 16)).astype(np.float32)
    reference = load_model(path)
    seq = torch.from_numpy(xs)[None]
    fp32 = load(path, backend="numpy", variant="fp32")
    int8 = load(path, backend="numpy", variant="int8")
    ref = load(path, backend="numpy", variant="fp32", kernel="numpy")
    ort_backend = load(path, backend="onnxruntime", variant="fp32")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    step_graph = fp32.bundle.file(fp32.bundle.manifest["exports"]["onnx"]["fp32"]["step"])
    session = ort.InferenceSession(str(step_graph), options, providers=["CPUExecutionProvider"])
    H = fp32.config.hidden_size

    def ort_run():
        h = c = np.zeros((1, 1, H), np.float32)
        for x in xs:
            _, h, c = session.run(None, {"x": x[None], "state_h_in": h, "state_c_in": c})

    def loop(model, n=steps):
        def block():
            for x in xs[:n]:
                model.step(x)
        return block

    def full_sequence():
        with torch.no_grad():
            reference.step_outputs(seq)

    few = max(steps // 10, 10)
    return interleaved({
        "torch full-sequence": (full_sequence, steps),
        "onnxruntime run (step graph)": (ort_run, steps),
        "edgernn onnxruntime backend": (loop(ort_backend), steps),
        "edgernn numpy reference fp32": (loop(ref, few), few),
        "edgernn fp32 (fused kernel)": (loop(fp32), steps),
        "edgernn int8 (fused kernel)": (loop(int8), steps),
    }, rounds)


def pool(path: Path, streams: int, steps: int, rounds: int) -> dict[str, float]:
    import numpy as np
    import torch

    from edgernn.bundle_io import load_model
    from edgernn.runtime import StreamPool, load

    xs = np.random.default_rng(1).normal(size=(streams, steps, 16)).astype(np.float32)
    ticks = np.ascontiguousarray(xs.transpose(1, 0, 2))  # streaming input: one sample per stream
    reference = load_model(path)
    seq = torch.from_numpy(xs)  # torch's own layout, batch-first, built before timing
    rows = {}

    def full_sequence():
        with torch.no_grad():
            reference.step_outputs(seq)

    rows["torch full-sequence batched"] = (full_sequence, streams * steps)
    for variant in ("fp32", "int8"):
        model = load(path, backend="numpy", variant=variant)
        p = StreamPool(model, streams)
        ids = [p.open() for _ in range(streams)]
        state = model.new_state(streams)
        # the {id: sample} dicts are built before timing, as torch's input tensor is
        dicts = [dict(zip(ids, tick)) for tick in ticks]

        def pool_block(p=p, dicts=dicts):
            for samples in dicts:
                p.step(samples)

        def arrays_block(p=p, ids=ids):
            for tick in ticks:
                p.step_arrays(ids, tick)

        def batch_block(model=model, state=state):
            for tick in ticks:
                model.step_batch(tick, state)

        rows[f"edgernn StreamPool.step {variant}"] = (pool_block, streams * steps)
        rows[f"edgernn StreamPool.step_arrays {variant}"] = (arrays_block, streams * steps)
        rows[f"edgernn step_batch {variant}"] = (batch_block, streams * steps)
    return interleaved(rows, rounds)


def memory(path: Path, steps: int) -> dict:
    import numpy as np

    from edgernn.runtime import StreamPool, load

    def rss_kib() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4

    model = load(path, backend="numpy", variant="fp32")
    x = np.ones(16, np.float32)
    for _ in range(10_000):
        model.step(x)
    before = rss_kib()
    start = time.perf_counter()
    for _ in range(steps):
        model.step(x)
    single = {"steps": steps, "rss_before_kib": before, "rss_after_kib": rss_kib(),
              "seconds": round(time.perf_counter() - start, 1)}
    pool = StreamPool(model, 64)
    samples = {pool.open(): x for _ in range(64)}
    for _ in range(1_000):
        pool.step(samples)
    before = rss_kib()
    for _ in range(steps // 64):
        pool.step(samples)
    return single, {"steps": steps // 64 * 64, "rss_before_kib": before,
                    "rss_after_kib": rss_kib()}


def contract_errors(tmp: Path, steps: int) -> list[list]:
    """Max |y - torch step_outputs| per backend x variant x cell (the tests' tolerances apply)."""
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE.parent / "tests" / "runtime"))
    from runtime_helpers import VARIANTS, add_onnx_steps, add_variants, reference_outputs

    from edgernn.bundle_io import save_model_bundle
    from edgernn.models import RecurrentModel
    from edgernn.runtime import ModelConfig, load

    backends = {"numpy": ("numpy", {"kernel": "numpy"}), "numpy-c": ("numpy", {"kernel": "c"}),
                "onnxruntime": ("onnxruntime", {}), "torch": ("torch", {})}
    xs = np.random.default_rng(0).normal(size=(steps, 4)).astype(np.float32)
    rows = []
    for cell in ("lstm", "gru", "rnn"):
        for layers in (1, 2):
            torch.manual_seed(0)
            config = ModelConfig(cell=cell, num_layers=layers, hidden_size=32, input_size=4,
                                 output_size=3, head="every")
            model = RecurrentModel(config).init_weights(0)
            path = tmp / f"{cell}{layers}"
            save_model_bundle(model, path)
            add_variants(path, model.to_numpy(), VARIANTS)
            add_onnx_steps(path, VARIANTS)
            for variant in VARIANTS:
                expect = reference_outputs(path, variant, xs)
                errs = [float(np.abs(load(path, backend=b, variant=variant, **o).run(xs)
                                     - expect).max()) for b, o in backends.values()]
                rows.append([f"{cell} x{layers}", variant, *errs])
    return [["cell", "variant", *backends], rows]


def main() -> None:
    args = arguments(__doc__, steps=2000)
    import torch

    from edgernn.runtime.backends.kernel import kernel_status
    from edgernn.runtime.device import device_info

    torch.set_num_threads(args.threads)
    quick = args.quick
    rounds = 5 if quick else 21
    steps = 200 if quick else args.steps
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="edgernn-speed-"))
    out = []
    bundles = {h: make_bundle(tmp / f"lstm{h}", h) for h in (128, 256, 512)}

    single = single_stream(bundles[128], steps, rounds)
    torch_seq, ort_run = single["torch full-sequence"], single["onnxruntime run (step graph)"]
    out.append("## Single stream, LSTM input 16, hidden 128, batch 1 (µs per step)\n")
    out.append(markdown_table(["", "µs/step", "× torch full-seq", "× onnxruntime run"],
                              [[k, v, v / torch_seq, v / ort_run] for k, v in single.items()]))

    streams = 32 if quick else 256
    pooled = pool(bundles[128], streams, 10 if quick else 40, rounds)
    base = pooled["torch full-sequence batched"]
    out.append(f"\n## {streams} streams, hidden 128 (µs per stream-step)\n")
    out.append("Samples arrive one tick at a time, a (streams, 16) array; the `{id: sample}` "
               "dicts `StreamPool.step` takes are built before timing, as torch's input is.\n")
    out.append(markdown_table(["", "µs/stream-step", "× torch full-seq batched"],
                              [[k, v, v / base] for k, v in pooled.items()]))

    rows = []
    for h, path in bundles.items():
        r = single_stream(path, steps // 2, max(rounds // 2, 3)) if h != 128 else single
        fp32, int8 = r["edgernn fp32 (fused kernel)"], r["edgernn int8 (fused kernel)"]
        rows.append([h, r["torch full-sequence"], fp32, int8, fp32 / int8])
    out.append("\n## int8 against fp32, single stream (µs per step)\n")
    out.append(markdown_table(["hidden", "torch full-seq", "edgernn fp32", "edgernn int8",
                               "fp32 / int8"], rows))

    mem, pool_mem = memory(bundles[128], 20_000 if quick else 1_000_000)
    out.append(f"\n## Memory over {mem['steps']:,} steps (fp32, fused kernel)\n")
    out.append(f"RSS {mem['rss_before_kib']} KiB before, {mem['rss_after_kib']} KiB after "
               f"({mem['seconds']} s). StreamPool.step, 64 streams, {pool_mem['steps']:,} "
               f"stream-steps: {pool_mem['rss_before_kib']} KiB before, "
               f"{pool_mem['rss_after_kib']} KiB after.")

    header, contract = contract_errors(tmp, 200 if quick else 1000)
    out.append("\n## Streaming contract: max abs error against torch `step_outputs` "
               "(that variant's weights, 1,000 steps, hidden 32)\n")
    out.append(markdown_table(header, contract))

    device = device_info()
    argv = " ".join(["python", "benchmarks/runtime_speed.py", *sys.argv[1:]])
    text = (f"Command: `{argv}`  \nDate: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  \n"
            f"Machine: {device['cpu']} ({device['cores']} cores; {device['cpu_flags']})  \n"
            f"Libraries: {device['libraries']}  \n"
            f"Threads: {args.threads}; fused kernel: {kernel_status()[1]}; median of {rounds} "
            f"interleaved rounds  \nLoad average (1 min) at start / end: {load_before[0]:.1f} / "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work shares the machine: "
            "compare ratios, not absolute times)\n\n" + "\n".join(out) + "\n")
    (args.out / "runtime_speed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
