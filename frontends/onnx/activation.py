"""Relu joins the layer right before it (a matrix, pool or add layer) when it alone reads
that layer's output."""

from __future__ import annotations

import dataclasses

from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.nodes import unsupported
from nnlcc.frontends.onnx.registry import onnx_handler
from nnlcc.frontends.onnx.values import Step, Value
from nnlcc.ir.matrix import FlattenLayer
from nnlcc.ir.recurrent import RecurrentLayer


@onnx_handler("Relu")
def relu(imp: Importer, step: Step) -> Value:
    v, node, label = step.value, step.node, step.label
    layer = v.layer
    if layer is None or isinstance(layer, FlattenLayer | RecurrentLayer) or not v.relu_ok:
        raise unsupported(
            label,
            "Relu",
            "Relu must directly follow a Gemm, MatMul, Conv, pool or Add layer",
        )
    if not imp.sole_reader(node.input[0]):
        raise unsupported(
            label, "Relu", f"'{node.input[0]}' is also read before the Relu; not supported"
        )
    layer.relu = True
    return dataclasses.replace(v, open=False, relu_ok=False)
