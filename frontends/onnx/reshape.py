"""Flatten/Reshape to (batch, features) of an image becomes a
:class:`~nnlcc.ir.matrix.FlattenLayer` (the next dense layer's columns are permuted to stream
order); of the model input or a vector it vanishes, as do Identity and Dropout (inference)."""

from __future__ import annotations

import numpy as np

from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.nodes import attr, unsupported
from nnlcc.frontends.onnx.registry import onnx_handler
from nnlcc.frontends.onnx.values import BATCH_DIM, Step, Value
from nnlcc.ir.matrix import FlattenLayer
from nnlcc.ir.notes import LayerNotes, OnnxNodes


@onnx_handler("Flatten", "Reshape")
def flatten(imp: Importer, step: Step) -> Value:
    """Accept only reshapes that keep the batch axis and make (batch, features)."""
    v, node, label = step.value, step.node, step.label
    rank = len(v.features) + 1
    if node.op_type == "Flatten":
        axis = int(attr(node, "axis", 1))
        if axis < 0:
            axis += rank
        if axis != 1:
            raise unsupported(
                label,
                "Flatten",
                f"axis={axis} mixes the batch axis into features; only axis=1 is supported",
            )
    else:
        shape_attr = attr(node, "shape")
        if shape_attr is not None:
            target = [int(x) for x in shape_attr]
        else:
            shape = imp.const_input(node, label, 1, "shape input")
            target = [int(x) for x in np.asarray(shape).reshape(-1)]
        if not _keeps_batch_flat(v, target, bool(attr(node, "allowzero", 0))):
            raise unsupported(
                label,
                "Reshape",
                f"reshape of (batch, {', '.join(map(str, v.features))})"
                f" to {target} is not a flatten to (batch, {v.size})",
            )
    if v.flat:
        return imp.through(v, node.input[0])
    if v.layer is None:  # the input as a vector: ONNX order is the IR's order
        imp.input_flat = True
        return Value(v.ir, (v.size,), v.batch)
    if len(v.features) != 3:
        raise unsupported(label, node.op_type, "only images (C, H, W) can be flattened")
    name = imp.new_name(label, node.op_type, "flatten")
    layer = FlattenLayer(
        name=name, image=v.features, notes=LayerNotes(OnnxNodes([label])), inputs=(v.ir,)
    )
    imp.add_layer(layer, label)
    return Value(name, (v.size,), v.batch, layer, stream_image=v.features)


def _keeps_batch_flat(v: Value, target: list[int], allowzero: bool) -> bool:
    if len(target) != 2:
        return False
    first, second = target
    batch_ok = (
        first in (-1, BATCH_DIM)
        or (first == 0 and not allowzero)
        or (v.batch is not None and first == v.batch)
    )
    feat_ok = (
        second == v.size
        or (second == -1 and first != -1)
        or (second == 0 and not allowzero and v.flat)
    )
    return batch_ok and feat_ok


@onnx_handler("Identity")
def identity(imp: Importer, step: Step) -> Value:
    return imp.through(step.value, step.live[0])


@onnx_handler("Dropout")
def dropout(imp: Importer, step: Step) -> Value:
    node, label = step.node, step.label
    if (
        len(node.output) > 1
        and node.output[1]
        and (imp.consumers.get(node.output[1], 0) or node.output[1] == imp.graph.output[0].name)
    ):
        raise unsupported(label, "Dropout", "the dropout mask output is used")
    if len(node.input) > 2 and node.input[2]:
        mode = imp.const_input(node, label, 2, "training_mode input")
        if bool(np.asarray(mode).reshape(-1)[0]):
            raise unsupported(label, "Dropout", "training_mode is true; export for inference")
    return imp.through(step.value, step.live[0])
