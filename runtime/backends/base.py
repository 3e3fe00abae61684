"""The backend interface: one small base that validates inputs, each engine in its own module.

A backend is built from a :class:`ModelSpec` and advances a batch of streams by one step:
``step(x, state_in, state_out) -> y``. The base checks names, shapes and dtypes (no broadcasting)
and the NaN/Inf policy; subclasses implement only ``_step`` (and ``_close`` if they hold
resources). The returned ``y`` is a backend-owned buffer, valid until the next call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bundle import Bundle
from ..config import ModelConfig
from ..errors import ConfigError, InputError

NAN_POLICIES = ("raise", "propagate")


@dataclass
class ModelSpec:
    """What a backend needs: the bundle, the variant, its config and raw (encoded) tensors."""

    bundle: Bundle
    variant: str
    config: ModelConfig
    tensors: dict[str, np.ndarray]


class Backend:
    """Base of every runtime backend."""

    name = "base"
    checks_finite = False  # True when _step itself reports non-finite inputs (see _nonfinite)

    def __init__(self, spec: ModelSpec, nan_policy: str = "raise", threads: int = 1):
        if nan_policy not in NAN_POLICIES:
            raise ConfigError(f"nan_policy={nan_policy!r}; choose one of {NAN_POLICIES}")
        if not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads must be a positive int, got {threads!r}")
        self.spec = spec
        self.config = spec.config
        self.nan_policy = nan_policy
        self.threads = threads
        c = spec.config
        self.state_names = c.state_names
        self.state_shape = (c.num_layers, c.hidden_size)
        self.token_input = c.token_input
        self.input_shape = () if c.token_input else (c.input_size,)
        self.input_dtype = np.dtype(np.int64 if c.token_input else np.float32)
        self.output_size = c.output_size
        self._checked: dict = {}  # state dict pairs already validated

    def step(self, x: np.ndarray, state_in: dict, state_out: dict) -> np.ndarray:
        """Advance ``batch`` streams: x (batch, F) float32 or (batch,) int64 -> y (batch, O)."""
        self.check_input(x)
        batch = x.shape[0]
        key = (id(state_in), id(state_out), batch)
        if key not in self._checked:
            self.check_states(batch, state_in, state_out)
            if len(self._checked) >= 64:
                self._checked.clear()
            self._checked[key] = (state_in, state_out)  # held, so the ids stay unique
        if self.nan_policy == "raise" and not self.checks_finite and not self.token_input:
            if not np.isfinite(x).all():
                raise InputError(self._nan_message())
        return self._step(x, state_in, state_out)

    def check_states(self, batch: int, state_in: dict, state_out: dict) -> None:
        for where, states in (("state_in", state_in), ("state_out", state_out)):
            if set(states) != set(self.state_names):
                raise InputError(f"{where} has tensors {sorted(states)}, expected "
                                 f"{sorted(self.state_names)}")
            for name, t in states.items():
                if t.shape != (batch, *self.state_shape) or t.dtype != np.float32 \
                        or not t.flags.c_contiguous:
                    raise InputError(
                        f"{where}[{name!r}] is {t.dtype} {t.shape}, expected C-contiguous "
                        f"float32 {(batch, *self.state_shape)}")

    def check_input(self, x: np.ndarray) -> None:
        want = self.input_dtype
        if type(x) is not np.ndarray or x.dtype != want or x.shape[1:] != self.input_shape:
            got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise InputError(f"x must be {want} of shape (batch, *{self.input_shape}), "
                             f"got {got}")
        if self.token_input and x.size and (x.min() < 0 or x.max() >= self.config.vocab_size):
            raise InputError(f"token ids must be in [0, {self.config.vocab_size}), got {x}")

    def stepper(self, state: dict | None, lock, affine: tuple):
        """Optionally, a compiled fast path: ``f(x) -> y`` steps one float32 sample (or int token
        id) through ``state`` (batch 1, validated here) in place, atomically, and returns None
        for any other input or while ``lock`` (the caller's ``threading.Lock``) is held;
        ``f.pool(samples, slot, h, c)`` and ``f.arrays(ids, xs, slot, h, c)`` step a StreamPool.
        ``affine``: the preprocessing (input shift, input scale, output scale, output shift),
        float32 vectors or None. None when the backend has no such path."""
        return None

    def _nan_message(self) -> str:
        return ("input holds NaN or Inf (nan_policy='raise'); clean the input or load with "
                "nan_policy='propagate'")

    def _step(self, x, state_in, state_out) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release engine resources; the backend is unusable afterwards."""

    def describe(self) -> str:
        return self.name
