"""Fixtures of the converter tests."""

from __future__ import annotations

import pytest
from converter_fixtures import add_int8_variant, tiny_model

from edgernn.bundle_io import save_model_bundle


@pytest.fixture
def make_bundle(tmp_path):
    """``make_bundle(int8=True, **config)`` -> path of a new bundle with fp32 (and int8)."""
    count = iter(range(1000))

    def make(int8: bool = False, seed: int = 0, **overrides):
        path = tmp_path / f"bundle{next(count)}"
        save_model_bundle(tiny_model(seed, **overrides), path)
        if int8:
            add_int8_variant(path)
        return path

    return make
