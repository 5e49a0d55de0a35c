"""BatchNormalization folds into the Conv/Gemm before it when it alone reads that layer's
output; anywhere else (after the input, a pool or an add, or after a conv whose output is
also read elsewhere) it becomes a diagonal matrix layer (a 1x1 conv on images), exact too."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.nodes import attr, check_finite, unsupported
from nnlcc.frontends.onnx.quant import fold_batchnorm
from nnlcc.frontends.onnx.registry import onnx_handler
from nnlcc.frontends.onnx.values import Step, Value
from nnlcc.ir.matrix import ConvLayer, DenseLayer, MatrixLayer
from nnlcc.ir.notes import BatchNormLayer, LayerNotes, OnnxNodes
from nnlcc.ir.window import Window


@onnx_handler("BatchNormalization")
def batchnorm(imp: Importer, step: Step) -> Value:
    v, node, label = step.value, step.node, step.label
    op = "BatchNormalization"
    if attr(node, "training_mode", 0):
        raise unsupported(label, op, "training_mode=1; export the model for inference")
    if len(node.output) > 1 and any(imp.consumers.get(o, 0) for o in node.output[1:] if o):
        raise unsupported(label, op, "running mean/var outputs are used (training mode)")
    if node.input[0] not in imp.values:
        raise unsupported(label, op, "the data must be input X")
    scale, bias, mean, var = (
        np.asarray(imp.const_input(node, label, k, role), dtype=np.float64).reshape(-1)
        for k, role in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var"))
    )
    channels = v.features[0]
    if len(v.features) not in (1, 3) or v.stream_image is not None:
        raise unsupported(
            label,
            op,
            f"input has shape (batch, {', '.join(map(str, v.features))}); only 2-D and 4-D"
            " inputs are supported",
        )
    if not all(len(a) == channels for a in (scale, bias, mean, var)):
        raise unsupported(label, op, f"parameters do not have {channels} channels")
    eps = float(attr(node, "epsilon", 1e-5))
    s = scale / np.sqrt(var + eps)
    shift = bias - mean * s
    check_finite(label, op, "folded scale", s)
    check_finite(label, op, "folded shift", shift)
    layer = v.layer
    if isinstance(layer, MatrixLayer) and v.open and imp.sole_reader(node.input[0]):
        if not fold_batchnorm(layer, s, shift, label):  # an imported layer keeps its integers
            layer.weight = layer.weight * s[:, None]
            layer.bias = layer.bias * s + shift
        layer.notes[OnnxNodes].nodes.append(label)
        return dataclasses.replace(v)
    name = imp.new_name(label, op, "bn")
    common: dict[str, Any] = {
        "name": name,
        "weight": np.diag(s),
        "bias": shift,
        "notes": LayerNotes(OnnxNodes([label]), BatchNormLayer()),
        "inputs": (v.ir,),
    }
    new: MatrixLayer
    if len(v.features) == 3:
        if v.layer is None:
            imp.input_image = True
        new = ConvLayer(**common, image=v.features, window=Window((1, 1)))
    else:
        new = DenseLayer(**common)
    imp.add_layer(new, label)
    return Value(name, v.features, v.batch, new, open=True, relu_ok=True)
