"""Static TensorRT compatibility check of an ONNX graph; runs everywhere, no TensorRT needed.

Every op, dtype and attribute is checked against what TensorRT's ONNX parser accepts for the
target's version; problems name the offending nodes.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, numpy_helper

from edgernn.runtime.errors import VerificationError

from .targets import Target, get_target

# ONNX ops TensorRT's parser implements (onnx-tensorrt operators.md, 8.2 onwards).
SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast
Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace
DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor GRU Gather
GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
HardSigmoid HardSwish Identity If InstanceNormalization IsInf IsNaN LeakyRelu Less LessOrEqual Log
LogSoftmax Loop LpNormalization LpPool LRN LSTM MatMul Max MaxPool Mean Min Mod Mul Neg
NonMaxSuppression NonZero Not OneHot Or Pad Pow PRelu QuantizeLinear RandomNormal
RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape
Resize ReverseSequence RNN RoiAlign Round Scan ScatterElements ScatterND Selu Shape Shrink Sigmoid
Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan
Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Where Xor
""".split())
SINCE = {"LayerNormalization": (8, 6), "GroupNormalization": (10, 0), "Gelu": (10, 0)}
DTYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT32, TensorProto.INT64,
          TensorProto.BOOL, TensorProto.INT8}
SINCE_DTYPES = {TensorProto.BFLOAT16: (9, 0), TensorProto.UINT8: (8, 5)}
INT8_CONSUMERS = {"DequantizeLinear"}
# attribute -> the only value TensorRT accepts, per recurrent op
RECURRENT_ATTRS = {
    "LSTM": {"layout": 0, "input_forget": 0},
    "GRU": {"layout": 0},
    "RNN": {"layout": 0},
}


def check(model: onnx.ModelProto, target: str | Target = "gpu") -> dict:
    """{"target", "tensorrt", "ok", "problems": [{"node", "op", "reason"}]} for ``model``."""
    t = target if isinstance(target, Target) else get_target(target)
    problems: list[dict] = []

    def bad(node: str, op: str, reason: str) -> None:
        problems.append({"node": node, "op": op, "reason": reason})

    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset > t.max_opset:
        bad("<model>", "", f"opset {opset} > {t.max_opset}, the newest TensorRT {t.trt_version} "
            "parses; export for this target (edgernn picks the opset per --target)")
    graph = model.graph
    types = _tensor_types(model)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    quantized_inputs = {o for n in graph.node if n.op_type == "QuantizeLinear" for o in n.output}
    initializers = {i.name: i for i in graph.initializer}
    for node in graph.node:
        op, label = node.op_type, node.name or f"{node.op_type}:{node.output[0]}"
        if node.domain not in ("", "ai.onnx"):
            bad(label, op, f"custom-domain op {node.domain}.{op} (onnxruntime only)")
            continue
        if op not in SUPPORTED_OPS and t.trt < SINCE.get(op, (99, 0)):
            bad(label, op, f"{op} is not supported by TensorRT {t.trt_version}'s ONNX parser")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        for attr, allowed in RECURRENT_ATTRS.get(op, {}).items():
            if attrs.get(attr, allowed) != allowed:
                bad(label, op, f"{attr}={attrs[attr]} (TensorRT needs {attr}={allowed})")
        if op in RECURRENT_ATTRS and "clip" in attrs:
            bad(label, op, "cell clipping (clip) is not supported by TensorRT")
        if op == "DequantizeLinear":
            _check_dequantize(node, label, t, initializers, quantized_inputs, bad)
    for name, elem in types.items():
        if elem in SINCE_DTYPES and t.trt >= SINCE_DTYPES[elem]:
            continue
        if elem not in DTYPES:
            bad(name, "", f"dtype {TensorProto.DataType.Name(elem)} is not supported by TensorRT")
        elif elem == TensorProto.INT8 and any(
                c.op_type not in INT8_CONSUMERS for c in consumers.get(name, [])):
            bad(name, "", "int8 tensors may only feed DequantizeLinear in an explicitly "
                "quantized TensorRT network")
    return {"target": t.name, "tensorrt": t.trt_version, "ok": not problems, "problems": problems}


def require(model: onnx.ModelProto, target: str | Target, what: str) -> dict:
    """``check``, raising VerificationError naming the offending nodes."""
    report = check(model, target)
    if not report["ok"]:
        lines = "; ".join(f"{p['node']} ({p['op'] or 'tensor'}): {p['reason']}"
                          for p in report["problems"])
        raise VerificationError(f"{what} is not TensorRT-compatible for {report['target']} "
                                f"(TensorRT {report['tensorrt']}): {lines}", report=report)
    return report


def _check_dequantize(node, label, t: Target, initializers, quantized_inputs, bad) -> None:
    if not t.int8:
        bad(label, node.op_type, f"{t.name} ({t.gpu}) has no int8 support in TensorRT; "
            "export fp16 or fp32 for it")
    if len(node.input) > 2 and node.input[2] in initializers:
        if numpy_helper.to_array(initializers[node.input[2]]).any():
            bad(label, node.op_type, "non-zero zero point (TensorRT quantization is symmetric)")
    if node.input[0] not in quantized_inputs and t.trt < (10, 0):
        bad(label, node.op_type, "weight-only DequantizeLinear -> MatMul needs TensorRT >= 10 "
            f"({t.name} has {t.trt_version}); export fp16 for this target")


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    try:
        g = onnx.shape_inference.infer_shapes(model).graph
    except onnx.shape_inference.InferenceError:  # e.g. ops of an unregistered domain
        g = model.graph
    types = {i.name: i.data_type for i in g.initializer}
    for v in [*g.input, *g.output, *g.value_info]:
        if v.type.HasField("tensor_type"):
            types[v.name] = v.type.tensor_type.elem_type
    return types
