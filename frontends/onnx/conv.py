"""Conv (any kernel, stride and padding, including ``auto_pad``; dilation 1 and one group
only) becomes a :class:`~nnlcc.ir.matrix.ConvLayer` with the weight as a
``Cout x (kh*kw*Cin)`` matrix."""

from __future__ import annotations

import numpy as np

from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.nodes import attr, check_finite, node_window, unsupported
from nnlcc.frontends.onnx.quant import attach_matrix
from nnlcc.frontends.onnx.quant_spec import trace
from nnlcc.frontends.onnx.read import fmt_shape
from nnlcc.frontends.onnx.registry import onnx_handler
from nnlcc.frontends.onnx.values import Step, Value
from nnlcc.ir.matrix import ConvLayer, conv_matrix
from nnlcc.ir.notes import LayerNotes, OnnxNodes

_CONV_ATTRS = frozenset({"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"})


@onnx_handler("Conv", weights=True)
def conv(imp: Importer, step: Step) -> Value:
    v, node, label = step.value, step.node, step.label
    if node.input[0] not in imp.values:
        raise unsupported(label, "Conv", "the data must be input X; weights must be initializers")
    w4 = np.asarray(imp.const_input(node, label, 1, "weight input W"), dtype=np.float64)
    if w4.ndim != 4:
        raise unsupported(
            label,
            "Conv",
            f"weight has shape {fmt_shape(list(w4.shape))}; only 2-D convolutions"
            " (4-D weights) are supported",
        )
    c, h, w = imp.need_image(v, node, label)
    group = int(attr(node, "group", 1))
    if group != 1:
        raise unsupported(
            label, "Conv", f"group={group} is not supported (grouped/depthwise convolution)"
        )
    cout, cin, kh, kw = w4.shape
    if cin != c:
        raise unsupported(label, "Conv", f"weight expects {cin} channels, input has {c}")
    ks = attr(node, "kernel_shape")
    if ks is not None and tuple(int(k) for k in ks) != (kh, kw):
        raise unsupported(label, "Conv", f"kernel_shape={list(ks)} vs weight {kh}x{kw}")
    win = node_window(node, label, (kh, kw), (h, w), set(_CONV_ATTRS))
    if len(node.input) > 2 and node.input[2]:
        b = np.asarray(imp.const_input(node, label, 2, "bias input B"), np.float64)
        if b.shape != (cout,):
            raise unsupported(label, "Conv", f"bias has shape {fmt_shape(list(b.shape))}")
    else:
        b = np.zeros(cout)
    if cout == 0 or w4.size == 0:
        raise unsupported(label, "Conv", "zero-size convolution")
    check_finite(label, "Conv", "weight", w4)
    check_finite(label, "Conv", "bias", b)
    name = imp.new_name(label, "Conv", "conv")
    layer = ConvLayer(
        name=name,
        weight=conv_matrix(w4),
        bias=b.copy(),
        notes=LayerNotes(OnnxNodes([label])),
        inputs=(v.ir,),
        image=(c, h, w),
        window=win,
    )
    imp.add_layer(layer, label)
    quant = trace(imp, node.input[1])
    bias_tensor = node.input[2] if len(node.input) > 2 and node.input[2] else None
    attach_matrix(imp, layer, v, quant.map(conv_matrix) if quant else None, bias_tensor)
    return Value(name, layer.out_shape, v.batch, layer, open=True, relu_ok=True)
