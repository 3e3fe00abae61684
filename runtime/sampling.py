"""Sampling the next token from language-model logits, so generation runs through ``step``."""

from __future__ import annotations

import numpy as np

from .errors import InputError


def sample(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
           rng: np.random.Generator | None = None) -> int:
    """One token id from ``logits`` (V,): greedy when ``temperature == 0``, else softmax sampling
    of ``logits / temperature`` restricted to the ``top_k`` largest when given."""
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 1 or not logits.size:
        raise InputError(f"logits must be a non-empty vector, got shape {logits.shape}")
    if temperature < 0:
        raise InputError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and not 1 <= top_k:
        raise InputError(f"top_k must be >= 1, got {top_k}")
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits / temperature
    if top_k is not None and top_k < z.size:
        cutoff = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cutoff, z, -np.inf)
    p = np.exp(z - z.max())
    p /= p.sum()
    rng = rng if rng is not None else np.random.default_rng()
    return int(rng.choice(z.size, p=p))


def generate(model, prompt, length: int, temperature: float = 1.0, top_k: int | None = None,
             seed: int | None = None) -> list:
    """Feed ``prompt`` (token ids or vocabulary strings) through ``model.step`` on a fresh state,
    then sample ``length`` tokens, each fed back. Returns the new tokens (strings if the bundle
    has a vocabulary, else ids). The model's own default state is left untouched."""
    if not model.config.token_input:
        raise InputError("generate() needs a token model (vocab_size set)")
    if not len(prompt):
        raise InputError("generate() needs a prompt of at least one token")
    rng = np.random.default_rng(seed)
    state = model.new_state()
    for token in prompt:
        logits = model.step(token, state)
    out = []
    for _ in range(length):
        token = sample(logits, temperature, top_k, rng)
        out.append(model.vocabulary[token] if model.vocabulary else token)
        logits = model.step(token, state)
    return out
