"""``chars``: a character-level language model corpus: the Python documentation's prose.

The text is read at run time from ``pydoc_data.topics``, which ships with every CPython.
"""

from __future__ import annotations

import hashlib
import platform

import numpy as np

from edgernn.data.types import Dataset, Split

VOCABULARY = ["\n"] + [chr(c) for c in range(32, 127)]  # newline + printable ASCII
UNKNOWN = "?"
BLOCK = (40, 5, 5)  # per block of 50 consecutive sequences: train, val, test


def corpus_text(size: int = 200_000) -> str:
    """The first ``size`` characters of the topics in sorted order, mapped onto VOCABULARY."""
    from pydoc_data.topics import topics

    text = "\n".join(topics[k] for k in sorted(topics)).replace("\t", "    ")
    known = set(VOCABULARY)
    return "".join(ch if ch in known else UNKNOWN for ch in text[:size])


def load_chars(seed: int = 0, size: int = 200_000, seq_len: int = 128) -> Dataset:
    """Contiguous sequences of ``seq_len`` characters -> the next character at every step.

    Split by position in blocks of 50 sequences (40 train, 5 val, 5 test), so every part samples
    the whole corpus while each sequence stays whole; ``seed`` is accepted for a uniform
    signature.
    """
    text = corpus_text(size)
    index = {ch: i for i, ch in enumerate(VOCABULARY)}
    ids = np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))
    n_seq = (len(ids) - 1) // seq_len
    X = ids[:n_seq * seq_len].reshape(n_seq, seq_len)
    Y = ids[1:n_seq * seq_len + 1].reshape(n_seq, seq_len)
    part = np.searchsorted(np.cumsum(BLOCK), np.arange(n_seq) % sum(BLOCK), side="right")
    split = [Split(X[part == k], Y[part == k]) for k in range(3)]
    return Dataset(
        name="chars", task="language_model", head="every", train=split[0], val=split[1],
        test=split[2], input_size=0, output_size=len(VOCABULARY), metric="loss",
        vocab_size=len(VOCABULARY), preprocessing={"vocabulary": VOCABULARY},
        source={"dataset": "chars", "title": "Python documentation topics (pydoc_data.topics)",
                "origin": f"CPython {platform.python_version()} standard library",
                "licence": "PSF License (Python documentation)", "characters": len(text),
                "split": "blocks of 50 sequences: 40/5/5",
                "sha256": hashlib.sha256(text.encode()).hexdigest(), "seq_len": seq_len},
    )
