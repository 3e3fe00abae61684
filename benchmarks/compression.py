"""Compression on a real dataset: size and held-out accuracy of every variant, LSTM and GRU.

Trains a one-layer LSTM and GRU (256 units) on ``digits`` (UCI handwritten digits, 8 rows of 8
pixels as a sequence), then adds int8, fp16, 80 % gradual sparse (+ int8), 50 % structured and
2:4 variants with ``compress_bundle`` and checks them against the targets. torch's own
``quantize_dynamic`` is scored beside our int8 for comparison.

    python benchmarks/compression.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, markdown_table  # noqa: E402

# (variant, what the table calls it, target: (max size ratio, max drop in points) or None)
ROWS = [
    ("fp32", "fp32", None),
    ("int8", "int8 (per channel)", (0.27, 0.5)),
    ("int8-per-tensor", "int8 per tensor", None),
    ("fp16", "fp16", None),
    ("sparse80", "80 % gradual sparse", None),
    ("sparse80-int8", "80 % sparse + int8", (0.15, 1.0)),
    ("structured50", "50 % structured", (None, 2.0)),
    ("structured50-int8", "50 % structured + int8", None),
    ("sparse2of4", "2:4", None),
    ("sparse2of4-int8", "2:4 + int8", None),
]


def torch_dynamic_accuracy(bundle: Path, dataset) -> float:
    """Test accuracy of torch's quantize_dynamic (int8 LSTM/GRU/Linear) on the fp32 model."""
    import warnings

    import torch

    from edgernn.bundle_io import load_model
    from edgernn.train import evaluate

    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        model = torch.ao.quantization.quantize_dynamic(
            load_model(bundle), {torch.nn.LSTM, torch.nn.GRU, torch.nn.Linear}, dtype=torch.qint8)
        return evaluate(model, dataset.test, dataset)["accuracy"]


def control_accuracy(bundle: Path, dataset, epochs: int) -> float:
    """Test accuracy of the fp32 model fine-tuned like the pruned ones, without pruning."""
    from edgernn.bundle_io import load_model
    from edgernn.compress.finetune import finetune, finetune_config
    from edgernn.runtime.bundle import read_bundle
    from edgernn.train import evaluate

    train_config = read_bundle(bundle).manifest["provenance"]["train_config"]
    model = finetune(load_model(bundle), dataset, finetune_config(train_config, epochs, 0), epochs,
                     after_step=lambda model, step: None)
    return evaluate(model, dataset.test, dataset)["accuracy"]


def run_cell(cell: str, args, workdir: Path, dataset) -> dict:
    from edgernn.compress import compress_bundle
    from edgernn.train import TrainConfig, train_bundle

    path = workdir / cell
    started = time.perf_counter()
    train_bundle(dataset, path, TrainConfig(epochs=args.epochs, seed=0), cell=cell, layers=1,
                 hidden=args.hidden, progress=False)
    trained = time.perf_counter() - started
    reports = compress_bundle(path, int8=True, fp16=True, sparsity=0.8, schedule="gradual",
                              finetune_epochs=args.finetune_epochs, structured=0.5,
                              pattern="2:4", dataset=dataset)
    reports += compress_bundle(path, int8=True, per_tensor=True, dataset=dataset)[1:]
    total = time.perf_counter() - started
    return {"cell": cell, "train_s": round(trained, 1), "total_s": round(total, 1),
            "torch_dynamic": torch_dynamic_accuracy(path, dataset),
            "control": control_accuracy(path, dataset, args.finetune_epochs),
            "reports": {r["variant"]: r for r in reports}}


def verdict(report: dict, target) -> str:
    if target is None:
        return ""
    size, points = target
    ok = -100 * report["delta"] <= points and (size is None or report["size_ratio"] <= size)
    limits = ([f"size <= {size}x"] if size else []) + [f"drop <= {points} pt"]
    return ("pass" if ok else "MISS") + f" ({', '.join(limits)})"


def table(results: list[dict]) -> str:
    rows = []
    for name, label, target in ROWS:
        for res in results:
            r = res["reports"][name]
            rows.append([res["cell"], label, r["size_bytes"], f"{r['size_ratio']:.3f}",
                         r["nonzero_params"], f"{100 * r['test']:.2f}",
                         f"{100 * r['delta']:+.2f}", f"{r['time_s']:.1f}", verdict(r, target)])
    columns = ["cell", "variant", "bytes", "x fp32", "nonzero", "test acc %", "delta pt",
               "time s", "target"]
    return markdown_table(columns, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="tiny settings, for a smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.finetune_epochs, args.hidden = 2, 1, 32

    from edgernn.data import load_dataset
    from edgernn.runtime.device import device_info

    started = time.perf_counter()
    dataset = load_dataset("digits", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_cell(cell, args, Path(tmp), dataset) for cell in ("lstm", "gru")]
    device = device_info()
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/compression.py",
                                                           *sys.argv[1:]])
    notes = "\n".join(
        f"- {r['cell']}: fp32 {100 * r['reports']['fp32']['test']:.2f} %; fine-tuned "
        f"{args.finetune_epochs} more epochs without pruning (control) "
        f"{100 * r['control']:.2f} %; torch `quantize_dynamic` (int8 weights and dynamically "
        f"quantized activations) {100 * r['torch_dynamic']:.2f} % vs our int8 (weight-only) "
        f"{100 * r['reports']['int8']['test']:.2f} %. Trained in {r['train_s']} s, training "
        f"and all variants {r['total_s']} s." for r in results)
    n_test = len(dataset.test)
    text = f"""# Compression: size and held-out accuracy per variant

Command: `{command}`
Date: {datetime.now(timezone.utc).isoformat(timespec="seconds")}
Machine: {device['cpu']} ({device['cores']} cores), {device['system']}; {device['libraries']}
Total wall time: {time.perf_counter() - started:.0f} s (1-minute load average at the end:
{os.getloadavg()[0]:.1f} on {device['cores']} cores; other jobs shared the machine)

- Dataset: `digits` (UCI handwritten digits, 1797 images, each read as 8 steps of 8 pixels),
  seeded 70/15/15 split; test = {n_test} images, so one image is {100 / n_test:.2f} points.
- Models: one recurrent layer of {args.hidden} units, trained {args.epochs} epochs (best
  validation epoch kept).
- Pruned variants are fine-tuned {args.finetune_epochs} epochs at a third of the training
  learning rate, masks held at zero. "80 % gradual": magnitude pruning per gate matrix on the cubic
  schedule of Zhu & Gupta (2017). Structured: half the hidden units removed (importance = mean |h|
  over training roll-outs x norm of the unit's outgoing weights), giving a dense
  {args.hidden // 2}-unit model. 2:4: two of every four consecutive input weights kept.
- Size: the variant's safetensors file. int8 keeps biases and per-row scales in fp32, so small
  models pay more than a quarter. `time s`: producing the variant from fp32 (pruning,
  fine-tuning, scoring; an `-int8` twin counts its parent's time). Delta: test accuracy minus
  fp32's, scored with the torch model holding the variant's decoded weights.

{table(results)}

{notes}

Fine-tuning is also extra training: the control shows what the same epochs do to the unpruned
model. With {n_test} test images, differences of one or two images ({100 / n_test:.2f} points
each) are within the noise of training itself.
"""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compression.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
