"""``co2``: Mauna Loa weekly atmospheric CO2 (1958-2001), one-week-ahead forecasting."""

from __future__ import annotations

import numpy as np

from edgernn.data.csvfile import read_columns
from edgernn.data.files import CO2_CSV
from edgernn.data.types import Dataset
from edgernn.data.windows import forecast_dataset

SOURCE = {
    "dataset": "co2",
    "title": "Mauna Loa weekly atmospheric CO2 (ppmv), March 1958 - December 2001",
    "origin": "statsmodels.datasets.co2 (Keeling & Whorf, SIO / CDIAC, NOAA)",
    "licence": "public domain",
}


def load_co2(seed: int = 0, window: int = 52) -> Dataset:
    """Weekly changes in ppm -> next week's change (the level forecast is last level + change).

    Differencing removes the trend that the test years would otherwise extrapolate beyond the
    training range; the RMSE of a change equals the RMSE of the resulting level forecast, so the
    naive baseline ("no change", i.e. repeat the last level) is directly comparable. ``seed`` is
    accepted for a uniform signature; the split is by time.
    """
    level = read_columns(CO2_CSV, ["co2"])[:, 0]
    change = np.diff(level)
    return forecast_dataset(
        "co2", change[:, None], change, window=window, horizon=1, naive="zero",
        source={**SOURCE, "target": "next week's change in ppm", "file": CO2_CSV.name},
    )
