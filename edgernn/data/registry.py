"""The built-in datasets by short name, and ``load_dataset``."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from edgernn.data.types import Dataset
from edgernn.runtime.errors import DataError


def _builders() -> dict[str, Callable[..., Dataset]]:
    from edgernn.data.chars import load_chars
    from edgernn.data.co2 import load_co2
    from edgernn.data.digits import load_digits
    from edgernn.data.sine import load_sine

    return {"sine": load_sine, "co2": load_co2, "chars": load_chars, "digits": load_digits}


DESCRIPTIONS = {
    "sine": "synthetic sine mixtures, next-value forecasting (regression, rmse)",
    "co2": "Mauna Loa weekly CO2 1958-2001, next-week forecasting (regression, rmse)",
    "chars": "Python documentation text, character-level language model (loss, bpc)",
    "digits": "UCI handwritten digits as 8 steps x 8 features, 10 classes (accuracy)",
}


def list_datasets() -> dict[str, str]:
    """Built-in dataset names and one-line descriptions."""
    return dict(DESCRIPTIONS)


def load_dataset(name: str, seed: int = 0, **options) -> Dataset:
    """A built-in dataset by name; ``options`` go to its loader (e.g. ``window=`` for co2)."""
    builders = _builders()
    if name not in builders:
        raise DataError(f"unknown dataset {name!r}; built-in datasets: {', '.join(builders)} "
                        "(or pass your own with --data FILE.npz / --csv FILE)")
    builder = builders[name]
    accepted = set(inspect.signature(builder).parameters) - {"seed"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise DataError(f"dataset {name!r} does not take {unknown}; it takes {sorted(accepted)}")
    return builder(seed=seed, **options)
