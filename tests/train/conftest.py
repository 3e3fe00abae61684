import dataclasses

import pytest
import torch

from edgernn.data import Split, load_dataset


def head(split: Split, n: int) -> Split:
    return Split(split.X[:n], split.y[:n], None if split.lengths is None else split.lengths[:n])


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one thread (and do not stall when the cores are busy)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
