"""``load`` a bundle and step it: :class:`StreamingModel`, one model serving many states.

``model.step(x)`` advances the model's own default state; ``model.step(x, state=s)`` advances any
:class:`State` made by ``model.new_state()``; ``model.step_batch(xs, state)`` advances a batch of
streams in one call. Preprocessing recorded in the bundle (input scaler, target scaler,
vocabulary) is applied unless ``preprocess=False``.

Thread safety: steps of one model never overlap (backends reuse buffers). A step that would
overlap another thread's raises :class:`StreamError` rather than blocking or corrupting state;
a compiled fast-path step runs whole under the GIL, so two of those simply run one after the
other. Use one model per thread for parallel work, or a
:class:`~edgernn.runtime.pool.StreamPool` fed from one thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .backends import create
from .backends.base import ModelSpec
from .bundle import Bundle, read_bundle
from .errors import InputError, NotStreamableError, StreamError
from .state import State


class StreamingModel:
    """A bundle variant ready to step; see the module docstring."""

    def __init__(self, bundle: Bundle, variant: str, backend, preprocess: bool = True):
        self.bundle = bundle
        self.variant = variant
        self.backend = backend
        self.config = backend.config
        pre = bundle.preprocessing if preprocess else {}
        self._mean = _vector(pre, "input_mean", np.float32)
        std = _vector(pre, "input_std", np.float32)
        self._inv_std = None if std is None else 1.0 / std
        self._scale_y = self.config.task == "regression"
        self._y_mean = _vector(pre, "target_mean", np.float32) if self._scale_y else None
        self._y_std = _vector(pre, "target_std", np.float32) if self._scale_y else None
        self.vocabulary = list(pre.get("vocabulary") or []) or None
        self._ids = {tok: i for i, tok in enumerate(self.vocabulary or [])}
        self._state = self.new_state()
        self._lock = threading.Lock()  # held by a checked-path step (see _enter)
        self._closed = False
        # compiled fast paths where the backend has them: one stepper per default-state buffer
        # set (stepping it in place), and one for StreamPool; they stand aside while the lock
        # is held, and run atomically (GIL held) otherwise
        self._bound = self._pool_stepper = None
        affine = self._affine()
        if affine is not None:
            bound = tuple(backend.stepper(s, self._lock, affine) for s in self._state._sets)
            if None not in bound:
                self._bound = bound
                self._pool_stepper = backend.stepper(None, self._lock, affine)

    def _affine(self) -> tuple | None:
        """The preprocessing as float32 vectors (input shift, input scale, output scale, output
        shift), each None when absent; None when a vector does not fit the model's sizes."""
        sizes = (self.config.input_size,) * 2 + (self.config.output_size,) * 2
        vectors = (self._mean, self._inv_std, self._y_std, self._y_mean)
        try:
            return tuple(None if v is None else np.ascontiguousarray(
                np.broadcast_to(v, (n,)), np.float32) for v, n in zip(vectors, sizes))
        except ValueError:
            return None

    # ---- states ----
    def new_state(self, batch: int = 1) -> State:
        """A zero state for ``batch`` streams, independent of every other state."""
        c = self.config
        return State(c.state_names, batch, c.num_layers, c.hidden_size)

    @property
    def state(self) -> State:
        """A snapshot of the default state (a copy: later steps do not change it)."""
        return self._state.copy()

    @state.setter
    def state(self, value: State | dict) -> None:
        self._state.load(value.tensors if isinstance(value, State) else value)

    def reset(self) -> None:
        """Zero the default state (the only way it is ever reset)."""
        self._state.reset()

    # ---- stepping ----
    def step(self, x, state: State | None = None) -> np.ndarray:
        """One sample in, one output vector (O,) out; advances ``state`` (default: the model's)."""
        # The common case, kept flat (every Python operation shows at ~4 µs a step): the default
        # state and a compiled stepper, which steps the current buffer set in place and returns
        # None for anything but a float32 sample of the right shape, or while the lock is held.
        # Those, and a closed model (binding dropped), take the checked path below, which
        # converts, or refuses with a clear error.
        bound = self._bound
        if state is None and bound is not None:
            y = bound[self._state._cur](x)
            if y is not None:
                return y
        if state is None:
            state = self._state
        xs = self._one(x)
        if state.batch != 1:
            raise InputError(f"step() takes a state of batch 1, this one has {state.batch}; "
                             "use step_batch()")
        return self._output(self._raw(xs, state)[0])

    def step_batch(self, xs, state: State) -> np.ndarray:
        """One sample per stream, (batch, F) or (batch,) token ids -> (batch, O)."""
        xs = self._many(xs)
        if xs.shape[0] != state.batch:
            raise InputError(f"{xs.shape[0]} samples for a state of {state.batch} streams")
        return self._output(self._raw(xs, state))

    def run(self, chunk, state: State | None = None) -> np.ndarray:
        """Step every sample of ``chunk`` (T, F) or (T,) in order -> (T, O); same as stepping."""
        chunk = np.asarray(chunk) if not isinstance(chunk, np.ndarray) else chunk
        if chunk.ndim != len(self.backend.input_shape) + 1:
            raise InputError(f"run() takes a chunk of shape (T, *{self.backend.input_shape}), "
                             f"got {chunk.shape}")
        out = np.empty((chunk.shape[0], self.config.output_size), np.float32)
        for t in range(chunk.shape[0]):
            out[t] = self.step(chunk[t], state)
        return out

    def stream(self, samples: Iterable, state: State | None = None) -> Iterator[np.ndarray]:
        """Yield one output per sample of ``samples``, stepping lazily."""
        for x in samples:
            yield self.step(x, state)

    def _step_pool(self, samples: dict, slot: dict, tensors: dict) -> dict | None:
        """StreamPool's fast path: step rows ``slot[id]`` of ``tensors`` in place by ``samples``
        -> ``{id: y}``; None where there is none, or the samples need the checked path."""
        stepper = self._pool_stepper
        return None if stepper is None else stepper.pool(samples, slot, tensors["h"],
                                                         tensors.get("c"))

    def _step_pool_arrays(self, ids: list, xs, slot: dict, tensors: dict):
        """The array form of :meth:`_step_pool`: -> ys (n, O), or None."""
        stepper = self._pool_stepper
        return None if stepper is None else stepper.arrays(ids, xs, slot, tensors["h"],
                                                           tensors.get("c"))

    def _enter(self) -> None:
        """Take the model for one step: refused (not blocked) when closed or in use."""
        if self._closed:
            raise StreamError("this model is closed; load the bundle again")
        if not self._lock.acquire(False):
            raise StreamError("this model is being stepped from another thread; use one model "
                              "per thread (load() again) or feed a StreamPool from one thread")

    def _raw(self, xs: np.ndarray, state: State) -> np.ndarray:
        """Step the backend and swap the state's buffers; y is the backend's buffer."""
        self._enter()
        try:
            y = self.backend.step(xs, state.tensors, state.spare)
            state.swap()
        finally:
            self._lock.release()
        return y

    def _output(self, y: np.ndarray) -> np.ndarray:
        """A fresh array of outputs, mapped back to target units for regression."""
        if self._y_std is not None:
            y = y * self._y_std
            return y + self._y_mean if self._y_mean is not None else y
        return y + self._y_mean if self._y_mean is not None else y.copy()

    # ---- input conversion (no broadcasting) ----
    def _one(self, x) -> np.ndarray:
        if self.config.token_input:
            return self._many(np.asarray([self.token_id(x)]))
        x = x if isinstance(x, np.ndarray) else np.asarray(x)
        if x.shape != self.backend.input_shape:
            raise InputError(f"x must have shape {self.backend.input_shape}, got {x.shape}")
        return self._many(x[None])

    def _many(self, xs) -> np.ndarray:
        xs = xs if isinstance(xs, np.ndarray) else np.asarray(xs)
        if self.config.token_input:
            if xs.dtype.kind not in "iu":
                raise InputError(f"token ids must be integers, got {xs.dtype}")
            return xs.astype(np.int64, copy=False)
        if xs.dtype.kind != "f":
            raise InputError(f"x must be float32 (or float64), got {xs.dtype}")
        if xs.dtype != np.float32:
            xs = xs.astype(np.float32)
        if self._mean is not None:
            xs = xs - self._mean
        if self._inv_std is not None:
            xs = xs * self._inv_std
        return xs

    def token_id(self, token) -> int:
        """The id of ``token`` (a vocabulary string or an int id)."""
        if isinstance(token, str):
            if token not in self._ids:
                raise InputError(f"token {token!r} is not in the vocabulary")
            return self._ids[token]
        if isinstance(token, (bool, np.bool_)) or not isinstance(token, (int, np.integer)) and not (
                isinstance(token, np.ndarray) and token.shape == () and token.dtype.kind in "iu"):
            raise InputError(f"a token model steps token ids (int) or strings, got {token!r}")
        return int(token)

    def close(self) -> None:
        """Release the backend; later steps raise :class:`StreamError`."""
        if not self._closed:
            self._closed = True
            self._bound = self._pool_stepper = None  # no fast paths; _enter() raises
            self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        c = self.config
        return (f"StreamingModel({c.cell} {c.num_layers}x{c.hidden_size}, variant={self.variant!r},"
                f" backend={self.backend.describe()!r})")


