"""Classify handwritten digits (UCI, 8x8 images read as 8 rows of 8 pixels) with a GRU that is
pruned to 80 % sparsity and quantized to int8, streamed one row per ``step`` on the device.

Run: ``python examples/classify_digits_compressed.py``.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

import edgernn.runtime as rt
from edgernn.compress import compress_bundle
from edgernn.data import load_dataset
from edgernn.train import TrainConfig, train_bundle


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--finetune-epochs", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp()) / "digits"

    train_bundle("digits", out, TrainConfig(epochs=args.epochs, seed=0), cell="gru", layers=1,
                 hidden=args.hidden, force=True, progress=False)
    reports = compress_bundle(out, int8=True, sparsity=0.8, schedule="gradual",
                              finetune_epochs=args.finetune_epochs)
    for r in reports:
        print(f"{r['variant']:>14}: {r['size_bytes']:7d} bytes, "
              f"test {r['metric']} {r['test']:.3f} ({r['delta']:+.3f} vs fp32)")

    # Device side: each image arrives one row (8 pixels) at a time.
    data = load_dataset("digits")
    pre = data.preprocessing
    # raw pixels, as a device would read them
    images = data.test.X * np.asarray(pre["input_std"]) + np.asarray(pre["input_mean"])
    model = rt.load(out, backend="numpy", variant="sparse80-int8")
    correct = 0
    for image, label in zip(images, data.test.y):
        model.reset()
        for row in image:
            logits = model.step(row.astype(np.float32))
        correct += int(np.argmax(logits) == label)
    accuracy = correct / len(images)
    print(f"streamed sparse80-int8 accuracy on {len(images)} test images: {accuracy:.3f}")
    return {"accuracy": accuracy, "reports": reports}


if __name__ == "__main__":
    main()
