"""ExportSpec: the one description of a model's graphs (names, axes, state layout, tolerances).

It drives the ONNX step and sequence graphs, the TensorRT optimization profile, the Triton
config and the streaming contract stored in the ONNX ``metadata_props``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import onnx.helper

from edgernn.runtime.bundle import streaming_contract
from edgernn.runtime.config import ModelConfig

BATCH = "batch"
TIME = "time"
METADATA_KEY = "edgernn.streaming"
OPSET = 17


@dataclass(frozen=True)
class Tolerance:
    """Largest accepted |onnxruntime - torch|: one step (``max_abs``), over a stream (``drift``)."""

    max_abs: float
    drift: float


# fp16 weights are cast to fp32 in the graph, so fp16 is checked as tightly as fp32. onnxruntime
# fuses the int8 DequantizeLinear -> MatMul into an 8-bit kernel that also quantizes activations
# (~1e-3 per step against the torch model holding the same int8 weights; over 1,000 steps of
# random input a trained model's logits drift by up to ~7 % of their scale). Gate-order or scale
# bugs give errors of the order of the outputs themselves, far above these bounds.
TOLERANCES = {
    "fp32": Tolerance(1e-4, 1e-4),
    "fp16": Tolerance(1e-4, 2e-4),
    "int8": Tolerance(5e-2, 1e-1),
    "mixed": Tolerance(5e-2, 1e-1),
}


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output; ``shape`` excludes the leading batch axis."""

    name: str
    dtype: str  # "float32" | "int64"
    shape: tuple[int, ...]

    def dims(self, *leading: str) -> list:
        return [*leading, *self.shape]


@dataclass(frozen=True)
class ExportSpec:
    config: ModelConfig
    variant: str = "fp32"
    precision: str = "fp32"
    opset: int = OPSET
    lengths: bool = False  # the sequence graph takes per-sequence valid lengths

    @property
    def ir_version(self) -> int:
        return onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", self.opset)])

    @property
    def tolerance(self) -> Tolerance:
        return TOLERANCES[self.precision]

    @property
    def x(self) -> TensorSpec:
        c = self.config
        if c.token_input:
            return TensorSpec("x", "int64", ())
        return TensorSpec("x", "float32", (c.input_size,))

    @property
    def y(self) -> TensorSpec:
        return TensorSpec("y", "float32", (self.config.output_size,))

    def states(self, suffix: str, layers: int | None = None) -> list[TensorSpec]:
        """``state_{h,c}_{suffix}`` of per-stream shape (layers, hidden), sorted by name."""
        c = self.config
        shape = (layers or c.num_layers, c.hidden_size)
        return [TensorSpec(f"state_{n}_{suffix}", "float32", shape) for n in sorted(c.state_names)]

    def step_inputs(self) -> list[TensorSpec]:
        return [self.x, *self.states("in")]

    def step_outputs(self) -> list[TensorSpec]:
        return [self.y, *self.states("out")]

    def sequence_inputs(self) -> list[TensorSpec]:
        c = self.config
        x = TensorSpec("x", "int64", (-1,)) if c.token_input else TensorSpec(
            "x", "float32", (-1, c.input_size))
        return [x, *([TensorSpec("lengths", "int64", ())] if self.lengths else [])]

    def sequence_outputs(self) -> list[TensorSpec]:
        c = self.config
        y = self.y if c.head == "last" else TensorSpec("y", "float32", (-1, c.output_size))
        return [y, *self.states("out", c.num_layers * c.directions)]

    def profile_shapes(self, max_streams: int, opt_streams: int | None = None) -> dict:
        """TensorRT optimization profile: {input: (min, opt, max)} over the stream-batch axis."""
        opt = opt_streams or max(1, max_streams // 2)
        return {t.name: tuple((b, *t.shape) for b in (1, opt, max_streams))
                for t in self.step_inputs()}

    def contract(self, preprocessing: dict | None = None) -> dict:
        """The streaming contract: the manifest's, plus graph I/O names and preprocessing."""
        return {
            **streaming_contract(self.config),
            "variant": self.variant,
            "precision": self.precision,
            "graph_inputs": [t.name for t in self.step_inputs()],
            "graph_outputs": [t.name for t in self.step_outputs()],
            "state_pairs": {f"state_{n}_in": f"state_{n}_out" for n in self.config.state_names},
            "batch_axis": 0,
            "output_activation": self.config.output_activation,
            "preprocessing": "applied by the runtime, not in the graph",
            "preprocessing_stats": preprocessing or {},
        }

    def metadata(self, preprocessing: dict | None = None) -> dict[str, str]:
        return {METADATA_KEY: json.dumps(self.contract(preprocessing), sort_keys=True)}
