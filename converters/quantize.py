"""Weight MatMuls in the precision the bundle stores them: the int8 path of the step graph.

int8 (and sparse int8) matrices become int8 initializers with their per-row scales from the
bundle (``decode_int8``, never re-quantized) and a weight-only ``DequantizeLinear`` (per-channel,
``axis=1``, zero point 0) feeding ``MatMul``: legal for onnxruntime and for TensorRT >= 10
(weight-only quantization). fp16 matrices are fp16 initializers cast to fp32.
``ort_only_int8`` offers onnxruntime's own int8 LSTM for the sequence graph, labelled ort-only.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from edgernn.runtime import weights as W

from .graph import GraphBuilder


def matmul_weight(g: GraphBuilder, x: str, entries: dict[str, np.ndarray], name: str) -> str:
    """``x @ name.T`` with the weight stored as the bundle encodes it."""
    tag = name.replace(".", "_")
    kind = W.encoding_of(entries, name)
    if kind.endswith("int8"):
        q, scale = W.decode_int8(entries, name)
        w = g.op(
            "DequantizeLinear",
            [g.const(f"{tag}_q", np.ascontiguousarray(q.T)), g.const(f"{tag}_scale", scale),
             g.const(f"{tag}_zero", np.zeros_like(scale, dtype=np.int8))],
            f"{tag}_dq", axis=1,
        )
    elif kind.endswith("fp16"):
        half = np.ascontiguousarray(W.decode(entries, name).T.astype(np.float16))
        w = g.op("Cast", [g.const(f"{tag}_fp16", half)], f"{tag}_cast", to=TensorProto.FLOAT)
    else:
        w = g.const(f"{tag}_t", np.ascontiguousarray(W.decode(entries, name).T))
    return g.op("MatMul", [x, w], f"{tag}_matmul")


def ort_only_int8(sequence: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime's dynamic int8 version of an LSTM sequence graph (``DynamicQuantizeLSTM``).

    Labelled ort-only: the ``com.microsoft`` op runs on onnxruntime's CPU provider only and
    TensorRT rejects it. onnxruntime re-derives per-channel int8 weights from the graph's
    (already int8-valued) weights; the result is verified like every other graph.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as scratch:
        src, dst = Path(scratch) / "fp32.onnx", Path(scratch) / "int8.onnx"
        onnx.save(sequence, src)
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # its advice to pre-process does not apply here
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.disable(previous)
        return onnx.load(dst)
