"""GraphBuilder: a small accumulator of ONNX nodes and initializers with unique names."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .spec import ExportSpec, TensorSpec

DTYPES = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64, "uint64": TensorProto.UINT64}


class GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._consts: dict[str, np.ndarray] = {}

    def _unique(self, name: str) -> str:
        base, k = name, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def const(self, name: str, value) -> str:
        """An initializer; asking again for the same name and value reuses it."""
        value = np.asarray(value)
        known = self._consts.get(name)
        if known is not None and known.dtype == value.dtype and np.array_equal(known, value):
            return name
        name = self._unique(name)
        self._consts[name] = value
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, outputs: int = 1, **attrs):
        """Add a node; returns its output name (or a list of them when ``outputs`` > 1)."""
        node_name = self._unique(name)
        outs = [node_name if outputs == 1 else self._unique(f"{node_name}_{k}")
                for k in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=node_name, **attrs))
        return outs[0] if outputs == 1 else outs

    def rename_output(self, produced: str, name: str) -> None:
        """Make the node that produced ``produced`` write the graph output ``name`` instead."""
        for node in self.nodes:
            node.output[:] = [name if o == produced else o for o in node.output]
            node.input[:] = [name if i == produced else i for i in node.input]

    def model(self, spec: ExportSpec, inputs: list[TensorSpec], outputs: list[TensorSpec],
              graph_name: str, metadata: dict[str, str]) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, graph_name,
            [value_info(t, "batch") for t in inputs], [value_info(t, "batch") for t in outputs],
            self.initializers,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", spec.opset)], ir_version=spec.ir_version,
            producer_name="edgernn", doc_string=f"{spec.config.cell} step graph, {spec.variant}",
        )
        helper.set_model_props(model, metadata)
        return model


def value_info(t: TensorSpec, *leading: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(t.name, DTYPES[t.dtype], t.dims(*leading))
