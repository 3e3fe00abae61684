import dataclasses

import pytest

from edgernn.data import Split, load_dataset
from edgernn.models import torch_threads


def head(split: Split, n: int) -> Split:
    return Split(split.X[:n], split.y[:n], None if split.lengths is None else split.lengths[:n])


@pytest.fixture(autouse=True)
def one_thread():  # tiny models train fastest on one thread, and do not stall on busy cores
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def tiny_sine():
    return load_dataset("sine", n=240, window=16)


@pytest.fixture(scope="session")
def tiny_digits():
    d = load_dataset("digits")
    return dataclasses.replace(d, train=head(d.train, 256), val=head(d.val, 96),
                               test=head(d.test, 96))


@pytest.fixture(scope="session")
def tiny_chars():
    return load_dataset("chars", size=6_000, seq_len=48)
