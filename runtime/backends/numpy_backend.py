"""numpy backend: the reference path, written with the ONNX-semantics cells of ``runtime.cells``.

Weights of every variant (fp32, fp16 storage, int8 per-channel or per-tensor, sparse) are decoded
to dense fp32 once at load (``runtime.weights``) and reordered to ONNX gate order
(``runtime.gates``). With ``kernel="auto"`` (default) or ``"c"``, steps run in the compiled fused
kernel of ``runtime.backends.kernel`` when it builds on this machine (int8 variants keep int8
weights there); ``kernel="numpy"`` forces the readable path.
"""

from __future__ import annotations

import numpy as np

from .. import cells, weights
from ..errors import BackendUnavailableError, ConfigError, InputError
from ..gates import onnx_layer_params
from .base import Backend, ModelSpec

KERNELS = ("auto", "c", "numpy")


class NumpyBackend(Backend):
    name = "numpy"

    def __init__(self, spec: ModelSpec, nan_policy: str = "raise", threads: int = 1,
                 kernel: str = "auto"):
        super().__init__(spec, nan_policy, threads)
        if threads != 1:
            raise ConfigError("the numpy backend runs on one thread (threads=1); for more cores "
                              "run one model per core, or use backend='onnxruntime'")
        if kernel not in KERNELS:
            raise ConfigError(f"kernel={kernel!r}; choose one of {KERNELS}")
        c = spec.config
        dense = weights.decode_all(spec.tensors)
        self.layers = [onnx_layer_params(dense, c.cell, k) for k in range(c.num_layers)]
        self.head_w, self.head_b = dense["head.weight"], dense["head.bias"]
        self.embedding = dense.get("embedding.weight")
        self.sigmoid_out = c.output_activation == "sigmoid"
        self.acts = {"lstm": (cells.sigmoid, np.tanh, np.tanh), "gru": (cells.sigmoid, np.tanh),
                     "rnn": (cells.relu if c.nonlinearity == "relu" else np.tanh,)}[c.cell]
        self.fused = None
        if kernel != "numpy":
            from . import kernel as native

            try:
                self.fused = native.FusedStep(spec)
            except BackendUnavailableError:
                if kernel == "c":
                    raise
        if self.fused is not None:
            self.checks_finite = True

    def describe(self) -> str:
        return f"numpy ({self.fused.describe()})" if self.fused else "numpy (reference)"

    def stepper(self, state, lock, affine):
        if self.fused is None:
            return None
        if state is not None:
            self.check_states(1, state, state)
        nan_error = (InputError, self._nan_message()) if self.nan_policy == "raise" else None
        return self.fused.stepper(state, lock, nan_error, affine)

    def _step(self, x, state_in, state_out):
        if self.fused is not None:
            return self.fused.step(x, state_in, state_out, self.nan_policy == "raise",
                                   self._nan_message)
        inp = self.embedding[x] if self.embedding is not None else x
        h_in, h_out = state_in["h"], state_out["h"]
        for k, (W, R, B) in enumerate(self.layers):
            if self.config.cell == "lstm":
                h, c = cells.lstm_cell(inp, h_in[:, k], state_in["c"][:, k], W, R, B,
                                       acts=self.acts)
                state_out["c"][:, k] = c
            elif self.config.cell == "gru":
                h = cells.gru_cell(inp, h_in[:, k], W, R, B, linear_before_reset=1, acts=self.acts)
            else:
                h = cells.rnn_cell(inp, h_in[:, k], W, R, B, acts=self.acts)
            h_out[:, k] = h
            inp = h
        y = inp @ self.head_w.T + self.head_b
        return cells.sigmoid(y) if self.sigmoid_out else y
