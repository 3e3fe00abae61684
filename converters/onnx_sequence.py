"""The sequence graph: a whole sequence in, outputs and final (batch-first) states out.

Exported with the TorchScript exporter (``dynamo=False``), which writes clean ``LSTM`` / ``GRU``
/ ``RNN`` nodes, with dynamic batch and time axes. Sequences start from zero state. With
``spec.lengths`` the graph takes ``lengths`` (batch,) int64 and treats steps past each length as
padding: ``y`` and the final states are those of the last valid step (``sequence_lens`` of the
ONNX RNN ops).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings

import onnx
import torch
from torch import nn

from edgernn.models import RecurrentModel

from .spec import BATCH, TIME, ExportSpec


class SequenceModule(nn.Module):
    """``x[, lengths] -> (y, state_c_out?, state_h_out)``, ``y`` after ``output_activation``."""

    def __init__(self, model: RecurrentModel):
        super().__init__()
        self.model = model

    def forward(self, x, lengths=None):
        m = self.model
        out, state = m.features(x, lengths)
        y = m.activate(m.head(m._last_step(out, lengths) if m.config.head == "last" else out))
        states = state if m.config.cell == "lstm" else (state,)
        named = dict(zip(("h", "c"), (s.transpose(0, 1) for s in states)))
        return (y, *(named[n] for n in sorted(named)))


def build_sequence_graph(spec: ExportSpec, model: RecurrentModel,
                         preprocessing: dict | None = None) -> onnx.ModelProto:
    c = spec.config
    x = torch.zeros((2, 5), dtype=torch.long) if c.token_input else torch.zeros(2, 5, c.input_size)
    args = (x, torch.tensor([5, 3])) if spec.lengths else (x,)
    inputs = [t.name for t in spec.sequence_inputs()]
    outputs = [t.name for t in spec.sequence_outputs()]
    axes = {"x": {0: BATCH, 1: TIME}, **{n: {0: BATCH} for n in [*inputs[1:], *outputs]}}
    if c.head == "every":
        axes["y"] = {0: BATCH, 1: TIME}
    buf = io.BytesIO()
    with warnings.catch_warnings(), quiet_native_stderr():
        warnings.simplefilter("ignore")  # the exporter warns about batch_first RNNs and sizes
        torch.onnx.export(
            SequenceModule(model).eval(), args, buf, dynamo=False, opset_version=spec.opset,
            input_names=inputs, output_names=outputs, dynamic_axes=axes,
        )
    proto = onnx.load_from_string(buf.getvalue())
    proto.ir_version = spec.ir_version
    proto.producer_name = "edgernn"
    onnx.helper.set_model_props(proto, spec.metadata(preprocessing))
    return proto


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence file descriptor 2: the exporter's C++ side prints shape-inference warnings about
    packed sequences there, bypassing Python's warnings. Errors still raise as exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
