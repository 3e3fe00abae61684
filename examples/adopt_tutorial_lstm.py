"""Adopt a model written the way tutorials write it (``LSTMNet``: nn.LSTM -> Dropout -> Linear
on the last step), export it to verified ONNX, and stream it with onnxruntime.

Run: ``python examples/adopt_tutorial_lstm.py``.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

import edgernn
import edgernn.runtime as rt
from edgernn.bundle_io import save_model_bundle
from edgernn.converters import export_bundle


class LSTMNet(nn.Module):
    """The user's own model, untouched by edgernn."""

    def __init__(self, input_size=1, hidden_size=32, num_layers=2, output_size=1, dropout=0.1):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        lstm_out, _ = self.lstm(x)
        return self.fc(self.dropout(lstm_out[:, -1, :]))


def sine_windows(n: int, window: int, rng: np.random.Generator):
    t = np.arange(n + window + 1) * 0.1
    series = np.sin(t) + 0.3 * np.sin(3.1 * t) + 0.02 * rng.normal(size=t.size)
    X = np.stack([series[i:i + window] for i in range(n)])[..., None].astype(np.float32)
    return torch.from_numpy(X), torch.from_numpy(series[window:window + n, None].astype(np.float32))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp()) / "adopted"

    # The tutorial way: a plain training loop on the user's side.
    torch.manual_seed(0)
    X, y = sine_windows(512, 30, np.random.default_rng(0))
    net = LSTMNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(args.epochs):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(net(X), y)
        loss.backward()
        optimizer.step()
    print(f"tutorial training loss {loss.item():.4f}")

    # edgernn from here on.
    model = edgernn.adopt(net.eval())
    save_model_bundle(model, out, force=True)
    report = export_bundle(out, formats="onnx", variants="fp32")
    for row in report["rows"]:
        print({k: row[k] for k in row if k in ("format", "variant", "graph", "max_abs", "drift")})

    stream = rt.load(out, backend="onnxruntime")
    window = X[-1, :, :].numpy()
    for sample in window:
        prediction = stream.step(sample)
    with torch.no_grad():
        expected = net(X[-1:]).numpy()[0]
    diff = float(np.abs(prediction - expected).max())
    print(f"streamed prediction {prediction[0]:.4f}, torch {expected[0]:.4f}, |diff| {diff:.2e}")
    return {"diff": diff, "report": report}


if __name__ == "__main__":
    main()