def _vector(pre: dict, key: str, dtype) -> np.ndarray | None:
    return None if pre.get(key) is None else np.asarray(pre[key], dtype)


def load(bundle: str | os.PathLike | Bundle, backend: str = "auto", variant: str | None = None,
         threads: int = 1, preprocess: bool = True, nan_policy: str = "raise",
         **options) -> StreamingModel:
    """Load a bundle (directory, .zip, or :class:`Bundle`) for streaming.

    ``backend``: ``auto`` (fastest usable), ``numpy``, ``onnxruntime``, ``tensorrt`` or ``torch``;
    ``options`` go to that backend (e.g. ``kernel="numpy"``, ``device="cuda"``). ``variant``
    defaults to ``int8`` when the bundle has it (the deployment format), else ``fp32``.
    """
    if not isinstance(bundle, Bundle):
        bundle = read_bundle(Path(bundle))
    if variant is None:
        variant = "int8" if "int8" in bundle.variants else "fp32"
    config = bundle.config_for(variant)
    if not config.streamable:
        raise NotStreamableError(
            f"{bundle.path}: a bidirectional {config.cell} needs the whole sequence and cannot be "
            "stepped one sample at a time; export it as a sequence graph instead")
    spec = ModelSpec(bundle, variant, config, bundle.tensors(variant))
    engine = create(backend, spec, nan_policy=nan_policy, threads=threads, **options)
    return StreamingModel(bundle, variant, engine, preprocess)
