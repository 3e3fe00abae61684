"""Forecast next week's Mauna Loa CO2 change, streaming one weekly reading at a time.

The series is the weekly change in ppm (differencing removes the trend). The bundle carries the
input and target scalers fitted on the training years only, so the device feeds raw changes and
gets ppm back: the level forecast is the last level plus the forecast change.
Run: ``python examples/forecast_co2.py``.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

import edgernn.runtime as rt
from edgernn.data import load_dataset
from edgernn.train import TrainConfig, train_bundle


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None, help="bundle directory (default: temp)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp()) / "co2"

    summary = train_bundle("co2", out, TrainConfig(epochs=args.epochs, seed=0), cell="lstm",
                           layers=1, hidden=32, force=True, progress=False)
    print(f"trained in {summary['wall_time_s']} s, test rmse {summary['test']['rmse']:.3f} ppm")

    # The device side: raw readings in, ppm out, one reading per call.
    data = load_dataset("co2")
    pre = data.preprocessing
    series = data.test.X[:, :, 0] * pre["input_std"][0] + pre["input_mean"][0]  # raw ppm changes
    truth = data.test.y[:, 0] * pre["target_std"][0] + pre["target_mean"][0]
    model = rt.load(out, backend="numpy")
    errors = []
    for window, target in zip(series[:50], truth[:50]):
        model.reset()  # each test window is an independent sequence
        for reading in window:
            forecast = model.step(np.array([reading], np.float32))
        errors.append(float(forecast[0] - target))
    rmse = float(np.sqrt(np.mean(np.square(errors))))
    print(f"last window: forecast change {forecast[0]:+.2f} ppm, actual {truth[49]:+.2f} ppm")
    print(f"streamed rmse over 50 test windows: {rmse:.3f} ppm")
    return rmse


if __name__ == "__main__":
    main()
