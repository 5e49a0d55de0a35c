"""Constants known at import time: Constant nodes, the cheap ops exporters write on weights
(transposed or fp16 weights: Identity, Transpose, Cast) and the shape arithmetic torch writes
for ``x.view(x.size(0), -1)`` (Shape -> Gather -> Unsqueeze -> Concat), folded when all their
inputs are constants.  ``Shape`` of a data tensor is its known shape, the batch axis
:data:`~nnlcc.frontends.onnx.values.BATCH_DIM` when symbolic.
"""

from __future__ import annotations

import numpy as np
import onnx

from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.nodes import attr, unsupported
from nnlcc.frontends.onnx.registry import onnx_folder, onnx_handler
from nnlcc.frontends.onnx.values import BATCH_DIM, Step


@onnx_folder("Constant")
def constant(node: onnx.NodeProto, label: str, args: list[np.ndarray]) -> np.ndarray:
    """The tensor of a Constant node, whichever of its value attributes is set."""
    for a in node.attribute:
        if a.name == "value":
            return onnx.numpy_helper.to_array(a.t)
        if a.name == "value_float":
            return np.array(a.f, dtype=np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), dtype=np.float32)
        if a.name == "value_int":
            return np.array(a.i, dtype=np.int64)
        if a.name == "value_ints":
            return np.array(list(a.ints), dtype=np.int64)
    raise unsupported(label, node.op_type, "constant kind is not supported (sparse or string)")


@onnx_folder("Identity")
def identity(node: onnx.NodeProto, label: str, args: list[np.ndarray]) -> np.ndarray:
    return args[0]


@onnx_folder("Transpose")
def transpose(node: onnx.NodeProto, label: str, args: list[np.ndarray]) -> np.ndarray:
    perm = attr(node, "perm")
    return np.transpose(args[0], axes=None if perm is None else list(perm))


@onnx_folder("Gather")
def gather(node: onnx.NodeProto, label: str, args: list[np.ndarray]) -> np.ndarray:
    return np.take(args[0], args[1], axis=int(attr(node, "axis", 0)))


@onnx_folder("Concat")
def concat(node: onnx.NodeProto, label: str, args: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.atleast_1d(a) for a in args], axis=int(attr(node, "axis")))


@onnx_folder("Unsqueeze", "Squeeze")
def squeeze(node: onnx.NodeProto, label: str, args: list[np.ndarray]) -> np.ndarray:
    # axes: an attribute before opset 13, an (optional for Squeeze) input since.
    axes = attr(node, "axes")
    if axes is None and len(args) > 1:
        axes = args[1]
    if node.op_type == "Squeeze":
        return np.squeeze(args[0], axis=None if axes is None else tuple(int(a) for a in axes))
    out = args[0]
    rank = out.ndim + len(axes)
    for a in sorted(int(a) + rank if int(a) < 0 else int(a) for a in axes):
        out = np.expand_dims(out, a)
    return out


@onnx_folder("Cast")
def cast(node: onnx.NodeProto, label: str, args: list[np.ndarray]) -> np.ndarray:
    to = attr(node, "to")
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(to)
    except (KeyError, ValueError, TypeError) as e:
        raise unsupported(label, node.op_type, f"cast to type {to} is not supported") from e
    return args[0].astype(dtype)


@onnx_handler("Shape", metadata_only=True)
def shape(imp: Importer, step: Step) -> np.ndarray:
    """The shape of a data tensor, as the constant the following arithmetic folds."""
    v, node = step.value, step.node
    batch = BATCH_DIM if v.batch is None else v.batch
    dims = np.array([*v.lead, batch, *v.features], dtype=np.int64)
    start, end = int(attr(node, "start", 0)), attr(node, "end")
    return dims[start : None if end is None else int(end)]
