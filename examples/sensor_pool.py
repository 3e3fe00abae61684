"""An embedded-app loop: many simulated sensors, one StreamPool, one batched step per tick.

Each device streams a noisy sine; sensors join and leave while the loop runs, and the per-tick
latency is printed. Run: ``python examples/sensor_pool.py``.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import edgernn.runtime as rt
from edgernn.train import TrainConfig, train_bundle


class Sensor:
    """A device sending one reading per tick: a sine of its own frequency plus noise."""

    def __init__(self, rng: np.random.Generator):
        self.freq, self.phase, self.t = rng.uniform(0.05, 0.2), rng.uniform(0, 6.28), 0
        self.rng = rng

    def read(self) -> np.ndarray:
        self.t += 1
        value = np.sin(self.freq * self.t + self.phase) + 0.05 * self.rng.normal()
        return np.array([value], np.float32)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=64)
    parser.add_argument("--ticks", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp()) / "sine"
    train_bundle("sine", out, TrainConfig(epochs=args.epochs, seed=0), cell="gru", layers=1,
                 hidden=32, force=True, progress=False)

    rng = np.random.default_rng(0)
    model = rt.load(out, backend="numpy")
    pool = rt.StreamPool(model, capacity=args.devices)
    sensors = {pool.open(): Sensor(rng) for _ in range(args.devices // 2)}
    latencies = []
    for tick in range(args.ticks):
        if tick == args.ticks // 3:  # the other half of the fleet comes online
            sensors.update({pool.open(): Sensor(rng) for _ in range(args.devices - len(sensors))})
        if tick == 2 * args.ticks // 3:  # a quarter goes offline; their slots are freed
            for sid in list(sensors)[: args.devices // 4]:
                pool.close(sid)
                del sensors[sid]
        readings = {sid: sensor.read() for sid, sensor in sensors.items()}
        start = time.perf_counter()
        forecasts = pool.step(readings)
        latencies.append(time.perf_counter() - start)
        if tick % max(1, args.ticks // 5) == 0:
            print(f"tick {tick:4d}: {len(forecasts):3d} devices stepped in "
                  f"{latencies[-1] * 1e6:7.1f} us")
    lat = np.array(latencies) * 1e6
    report = {"p50_us": float(np.percentile(lat, 50)), "p99_us": float(np.percentile(lat, 99)),
              "devices_at_end": len(sensors)}
    print(f"per tick: p50 {report['p50_us']:.1f} us, p99 {report['p99_us']:.1f} us; "
          f"{report['devices_at_end']} devices online at the end")
    return report


if __name__ == "__main__":
    main()
