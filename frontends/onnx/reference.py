"""Float reference outputs of an ONNX model: onnxruntime (ONNX's reference evaluator for
opsets too old for it; qonnx's executor for QONNX models, whose Quant nodes onnxruntime does
not know), the accuracy the user trained."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import onnx

from nnlcc.errors import BadInputError, UnsupportedModelError
from nnlcc.frontends.onnx.read import Shapes, fmt_shape, one_line, read_model
from nnlcc.ir.matrix import FloatArray

__all__ = ["onnx_reference"]


def _run_session(
    model_bytes: bytes, feeds: Iterable[np.ndarray], input_name: str
) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # ORT warns loudly about old opsets it still runs
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    return [sess.run(None, {input_name: f})[0] for f in feeds]


def _run_reference(
    model: onnx.ModelProto, feeds: Iterable[np.ndarray], input_name: str
) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    ev = ReferenceEvaluator(model)
    return [cast(list[np.ndarray], ev.run(None, {input_name: f}))[0] for f in feeds]


#: Domains of QONNX's custom ops (qonnx runs them; onnxruntime does not know them).
QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general")


def is_qonnx(model: onnx.ModelProto) -> bool:
    return any(n.domain in QONNX_DOMAINS for n in model.graph.node)


def _run_qonnx(
    model: onnx.ModelProto, feeds: Iterable[np.ndarray], input_name: str
) -> list[np.ndarray]:
    """qonnx's executor (onnxruntime node by node, numpy for Quant); it wants the batch fixed."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    out: list[np.ndarray] = []
    wrapped: dict[int, ModelWrapper] = {}
    for f in feeds:
        if len(f) not in wrapped:
            m = ModelWrapper(copy.deepcopy(model))
            wrapped[len(f)] = m.transform(ChangeBatchSize(len(f))).transform(InferShapes())
        m = wrapped[len(f)]
        out.append(execute_onnx(m, {input_name: f})[m.graph.output[0].name])
    return out


def onnx_reference(path: str | Path, x: npt.ArrayLike) -> FloatArray:
    """Float outputs of the model on a batch, by onnxruntime: the accuracy the user trained.

    ``x`` is (batch, input_size) or already the model's input shape.  A model exported with a
    fixed batch runs chunk by chunk (the last chunk zero-padded).  Opsets too old for
    onnxruntime fall back to ONNX's reference evaluator.
    """
    model = read_model(path)
    inputs = [
        i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    if len(inputs) != 1:
        raise UnsupportedModelError(f"model has {len(inputs)} inputs; nnlcc needs exactly one")
    inp = inputs[0]
    dims = Shapes.of(model).get(inp.name) or []
    features = [d for d in dims[1:] if isinstance(d, int) and d > 0]
    if len(dims) < 2 or len(features) != len(dims) - 1:
        raise UnsupportedModelError(f"input '{inp.name}' has shape {fmt_shape(dims)}")
    dtype = onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
    xs = np.asarray(x, dtype=np.float64)
    n = len(xs)
    if xs.size != n * math.prod(features):
        raise BadInputError(
            f"data of shape {xs.shape} does not fit input '{inp.name}' {fmt_shape(dims)}"
        )
    xs = xs.reshape(n, *features).astype(dtype)
    chunk = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else max(n, 1)
    feeds = []
    for start in range(0, n, chunk):
        part = xs[start : start + chunk]
        if len(part) < chunk:
            pad = np.zeros((chunk - len(part), *part.shape[1:]), dtype=dtype)
            part = np.concatenate([part, pad])
        feeds.append(part)
    if is_qonnx(model):
        try:
            outs = _run_qonnx(model, feeds, inp.name)
        except Exception as e:  # qonnx raises plain Exceptions and assertions
            raise BadInputError(
                f"model file '{path}' cannot be run by qonnx: {one_line(str(e))}"
            ) from e
        return _stack(outs, n)
    try:
        outs = _run_session(model.SerializeToString(), feeds, inp.name)
    except Exception as first:  # ORT raises its own unrelated classes
        try:
            outs = _run_reference(model, feeds, inp.name)
        except Exception as e:
            raise BadInputError(f"model file '{path}' cannot be run: {one_line(str(first))}") from e
    return _stack(outs, n)


def _stack(outs: list[np.ndarray], n: int) -> FloatArray:
    if not outs:
        return np.zeros((0, 0))
    y: FloatArray = np.concatenate(
        [np.asarray(o, dtype=np.float64).reshape(len(o), -1) for o in outs]
    )
    return y[:n]
