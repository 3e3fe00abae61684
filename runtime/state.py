"""Stream state: the carried tensors of one or more streams, kept apart from the model.

A :class:`State` holds ``h`` (and ``c`` for LSTM) of shape (batch, layers, hidden), float32,
batch-first like the step graph. It owns two buffer sets: a step reads the current set and the
backend writes the other, then they swap, so a failed step leaves the state untouched and no copy
is made. A state never resets itself; call :meth:`reset`.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError


class State:
    """Carried tensors of ``batch`` streams; picklable, copyable, comparable by value."""

    def __init__(self, names: tuple[str, ...], batch: int, layers: int, hidden: int):
        shape = (batch, layers, hidden)
        self._sets = [{n: np.zeros(shape, np.float32) for n in names} for _ in range(2)]
        self._cur = 0
        self.batch = batch

    @property
    def tensors(self) -> dict[str, np.ndarray]:
        """The current tensors (live views; use :meth:`copy` for a snapshot)."""
        return self._sets[self._cur]

    @property
    def spare(self) -> dict[str, np.ndarray]:
        return self._sets[1 - self._cur]

    def swap(self) -> None:
        self._cur = 1 - self._cur


    def reset(self, rows=None) -> None:
        """Zero every stream, or only ``rows`` (indices along the batch axis)."""
        for t in self.tensors.values():
            if rows is None:
                t.fill(0.0)
            else:
                t[rows] = 0.0

    def copy(self) -> State:
        new = State.__new__(State)
        new._sets = [{n: t.copy() for n, t in self.tensors.items()} for _ in range(2)]
        new._cur = 0
        new.batch = self.batch
        return new

    def load(self, tensors: dict[str, np.ndarray]) -> None:
        """Copy ``tensors`` (same names, shapes; finite float) into the current set."""
        current = self.tensors
        if set(tensors) != set(current):
            raise InputError(f"state needs tensors {sorted(current)}, got {sorted(tensors)}")
        for name, value in tensors.items():
            value = np.asarray(value)
            if value.shape != current[name].shape:
                raise InputError(
                    f"state tensor {name!r} has shape {value.shape}, expected "
                    f"{current[name].shape} (batch, layers, hidden)")
            if value.dtype.kind != "f":
                raise InputError(f"state tensor {name!r} must be float, got {value.dtype}")
            if not np.isfinite(value).all():
                raise InputError(f"state tensor {name!r} holds NaN or Inf")
        for name, value in tensors.items():
            np.copyto(current[name], value, casting="same_kind")

    def to_dict(self) -> dict[str, np.ndarray]:
        return {n: t.copy() for n, t in self.tensors.items()}

    def __getstate__(self):
        return self.to_dict()

    def __setstate__(self, tensors):
        self._sets = [{n: np.array(t, np.float32) for n, t in tensors.items()} for _ in range(2)]
        self._cur = 0
        self.batch = self._sets[0]["h"].shape[0]

    def __eq__(self, other) -> bool:
        return isinstance(other, State) and self.tensors.keys() == other.tensors.keys() and all(
            np.array_equal(t, other.tensors[n]) for n, t in self.tensors.items())

    def __repr__(self) -> str:
        shapes = {n: t.shape for n, t in self.tensors.items()}
        return f"State({shapes})"
