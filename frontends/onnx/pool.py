"""MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool become
:class:`~nnlcc.ir.matrix.PoolLayer` s on images."""

from __future__ import annotations

from typing import Literal

from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.nodes import attr, node_window, pair, unsupported
from nnlcc.frontends.onnx.registry import onnx_handler
from nnlcc.frontends.onnx.values import Step, Value
from nnlcc.ir.matrix import PoolLayer
from nnlcc.ir.notes import LayerNotes, OnnxNodes
from nnlcc.ir.window import Window

_POOL_ATTRS = frozenset({"kernel_shape", "strides", "pads", "auto_pad", "ceil_mode", "dilations"})


@onnx_handler("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
def pool(imp: Importer, step: Step) -> Value:
    v, node, label = step.value, step.node, step.label
    op = node.op_type
    c, h, w = imp.need_image(v, node, label)
    if len(node.output) > 1 and node.output[1] and imp.consumers.get(node.output[1], 0):
        raise unsupported(label, op, "the Indices output is used")
    if op.startswith("Global"):
        win = Window((h, w))
    else:
        kernel = pair(label, op, "kernel_shape", attr(node, "kernel_shape"), 1)
        allowed = set(_POOL_ATTRS)
        allowed.add("storage_order" if op == "MaxPool" else "count_include_pad")
        win = node_window(node, label, (kernel[0], kernel[1]), (h, w), allowed)
        if op == "AveragePool" and any(win.pads) and not attr(node, "count_include_pad", 0):
            raise unsupported(
                label,
                op,
                "count_include_pad=0 with padding is not supported (the divisor would vary"
                " at the border); export with count_include_pad=1",
            )
    kind: Literal["max", "avg"] = "max" if "Max" in op else "avg"
    name = imp.new_name(label, op, "pool")
    layer = PoolLayer(
        name=name,
        op=kind,
        image=(c, h, w),
        window=win,
        notes=LayerNotes(OnnxNodes([label])),
        inputs=(v.ir,),
    )
    imp.add_layer(layer, label)
    return Value(name, layer.out_shape, v.batch, layer, relu_ok=True)
