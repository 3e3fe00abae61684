"""``co2``: Mauna Loa weekly atmospheric CO2 (1958-2001), one-week-ahead forecasting."""

from __future__ import annotations

from edgernn.data.csvfile import load_csv
from edgernn.data.files import CO2_CSV
from edgernn.data.types import Dataset

SOURCE = {
    "dataset": "co2",
    "title": "Mauna Loa weekly atmospheric CO2 (ppmv), March 1958 - December 2001",
    "origin": "statsmodels.datasets.co2 (Keeling & Whorf, SIO / CDIAC, NOAA)",
    "licence": "public domain",
    "kind": "real time series",
}


def load_co2(seed: int = 0, window: int = 52) -> Dataset:
    """Weekly changes in ppm -> next week's change (the level forecast is last level + change).

    Differencing removes the trend that the test years would otherwise extrapolate beyond the
    training range; the RMSE of a change equals the RMSE of the resulting level forecast, so the
    naive baseline ("no change", i.e. repeat the last level) is directly comparable. ``seed`` is
    accepted for a uniform signature; the split is by time.
    """
    data = load_csv(CO2_CSV, "co2", window=window, horizon=1, difference=True)
    data.name = "co2"
    data.source = {**data.source, **SOURCE, "target": "next week's change in ppm",
                   "file": CO2_CSV.name}
    return data
