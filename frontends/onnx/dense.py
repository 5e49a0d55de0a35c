"""Dense layers: Gemm and MatMul become :class:`~nnlcc.ir.matrix.DenseLayer` s (a constant
Add after a MatMul folds in as its bias, see :mod:`.residual`).  Their input must be
``(batch, features)``; after a flattened image the weight's columns are permuted to the
IR's stream order.  A weight behind a quantizer keeps its integers (:mod:`.quant`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx

from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.nodes import attr, bias_vector, check_finite, unsupported
from nnlcc.frontends.onnx.quant import attach_matrix
from nnlcc.frontends.onnx.quant_spec import QuantConst, trace
from nnlcc.frontends.onnx.read import fmt_shape
from nnlcc.frontends.onnx.registry import onnx_handler
from nnlcc.frontends.onnx.values import Step, Value
from nnlcc.ir.matrix import DenseLayer
from nnlcc.ir.notes import LayerNotes, OnnxNodes

_GEMM_ATTRS = frozenset({"alpha", "beta", "transA", "transB", "broadcast"})


def _data_is_operand_a(imp: Importer, node: onnx.NodeProto, label: str) -> None:
    if node.input[0] not in imp.values:
        raise unsupported(
            label,
            node.op_type,
            f"the data '{node.input[1]}' must be operand A;"
            " weights must be initializers or Constant nodes",
        )


def _dense(
    imp: Importer,
    step: Step,
    w: np.ndarray,
    b: np.ndarray,
    quant: QuantConst | None = None,
    bias_tensor: str | None = None,
) -> Value:
    v, node, label = step.value, step.node, step.label
    rows, cols = w.shape
    if rows == 0 or cols == 0:
        raise unsupported(label, node.op_type, f"zero-size layer ({rows}x{cols})")
    if cols != v.size:
        raise unsupported(
            label,
            node.op_type,
            f"weight expects {cols} inputs, but '{node.input[0]}' has {v.size} features",
        )
    check_finite(label, node.op_type, "weight", w)
    check_finite(label, node.op_type, "bias", b)
    if v.stream_image is not None:  # ONNX flattened channel-major; the IR in stream order
        c, h, wd = v.stream_image

        def stream(a: np.ndarray) -> np.ndarray:
            return a.reshape(rows, c, h, wd).transpose(0, 2, 3, 1).reshape(rows, cols)

        w = stream(w)
        quant = quant.map(stream) if quant is not None else None
    name = imp.new_name(label, node.op_type)
    layer = DenseLayer(
        name=name,
        weight=np.ascontiguousarray(w, dtype=np.float64),
        bias=np.asarray(b, dtype=np.float64),
        relu=False,
        notes=LayerNotes(OnnxNodes([label])),
        inputs=(v.ir,),
    )
    imp.add_layer(layer, label)
    attach_matrix(imp, layer, v, quant, bias_tensor)
    return Value(name, (rows,), v.batch, layer, open=True, relu_ok=True)


@onnx_handler("Gemm", weights=True)
def gemm(imp: Importer, step: Step) -> Value:
    node, label = step.node, step.label
    _data_is_operand_a(imp, node, label)
    unknown = {a.name for a in node.attribute} - _GEMM_ATTRS
    if unknown:
        raise unsupported(label, "Gemm", f"attribute {sorted(unknown)[0]} is not supported")
    if attr(node, "transA", 0):
        raise unsupported(
            label, "Gemm", "transA=1 is not supported (input must be (batch, features))"
        )
    imp.need_flat(step.value, node, label)
    bmat = np.asarray(imp.const_input(node, label, 1, "weight input B"), dtype=np.float64)
    if bmat.ndim != 2:
        raise unsupported(label, "Gemm", f"weight B has shape {fmt_shape(list(bmat.shape))}")
    alpha = float(attr(node, "alpha", 1.0))
    beta = float(attr(node, "beta", 1.0))
    trans_b = bool(attr(node, "transB", 0))
    w = alpha * (bmat if trans_b else bmat.T)
    quant = trace(imp, node.input[1])
    if quant is not None:  # an imported model's integers, arranged like w; alpha scales them
        quant = quant.map(lambda a: a if trans_b else a.T)
        quant = dataclasses.replace(quant, scale=quant.scale * alpha)
    rows = w.shape[0]
    bias_tensor = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if bias_tensor:
        c = np.asarray(imp.const_input(node, label, 2, "bias input C"), dtype=np.float64)
        b = beta * bias_vector(label, "Gemm", c, rows)
    else:
        b = np.zeros(rows)
    return _dense(imp, step, w, b, quant, bias_tensor)


@onnx_handler("MatMul", weights=True)
def matmul(imp: Importer, step: Step) -> Value:
    node, label = step.node, step.label
    _data_is_operand_a(imp, node, label)
    imp.need_flat(step.value, node, label)
    m = np.asarray(imp.const_input(node, label, 1, "weight input B"), dtype=np.float64)
    if m.ndim != 2:
        raise unsupported(
            label, "MatMul", f"weight has shape {fmt_shape(list(m.shape))}; expected 2-D"
        )
    quant = trace(imp, node.input[1])
    return _dense(imp, step, m.T, np.zeros(m.shape[1]), quant.map(np.transpose) if quant else None)
