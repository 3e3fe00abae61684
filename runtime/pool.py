"""StreamPool: many independent streams of one model, stepped together in one batched call."""

from __future__ import annotations

import numpy as np

from .errors import InputError, StreamError
from .stream import StreamingModel


class StreamPool:
    """Up to ``capacity`` streams over one :class:`StreamingModel`.

    ``open() -> id``; ``step({id: x, ...}) -> {id: y}`` advances exactly the streams given, in one
    backend call; ``reset(id)`` zeroes one stream; ``close(id)`` frees its slot for reuse. Ids are
    never reused, so a stale id raises :class:`StreamError` instead of reaching another stream.
    """

    def __init__(self, model: StreamingModel, capacity: int):
        if not isinstance(capacity, int) or capacity < 1:
            raise InputError(f"capacity must be a positive int, got {capacity!r}")
        self.model = model
        self.capacity = capacity
        self._states = model.new_state(capacity)
        self._slot: dict[int, int] = {}   # stream id -> row in the state
        self._free = list(range(capacity - 1, -1, -1))
        self._all_rows = list(range(capacity))
        self._next_id = 0
        self._scratch: dict[int, object] = {}

    def open(self) -> int:
        if not self._free:
            raise StreamError(f"the pool is full ({self.capacity} streams); close one first")
        row = self._free.pop()
        self._states.reset([row])
        sid = self._next_id
        self._next_id += 1
        self._slot[sid] = row
        return sid

    def close(self, sid: int) -> None:
        self._free.append(self._row(sid))
        del self._slot[sid]

    def reset(self, sid: int) -> None:
        self._states.reset([self._row(sid)])

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, sid) -> bool:
        return sid in self._slot

    def _row(self, sid: int) -> int:
        if sid not in self._slot:
            state = "closed" if isinstance(sid, int) and 0 <= sid < self._next_id else "unknown"
            raise StreamError(f"stream {sid!r} is {state}; open() a stream first")
        return self._slot[sid]

    def state(self, sid: int) -> dict[str, np.ndarray]:
        """A copy of one stream's tensors, each (1, layers, hidden)."""
        row = self._row(sid)
        return {n: t[row:row + 1].copy() for n, t in self._states.tensors.items()}

    def set_state(self, sid: int, tensors: dict[str, np.ndarray]) -> None:
        row = self._row(sid)
        one = self.model.new_state()
        one.load(tensors)
        for n, t in self._states.tensors.items():
            t[row] = one.tensors[n][0]

    def step(self, samples: dict) -> dict:
        """Advance every stream in ``samples`` by its sample; returns ``{id: y}``."""
        if not samples:
            return {}
        ys = self.model._step_pool(samples, self._slot, self._states.tensors)
        if ys is not None:
            return ys
        sids = list(samples)
        ys = self._advance(sids, self._inputs(list(samples.values())), unique=True)
        return dict(zip(sids, ys))

    def step_arrays(self, ids, xs) -> np.ndarray:
        """The array form of :meth:`step`: ``xs[k]`` is the sample of stream ``ids[k]``;
        returns ``ys`` (n, O) in the same order. No per-stream Python objects are made."""
        ids = list(ids)
        ys = self.model._step_pool_arrays(ids, xs, self._slot, self._states.tensors)
        if ys is not None:
            return ys
        xs = self.model._many(xs)
        if xs.shape != (len(ids), *self.model.backend.input_shape):
            raise InputError(f"xs must have shape {(len(ids), *self.model.backend.input_shape)}, "
                             f"got {xs.shape}")
        return self._advance(ids, xs, unique=False) if ids else xs[:0]

    def _advance(self, sids: list, xs: np.ndarray, unique: bool) -> np.ndarray:
        """Step the streams ``sids`` (``unique``: known to hold no id twice, as dict keys)."""
        try:
            rows = [self._slot[s] for s in sids]
        except (KeyError, TypeError):
            rows = [self._row(s) for s in sids]  # raises, naming the id
        if not unique and len(set(rows)) != len(rows):
            raise InputError("a stream id appears twice in one step")
        model = self.model
        if rows == self._all_rows:  # every slot, in order: step the pool's state in place
            return model._output(model._raw(xs, self._states))
        rows = np.array(rows, np.intp)
        part = self._scratch.get(len(rows))
        if part is None:
            part = self._scratch[len(rows)] = model.new_state(len(rows))
        part.load({n: t[rows] for n, t in self._states.tensors.items()})
        ys = model._output(model._raw(xs, part))
        for n, t in self._states.tensors.items():
            t[rows] = part.tensors[n]
        return ys

    def _inputs(self, values: list) -> np.ndarray:
        """One (batch, F) array of the samples, each checked against the model's input shape."""
        model = self.model
        if model.config.token_input:
            return model._many(np.array([model.token_id(v) for v in values], np.int64))
        try:
            xs = np.array(values)  # ragged samples raise instead of broadcasting
        except ValueError as exc:
            raise InputError(f"samples of different shapes: {exc}") from exc
        if xs.shape[1:] != model.backend.input_shape:
            raise InputError(f"each sample must have shape {model.backend.input_shape}, got "
                             f"{xs.shape[1:]}")
        return model._many(xs)
