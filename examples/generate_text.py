"""Train a character-level LSTM on Python's own documentation and generate text one character
per ``step``, with temperature. Run: ``python examples/generate_text.py``.
"""

import argparse
import tempfile
from pathlib import Path

import edgernn.runtime as rt
from edgernn.train import TrainConfig, train_bundle


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp()) / "chars"

    summary = train_bundle("chars", out, TrainConfig(epochs=args.epochs, seed=0), cell="lstm",
                           layers=1, hidden=args.hidden, force=True, progress=False)
    print(f"validation loss {summary['best_val']:.3f} nats/char "
          f"after {summary['epochs_run']} epochs")

    model = rt.load(out, backend="numpy")
    prompt = "The "
    text = rt.generate(model, list(prompt), args.length, temperature=args.temperature, seed=0)
    sample = prompt + "".join(text)
    print(sample)
    return sample


if __name__ == "__main__":
    main()
