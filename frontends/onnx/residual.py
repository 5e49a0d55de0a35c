"""Add: of two computed tensors an :class:`~nnlcc.ir.matrix.AddLayer` (a residual
connection, equal shapes only); of a computed tensor and a constant the bias of the Gemm,
MatMul or Conv right before it."""

from __future__ import annotations

import dataclasses

import numpy as np

from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.nodes import bias_vector, channel_vector, check_finite, unsupported
from nnlcc.frontends.onnx.quant import add_bias
from nnlcc.frontends.onnx.registry import onnx_handler
from nnlcc.frontends.onnx.values import Step, Value
from nnlcc.ir.matrix import AddLayer, ConvLayer, MatrixLayer
from nnlcc.ir.notes import LayerNotes, OnnxNodes


@onnx_handler("Add", joins=2)
def add(imp: Importer, step: Step) -> Value:
    if len(step.inputs) == 2:
        return _residual_add(imp, step)
    return _bias_add(imp, step)


def _residual_add(imp: Importer, step: Step) -> Value:
    label = step.label
    a, b = step.inputs
    if a.features != b.features or a.stream_image != b.stream_image:
        raise unsupported(
            label,
            "Add",
            f"adds shapes (batch, {', '.join(map(str, a.features))}) and"
            f" (batch, {', '.join(map(str, b.features))}); only equal shapes (no broadcast)",
        )
    if len(a.features) not in (1, 3):
        raise unsupported(label, "Add", "only 2-D and 4-D tensors can be added")
    for x in (a, b):
        if x.layer is None:
            if len(x.features) == 3:
                imp.input_image = True
            else:
                imp.input_flat = True
    name = imp.new_name(label, "Add", "add")
    layer = AddLayer(
        name=name, inputs=(a.ir, b.ir), shape=a.features, notes=LayerNotes(OnnxNodes([label]))
    )
    imp.add_layer(layer, label)
    return Value(name, a.features, a.batch, layer, relu_ok=True, stream_image=a.stream_image)


def _bias_add(imp: Importer, step: Step) -> Value:
    v, node, label = step.value, step.node, step.label
    data = node.input[0] if node.input[0] in imp.values else node.input[1]
    layer = v.layer
    if not (isinstance(layer, MatrixLayer) and v.open and imp.sole_reader(data)):
        raise unsupported(
            label,
            "Add",
            "only a constant bias directly after Gemm, MatMul or Conv can be added",
        )
    pos = 1 if data == node.input[0] else 0
    c = np.asarray(imp.const_input(node, label, pos, "bias input"), dtype=np.float64)
    if isinstance(layer, ConvLayer):
        b = channel_vector(label, "Add", c, layer.shape[0])
    else:
        b = bias_vector(label, "Add", c, layer.shape[0])
    check_finite(label, "Add", "bias", b)
    layer.bias = layer.bias + add_bias(imp, layer, b, node.input[pos])
    layer.notes[OnnxNodes].nodes.append(label)
    return dataclasses.replace(v)
