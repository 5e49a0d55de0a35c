"""Import a trained ONNX network (MLP or CNN) into the matrix IR.

The importer walks the nodes once, in the file's (topological) order, from the one input to the
one output, and maps every computed ONNX tensor to an IR tensor:

* Gemm, MatMul (+ a constant Add) become :class:`~nnlcc.ir.matrix.DenseLayer` s; Conv (any
  kernel, stride and padding, including ``auto_pad``; dilation 1 and one group only) becomes a
  :class:`~nnlcc.ir.matrix.ConvLayer` with the weight as a ``Cout x (kh*kw*Cin)`` matrix.
* BatchNormalization folds into the Conv/Gemm before it when it alone reads that layer's
  output; anywhere else (after the input, a pool or an add, or after a conv whose output is
  also read elsewhere) it becomes a diagonal matrix layer (a 1x1 conv on images), exact too.
* Relu joins the layer before it (matrix, pool or add layer).  MaxPool, AveragePool,
  GlobalAveragePool and GlobalMaxPool become :class:`~nnlcc.ir.matrix.PoolLayer` s, an Add of
  two computed tensors an :class:`~nnlcc.ir.matrix.AddLayer` (a residual connection).
* Flatten/Reshape to (batch, features) of an image becomes a
  :class:`~nnlcc.ir.matrix.FlattenLayer` (the next dense layer's columns are permuted to stream
  order); of the model input or a vector it vanishes, as do Identity and Dropout.

Anything else stops the import with one line naming the node and the attribute, so a user sees
at once which part of the model nnlcc cannot compile yet.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
import onnx
from google.protobuf.message import DecodeError

from nnlcc.errors import BadInputError, UnsupportedModelError
from nnlcc.ir.matrix import (
    AddLayer,
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    FloatArray,
    Layer,
    MatrixGraph,
    MatrixLayer,
    PoolLayer,
    Shape,
    conv_matrix,
)
from nnlcc.ir.window import Window

__all__ = ["inspect_onnx", "load_onnx", "onnx_reference"]

# Ops that only move data around (Flatten/Reshape of an image becomes a FlattenLayer).
_NOOP_OPS = frozenset({"Identity", "Dropout", "Flatten", "Reshape"})
_MATRIX_OPS = frozenset({"Gemm", "MatMul"})
# Ops folded away when all their inputs are constants: weights stored transposed or as fp16,
# and the Shape -> Gather -> Unsqueeze -> Concat arithmetic torch writes for x.view(x.size(0), -1).
_FOLDABLE_OPS = frozenset(
    {"Identity", "Transpose", "Cast", "Gather", "Unsqueeze", "Squeeze", "Concat"}
)
_CNN_OPS = frozenset(
    {
        "Conv",
        "BatchNormalization",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
    }
)
_SUPPORTED_OPS = (
    _MATRIX_OPS | _NOOP_OPS | _FOLDABLE_OPS | _CNN_OPS | {"Add", "Relu", "Constant", "Shape"}
)
# What Shape reports for a symbolic batch axis.  Negative, so no real dim can collide with it;
# arithmetic on it (batch * k) gives a value Reshape rejects, as it should.
_BATCH_DIM = -(2**40)
_FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.DOUBLE,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
    }
)
_GEMM_ATTRS = frozenset({"alpha", "beta", "transA", "transB", "broadcast"})


def _node_label(node: onnx.NodeProto, index: int) -> str:
    """The node's name, or ``Op_index`` for the unnamed nodes older exporters write."""
    return node.name or f"{node.op_type}_{index}"


def _unsupported(label: str, op: str, what: str) -> UnsupportedModelError:
    """An error whose single line names the node; ``node`` lets ``inspect_onnx`` mark the row."""
    err = UnsupportedModelError(f"node '{label}' ({op}): {_one_line(what)}")
    err.node = label  # type: ignore[attr-defined]
    return err


def _one_line(text: str) -> str:
    """First non-empty line of a library message (checker texts run over several lines)."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return str(text).strip() or "unknown error"


# --------------------------------------------------------------------------- reading the file


def _read_model(path: str | Path) -> onnx.ModelProto:
    """Load, check and shape-infer a model, turning every library failure into BadInputError."""
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"model file '{p}' not found")
    if not p.is_file():
        raise BadInputError(f"model file '{p}' is not a file")
    try:
        model = onnx.load(str(p))
    except DecodeError as e:
        raise BadInputError(f"model file '{p}' is not an ONNX model ({_one_line(str(e))})") from e
    except (OSError, ValueError, RuntimeError, onnx.checker.ValidationError) as e:
        raise BadInputError(f"model file '{p}' cannot be read: {_one_line(str(e))}") from e
    # Protobuf parses many random byte strings without complaint; an ONNX model has a graph.
    if model.ir_version == 0 or not model.HasField("graph"):
        raise BadInputError(f"model file '{p}' is not an ONNX model (no IR version or graph)")
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as e:
        raise BadInputError(
            f"model file '{p}' is not a valid ONNX model: {_one_line(str(e))}"
        ) from e
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.shape_inference.InferenceError, ValueError, RuntimeError) as e:
        raise BadInputError(
            f"model file '{p}': ONNX shape inference failed: {_one_line(str(e))}"
        ) from e
    return model


# --------------------------------------------------------------------------- constants


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _constant_value(node: onnx.NodeProto, label: str) -> np.ndarray:
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
    raise _unsupported(label, node.op_type, "constant kind is not supported (sparse or string)")


def _fold(node: onnx.NodeProto, label: str, args: list[np.ndarray]) -> np.ndarray:
    """Evaluate a cheap op on constants (how exporters store transposed or fp16 weights)."""
    if node.op_type == "Identity":
        return args[0]
    if node.op_type == "Transpose":
        perm = _attr(node, "perm")
        return np.transpose(args[0], axes=None if perm is None else list(perm))
    if node.op_type == "Gather":
        return np.take(args[0], args[1], axis=int(_attr(node, "axis", 0)))
    if node.op_type == "Concat":
        return np.concatenate([np.atleast_1d(a) for a in args], axis=int(_attr(node, "axis")))
    if node.op_type in ("Unsqueeze", "Squeeze"):
        # axes: an attribute before opset 13, an (optional for Squeeze) input since.
        axes = _attr(node, "axes")
        if axes is None and len(args) > 1:
            axes = args[1]
        if node.op_type == "Squeeze":
            return np.squeeze(args[0], axis=None if axes is None else tuple(int(a) for a in axes))
        out = args[0]
        rank = out.ndim + len(axes)
        for a in sorted(int(a) + rank if int(a) < 0 else int(a) for a in axes):
            out = np.expand_dims(out, a)
        return out
    to = _attr(node, "to")
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(to)
    except (KeyError, ValueError, TypeError) as e:
        raise _unsupported(label, node.op_type, f"cast to type {to} is not supported") from e
    return args[0].astype(dtype)


# --------------------------------------------------------------------------- shapes


@dataclass
class _Shapes:
    """Inferred shapes by tensor name; a dim is an int, a symbol name or None (unknown)."""

    dims: dict[str, list[int | str | None]] = field(default_factory=dict)

    @classmethod
    def of(cls, model: onnx.ModelProto) -> _Shapes:
        s = cls()
        g = model.graph
        for vi in [*g.input, *g.value_info, *g.output]:
            t = vi.type.tensor_type
            if t.HasField("shape"):
                s.dims[vi.name] = [
                    d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in t.shape.dim
                ]
        for init in g.initializer:
            s.dims[init.name] = list(init.dims)
        return s

    def get(self, name: str) -> list[int | str | None] | None:
        return self.dims.get(name)


def _fmt_shape(dims: Sequence[int | str | None] | None) -> str:
    if dims is None:
        return "?"
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


# --------------------------------------------------------------------------- the graph walk


@dataclass
class _Value:
    """What a computed ONNX tensor is in the IR.

    ``ir`` names the IR tensor (a layer name or the graph input), ``features`` are the ONNX
    non-batch dims.  ``layer`` produced it; ``open`` says a bias Add or a BatchNormalization
    may still fold into that (matrix) layer, ``relu_ok`` that a Relu may still join it — both
    only while this ONNX tensor is the sole reader of the layer's output.  ``stream_image`` is
    set on a flattened image: its elements are in stream order (see FlattenLayer).
    """

    ir: str
    features: tuple[int, ...]
    batch: int | None
    layer: Layer | None = None
    open: bool = False
    relu_ok: bool = False
    stream_image: Shape | None = None

    @property
    def flat(self) -> bool:
        return len(self.features) == 1

    @property
    def size(self) -> int:
        return math.prod(self.features)


def _layer_name(label: str, op: str, taken: set[str], index: int, kind: str = "dense") -> str:
    """A Verilog/Python-safe, unique layer name derived from the ONNX node name.

    Torch names nodes ``/fc1/Gemm`` (module path, then op): the module path is the useful part.
    """
    parts = [p for p in label.split("/") if p]
    if len(parts) > 1 and parts[-1].startswith(op):
        parts = parts[:-1]
    name = re.sub(r"[^0-9A-Za-z_]+", "_", "_".join(parts)).strip("_") or f"{kind}{index}"
    if name[0].isdigit():
        name = f"l{name}"
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def _check_finite(label: str, op: str, what: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        raise _unsupported(label, op, f"{what} contains NaN or Inf values")


def _bias_vector(label: str, op: str, c: np.ndarray, rows: int) -> FloatArray:
    """A bias broadcastable to (1, rows), as a vector; per-batch-row biases are not a layer."""
    c = np.asarray(c, dtype=np.float64)
    try:
        ok = c.ndim <= 2 and np.broadcast_shapes(c.shape, (1, rows)) == (1, rows)
    except ValueError:
        ok = False
    if not ok:
        raise _unsupported(
            label, op, f"bias of shape {_fmt_shape(list(c.shape))} does not broadcast to ({rows},)"
        )
    return np.array(np.broadcast_to(c, (1, rows))[0], dtype=np.float64)


def _channel_vector(label: str, op: str, c: np.ndarray, channels: int) -> FloatArray:
    """A per-channel constant of an image (shape ``(C, 1, 1)``, ``(1, C, 1, 1)``, scalar...)."""
    c = np.asarray(c, dtype=np.float64)
    try:
        ok = c.ndim <= 4 and np.broadcast_shapes(c.shape, (1, channels, 1, 1)) == (
            1,
            channels,
            1,
            1,
        )
    except ValueError:
        ok = False
    if not ok:
        raise _unsupported(
            label,
            op,
            f"constant of shape {_fmt_shape(list(c.shape))} is not per channel"
            f" ({channels} channels)",
        )
    return np.array(np.broadcast_to(c, (1, channels, 1, 1)).reshape(channels), np.float64)


def _pair(label: str, op: str, name: str, v: Any, default: int, n: int = 2) -> tuple[int, ...]:
    vals = tuple(int(a) for a in v) if v is not None else (default,) * n
    if len(vals) != n:
        raise _unsupported(label, op, f"{name}={list(vals)} needs {n} values for 2-D images")
    return vals


class _Importer:
    """One pass over a checked model in node order; produces the layers or raises naming the
    node."""

    def __init__(self, model: onnx.ModelProto, source: str) -> None:
        self.model = model
        self.graph = model.graph
        self.source = source
        self.shapes = _Shapes.of(model)
        self.consts: dict[str, np.ndarray] = {
            init.name: onnx.numpy_helper.to_array(init) for init in self.graph.initializer
        }
        # Outputs of constant-only nodes we do not evaluate: named so a weight error can say why.
        self.computed: dict[str, str] = {}
        self.consumers: dict[str, int] = {}
        for node in self.graph.node:
            if node.op_type == "Shape":
                continue  # reads only metadata: does not fork the data path
            for name in node.input:
                if name:
                    self.consumers[name] = self.consumers.get(name, 0) + 1
        out = self.graph.output[0].name if self.graph.output else ""
        self.consumers[out] = self.consumers.get(out, 0) + 1
        # Shapes of the tensors the data path went through, for Shape nodes reading them.
        self.seen: dict[str, tuple[int | None, tuple[int, ...]]] = {}
        self.values: dict[str, _Value] = {}
        self.layers: list[Layer] = []
        self.layer_names: set[str] = set()
        self.input_name = ""
        self.input_flat = False  # the graph input is only ever read flattened
        self.input_image = False  # ... or as an image

    # ---- graph boundary

    def _data_inputs(self) -> list[onnx.ValueInfoProto]:
        # Before IR v4 every initializer is also listed as a graph input.
        return [i for i in self.graph.input if i.name not in self.consts]

    def _start(self) -> _Value:
        inputs = self._data_inputs()
        if len(inputs) != 1:
            names = ", ".join(f"'{i.name}'" for i in inputs)
            hint = self._weight_from_input({i.name for i in inputs})
            raise UnsupportedModelError(
                f"model has {len(inputs)} inputs ({names}); nnlcc needs exactly one" + hint
            )
        if len(self.graph.output) != 1:
            names = ", ".join(f"'{o.name}'" for o in self.graph.output)
            raise UnsupportedModelError(
                f"model has {len(self.graph.output)} outputs ({names}); nnlcc needs exactly one"
            )
        inp = inputs[0]
        t = inp.type.tensor_type
        if not inp.type.HasField("tensor_type") or t.elem_type not in _FLOAT_TYPES:
            raise UnsupportedModelError(f"input '{inp.name}' is not a floating-point tensor")
        dims = self.shapes.get(inp.name)
        if dims is None or len(dims) < 2:
            raise UnsupportedModelError(
                f"input '{inp.name}' has shape {_fmt_shape(dims)}; expected (batch, features...)"
            )
        batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None
        features: list[int] = []
        for axis, d in enumerate(dims[1:], start=1):
            if not isinstance(d, int) or d <= 0:
                raise UnsupportedModelError(
                    f"input '{inp.name}' has shape {_fmt_shape(dims)}: axis {axis} is dynamic;"
                    " only the batch (first) axis may be"
                )
            features.append(d)
        self.input_name = inp.name
        return _Value(ir=inp.name, features=tuple(features), batch=batch)

    def _weight_from_input(self, inputs: set[str]) -> str:
        """Name the node that reads a weight from a graph input: the usual cause of many inputs."""
        for index, node in enumerate(self.graph.node):
            if node.op_type in _MATRIX_OPS | {"Conv"}:
                for name in node.input[1:]:
                    if name in inputs:
                        label = _node_label(node, index)
                        return (
                            f"; node '{label}' ({node.op_type}) takes its weight from graph"
                            f" input '{name}' (weights must be initializers or constants)"
                        )
        return ""

    # ---- constants and weights

    def _const_input(self, node: onnx.NodeProto, label: str, pos: int, role: str) -> np.ndarray:
        name = node.input[pos]
        if name in self.consts:
            return self.consts[name]
        if name in self.computed:
            why = f"computed by node {self.computed[name]}"
        elif name in {i.name for i in self.graph.input}:
            why = "a graph input"
        else:
            why = "computed from the model input"
        raise _unsupported(
            label,
            node.op_type,
            f"{role} '{name}' is not a constant ({why}); weights must be"
            " initializers or Constant nodes",
        )

    # ---- the walk

    def _shape_of(self, node: onnx.NodeProto, tensor: str) -> np.ndarray:
        batch, features = self.seen[tensor]
        dims = np.array([_BATCH_DIM if batch is None else batch, *features], dtype=np.int64)
        start, end = int(_attr(node, "start", 0)), _attr(node, "end")
        return dims[start : None if end is None else int(end)]

    def run(self, name: str) -> MatrixGraph:
        start = self._start()
        self.values[start.ir] = start
        self.seen[start.ir] = (start.batch, start.features)
        for index, node in enumerate(self.graph.node):
            label = _node_label(node, index)
            if node.op_type == "Constant":
                for out in node.output:
                    self.consts[out] = _constant_value(node, label)
                continue
            if node.op_type == "Shape" and node.input[0] in self.seen:
                self.consts[node.output[0]] = self._shape_of(node, node.input[0])
                continue
            live = [n for n in node.input if n and n not in self.consts and n not in self.computed]
            if not live and not any(n in self.computed for n in node.input):
                if node.op_type in _FOLDABLE_OPS:
                    args = [self.consts[n] for n in node.input if n]
                    try:
                        self.consts[node.output[0]] = _fold(node, label, args)
                    except (ValueError, IndexError, TypeError) as e:
                        raise _unsupported(
                            label, node.op_type, f"cannot fold constants: {e}"
                        ) from e
                else:
                    for out in node.output:
                        self.computed[out] = f"'{label}' ({node.op_type})"
                continue
            if not live:
                for out in node.output:
                    self.computed[out] = f"'{label}' ({node.op_type})"
                continue
            value = self._step(node, label, live)
            self.values[node.output[0]] = value
            self.seen[node.output[0]] = (value.batch, value.features)
        return self._finish(name, start)

    def _step(self, node: onnx.NodeProto, label: str, live: list[str]) -> _Value:
        op = node.op_type
        if op not in _SUPPORTED_OPS:
            raise _unsupported(label, op, f"operator {op} is not supported by nnlcc yet")
        if op == "Add" and len(live) == 2:
            return self._residual_add(node, label, live)
        if len(live) > 1:
            raise _unsupported(
                label, op, "reads more than one computed tensor; only Add may join two branches"
            )
        v = self.values[live[0]]
        if op == "Gemm":
            return self._gemm(v, node, label)
        if op == "MatMul":
            return self._matmul(v, node, label)
        if op == "Conv":
            return self._conv(v, node, label)
        if op == "BatchNormalization":
            return self._batchnorm(v, node, label)
        if op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"):
            return self._pool(v, node, label)
        if op == "Add":
            return self._bias_add(v, node, label)
        if op == "Relu":
            return self._relu(v, node, label)
        if op in ("Flatten", "Reshape"):
            return self._flatten(v, node, label)
        if op == "Dropout":
            self._dropout(node, label)
        elif op != "Identity":
            raise _unsupported(label, op, f"{op} of the data path is not supported")
        return self._through(v, live[0])

    def _through(self, v: _Value, tensor: str) -> _Value:
        """The same IR tensor under a new ONNX name; folding stops if the old name is shared."""
        if self.consumers.get(tensor, 0) > 1:
            return dataclasses.replace(v, open=False, relu_ok=False)
        return v

    def _sole_reader(self, tensor: str) -> bool:
        return self.consumers.get(tensor, 0) == 1

    def _finish(self, name: str, start: _Value) -> MatrixGraph:
        out = self.graph.output[0].name
        v = self.values.get(out)
        if v is None:
            raise UnsupportedModelError(
                f"model output '{out}' is not computed from the input by supported layers"
            )
        if v.layer is None:
            raise UnsupportedModelError(
                "model has no Gemm or MatMul layer (nor Conv, pool or Add); nothing to compile"
            )
        if len(v.features) not in (1, 3):
            raise UnsupportedModelError(
                f"model output '{out}' has shape (batch, {', '.join(map(str, v.features))});"
                " expected (batch, features) or (batch, channels, height, width)"
            )
        if self.input_flat and self.input_image:
            raise UnsupportedModelError(
                f"input '{start.ir}' is read both as an image and flattened; not supported"
            )
        layers = self._live_layers(v.ir)
        input_shape: Shape = (start.size,) if self.input_flat else start.features
        if len(input_shape) not in (1, 3):
            raise UnsupportedModelError(
                f"input '{start.ir}' has shape (batch, {', '.join(map(str, start.features))});"
                " expected (batch, features) or (batch, channels, height, width)"
            )
        return MatrixGraph(
            name=name,
            input_name=start.ir,
            input_size=start.size,
            output_name=out,
            layers=layers,
            source=self.source,
            input_shape=input_shape,
        )

    def _live_layers(self, out_ir: str) -> list[Layer]:
        """Layers the output depends on (dead branches dropped), with ``inputs`` left empty
        where a layer reads the one before it (an MLP stays a plain chain)."""
        needed = {out_ir}
        for layer in reversed(self.layers):
            if layer.name in needed:
                needed.update(layer.inputs)
        layers = [layer for layer in self.layers if layer.name in needed]
        for i, layer in enumerate(layers):
            prev = layers[i - 1].name if i else self.input_name
            if layer.inputs == (prev,):
                layer.inputs = ()
        return layers

    def _new_layer(self, layer: Layer, v: _Value, label: str) -> None:
        layer.info.setdefault("onnx_nodes", [label])
        self.layers.append(layer)

    # ---- matrix layers

    def _need_flat(self, v: _Value, node: onnx.NodeProto, label: str) -> None:
        if not v.flat:
            raise _unsupported(
                label,
                node.op_type,
                f"input '{node.input[0]}' has shape (batch, {', '.join(map(str, v.features))});"
                " flatten it to (batch, features) first",
            )

    def _dense(
        self, v: _Value, node: onnx.NodeProto, label: str, w: np.ndarray, b: np.ndarray
    ) -> _Value:
        rows, cols = w.shape
        if rows == 0 or cols == 0:
            raise _unsupported(label, node.op_type, f"zero-size layer ({rows}x{cols})")
        if cols != v.size:
            raise _unsupported(
                label,
                node.op_type,
                f"weight expects {cols} inputs, but '{node.input[0]}' has {v.size} features",
            )
        _check_finite(label, node.op_type, "weight", w)
        _check_finite(label, node.op_type, "bias", b)
        if v.stream_image is not None:  # ONNX flattened channel-major; the IR in stream order
            c, h, wd = v.stream_image
            w = w.reshape(rows, c, h, wd).transpose(0, 2, 3, 1).reshape(rows, cols)
        name = _layer_name(label, node.op_type, self.layer_names, len(self.layers))
        layer = DenseLayer(
            name=name,
            weight=np.ascontiguousarray(w, dtype=np.float64),
            bias=np.asarray(b, dtype=np.float64),
            relu=False,
            info={"onnx_nodes": [label]},
            inputs=(v.ir,),
        )
        self._new_layer(layer, v, label)
        return _Value(name, (rows,), v.batch, layer, open=True, relu_ok=True)

    def _gemm(self, v: _Value, node: onnx.NodeProto, label: str) -> _Value:
        if node.input[0] not in self.values:
            raise _unsupported(
                label,
                "Gemm",
                f"the data '{node.input[1]}' must be operand A;"
                " weights must be initializers or Constant nodes",
            )
        unknown = {a.name for a in node.attribute} - _GEMM_ATTRS
        if unknown:
            raise _unsupported(label, "Gemm", f"attribute {sorted(unknown)[0]} is not supported")
        if _attr(node, "transA", 0):
            raise _unsupported(
                label, "Gemm", "transA=1 is not supported (input must be (batch, features))"
            )
        self._need_flat(v, node, label)
        bmat = np.asarray(self._const_input(node, label, 1, "weight input B"), dtype=np.float64)
        if bmat.ndim != 2:
            raise _unsupported(label, "Gemm", f"weight B has shape {_fmt_shape(list(bmat.shape))}")
        alpha = float(_attr(node, "alpha", 1.0))
        beta = float(_attr(node, "beta", 1.0))
        w = alpha * (bmat if _attr(node, "transB", 0) else bmat.T)
        rows = w.shape[0]
        if len(node.input) > 2 and node.input[2]:
            c = np.asarray(self._const_input(node, label, 2, "bias input C"), dtype=np.float64)
            b = beta * _bias_vector(label, "Gemm", c, rows)
        else:
            b = np.zeros(rows)
        return self._dense(v, node, label, w, b)

    def _matmul(self, v: _Value, node: onnx.NodeProto, label: str) -> _Value:
        if node.input[0] not in self.values:
            raise _unsupported(
                label,
                "MatMul",
                f"the data '{node.input[1]}' must be operand A;"
                " weights must be initializers or Constant nodes",
            )
        self._need_flat(v, node, label)
        m = np.asarray(self._const_input(node, label, 1, "weight input B"), dtype=np.float64)
        if m.ndim != 2:
            raise _unsupported(
                label, "MatMul", f"weight has shape {_fmt_shape(list(m.shape))}; expected 2-D"
            )
        return self._dense(v, node, label, m.T, np.zeros(m.shape[1]))

    def _need_image(self, v: _Value, node: onnx.NodeProto, label: str) -> tuple[int, int, int]:
        if len(v.features) != 3 or v.stream_image is not None:
            dims = ", ".join(map(str, v.features))
            raise _unsupported(
                label,
                node.op_type,
                f"input '{node.input[0]}' has shape (batch, {dims}); only 4-D"
                " (batch, channels, height, width) tensors are supported",
            )
        if v.layer is None:
            self.input_image = True
        c, h, w = v.features
        return c, h, w

    def _window(
        self,
        node: onnx.NodeProto,
        label: str,
        kernel: tuple[int, int],
        hw: tuple[int, int],
        allowed: set[str],
    ) -> Window:
        """Kernel, strides and pads of a Conv or pool node; refuses what nnlcc cannot build."""
        op = node.op_type
        for a in node.attribute:
            if a.name not in allowed:
                raise _unsupported(label, op, f"attribute {a.name} is not supported")
        dil = _pair(label, op, "dilations", _attr(node, "dilations"), 1)
        if dil != (1, 1):
            raise _unsupported(label, op, f"dilations={list(dil)} is not supported (only 1)")
        strides = _pair(label, op, "strides", _attr(node, "strides"), 1)
        auto_pad = _attr(node, "auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        if auto_pad == "NOTSET":
            pads = _pair(label, op, "pads", _attr(node, "pads"), 0, 4)
            pads = (pads[0], pads[1], pads[2], pads[3])  # ONNX: begins (t, l), then ends (b, r)
        elif auto_pad == "VALID":
            pads = (0, 0, 0, 0)
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            total = [
                max((-(-hw[a] // strides[a]) - 1) * strides[a] + kernel[a] - hw[a], 0)
                for a in (0, 1)
            ]
            small = [t // 2 for t in total]
            big = [t - t // 2 for t in total]
            if auto_pad == "SAME_UPPER":
                pads = (small[0], small[1], big[0], big[1])
            else:
                pads = (big[0], big[1], small[0], small[1])
        else:
            raise _unsupported(label, op, f"auto_pad={auto_pad} is not supported")
        if min(pads) < 0 or min(strides) < 1:
            raise _unsupported(label, op, f"pads={list(pads)} strides={list(strides)} invalid")
        try:
            win = Window(kernel, (strides[0], strides[1]), pads)
            ho, wo = win.out_hw(*hw)
        except ValueError as e:
            raise _unsupported(label, op, str(e)) from e
        if _attr(node, "ceil_mode", 0):
            ceil = tuple(
                -(-(hw[a] + pads[a] + pads[a + 2] - kernel[a]) // strides[a]) + 1 for a in (0, 1)
            )
            if ceil != (ho, wo):
                raise _unsupported(label, op, "ceil_mode=1 is not supported (changes the size)")
        return win

    def _conv(self, v: _Value, node: onnx.NodeProto, label: str) -> _Value:
        if node.input[0] not in self.values:
            raise _unsupported(
                label, "Conv", "the data must be input X; weights must be initializers"
            )
        w4 = np.asarray(self._const_input(node, label, 1, "weight input W"), dtype=np.float64)
        if w4.ndim != 4:
            raise _unsupported(
                label,
                "Conv",
                f"weight has shape {_fmt_shape(list(w4.shape))}; only 2-D convolutions"
                " (4-D weights) are supported",
            )
        c, h, w = self._need_image(v, node, label)
        group = int(_attr(node, "group", 1))
        if group != 1:
            raise _unsupported(
                label, "Conv", f"group={group} is not supported (grouped/depthwise convolution)"
            )
        cout, cin, kh, kw = w4.shape
        if cin != c:
            raise _unsupported(label, "Conv", f"weight expects {cin} channels, input has {c}")
        ks = _attr(node, "kernel_shape")
        if ks is not None and tuple(int(k) for k in ks) != (kh, kw):
            raise _unsupported(label, "Conv", f"kernel_shape={list(ks)} vs weight {kh}x{kw}")
        win = self._window(
            node,
            label,
            (kh, kw),
            (h, w),
            {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"},
        )
        if len(node.input) > 2 and node.input[2]:
            b = np.asarray(self._const_input(node, label, 2, "bias input B"), np.float64)
            if b.shape != (cout,):
                raise _unsupported(label, "Conv", f"bias has shape {_fmt_shape(list(b.shape))}")
        else:
            b = np.zeros(cout)
        if cout == 0 or w4.size == 0:
            raise _unsupported(label, "Conv", "zero-size convolution")
        _check_finite(label, "Conv", "weight", w4)
        _check_finite(label, "Conv", "bias", b)
        name = _layer_name(label, "Conv", self.layer_names, len(self.layers), "conv")
        layer = ConvLayer(
            name=name,
            weight=conv_matrix(w4),
            bias=b.copy(),
            info={"onnx_nodes": [label]},
            inputs=(v.ir,),
            image=(c, h, w),
            window=win,
        )
        self._new_layer(layer, v, label)
        return _Value(name, layer.out_shape, v.batch, layer, open=True, relu_ok=True)

    def _batchnorm(self, v: _Value, node: onnx.NodeProto, label: str) -> _Value:
        """Fold into the matrix layer before it when this node alone reads that layer's output;
        otherwise a diagonal matrix layer (1x1 conv on images) computes it."""
        op = "BatchNormalization"
        if _attr(node, "training_mode", 0):
            raise _unsupported(label, op, "training_mode=1; export the model for inference")
        if len(node.output) > 1 and any(self.consumers.get(o, 0) for o in node.output[1:] if o):
            raise _unsupported(label, op, "running mean/var outputs are used (training mode)")
        if node.input[0] not in self.values:
            raise _unsupported(label, op, "the data must be input X")
        scale, bias, mean, var = (
            np.asarray(self._const_input(node, label, k, role), dtype=np.float64).reshape(-1)
            for k, role in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var"))
        )
        channels = v.features[0]
        if len(v.features) not in (1, 3) or v.stream_image is not None:
            raise _unsupported(
                label,
                op,
                f"input has shape (batch, {', '.join(map(str, v.features))}); only 2-D and 4-D"
                " inputs are supported",
            )
        if not all(len(a) == channels for a in (scale, bias, mean, var)):
            raise _unsupported(label, op, f"parameters do not have {channels} channels")
        eps = float(_attr(node, "epsilon", 1e-5))
        s = scale / np.sqrt(var + eps)
        shift = bias - mean * s
        _check_finite(label, op, "folded scale", s)
        _check_finite(label, op, "folded shift", shift)
        layer = v.layer
        if isinstance(layer, MatrixLayer) and v.open and self._sole_reader(node.input[0]):
            layer.weight = layer.weight * s[:, None]
            layer.bias = layer.bias * s + shift
            layer.info["onnx_nodes"].append(label)
            return dataclasses.replace(v)
        name = _layer_name(label, op, self.layer_names, len(self.layers), "bn")
        common = {
            "name": name,
            "weight": np.diag(s),
            "bias": shift,
            "info": {"onnx_nodes": [label], "batchnorm": True},
            "inputs": (v.ir,),
        }
        new: MatrixLayer
        if len(v.features) == 3:
            if v.layer is None:
                self.input_image = True
            new = ConvLayer(**common, image=v.features, window=Window((1, 1)))  # type: ignore[arg-type]
        else:
            new = DenseLayer(**common)  # type: ignore[arg-type]
        self._new_layer(new, v, label)
        return _Value(name, v.features, v.batch, new, open=True, relu_ok=True)

    # ---- pools, adds, activations, reshapes

    def _pool(self, v: _Value, node: onnx.NodeProto, label: str) -> _Value:
        op = node.op_type
        c, h, w = self._need_image(v, node, label)
        if len(node.output) > 1 and node.output[1] and self.consumers.get(node.output[1], 0):
            raise _unsupported(label, op, "the Indices output is used")
        if op.startswith("Global"):
            win = Window((h, w))
        else:
            ks = _attr(node, "kernel_shape")
            kernel = _pair(label, op, "kernel_shape", ks, 1)
            allowed = {"kernel_shape", "strides", "pads", "auto_pad", "ceil_mode", "dilations"}
            if op == "MaxPool":
                allowed.add("storage_order")
            else:
                allowed.add("count_include_pad")
            win = self._window(node, label, (kernel[0], kernel[1]), (h, w), allowed)
            if op == "AveragePool" and any(win.pads) and not _attr(node, "count_include_pad", 0):
                raise _unsupported(
                    label,
                    op,
                    "count_include_pad=0 with padding is not supported (the divisor would vary"
                    " at the border); export with count_include_pad=1",
                )
        kind: Literal["max", "avg"] = "max" if "Max" in op else "avg"
        name = _layer_name(label, op, self.layer_names, len(self.layers), "pool")
        layer = PoolLayer(
            name=name,
            op=kind,
            image=(c, h, w),
            window=win,
            info={"onnx_nodes": [label]},
            inputs=(v.ir,),
        )
        self._new_layer(layer, v, label)
        return _Value(name, layer.out_shape, v.batch, layer, relu_ok=True)

    def _residual_add(self, node: onnx.NodeProto, label: str, live: list[str]) -> _Value:
        a, b = (self.values[t] for t in live)
        if a.features != b.features or a.stream_image != b.stream_image:
            raise _unsupported(
                label,
                "Add",
                f"adds shapes (batch, {', '.join(map(str, a.features))}) and"
                f" (batch, {', '.join(map(str, b.features))}); only equal shapes (no broadcast)",
            )
        if len(a.features) not in (1, 3):
            raise _unsupported(label, "Add", "only 2-D and 4-D tensors can be added")
        for x in (a, b):
            if x.layer is None:
                if len(x.features) == 3:
                    self.input_image = True
                else:
                    self.input_flat = True
        name = _layer_name(label, "Add", self.layer_names, len(self.layers), "add")
        layer = AddLayer(
            name=name, inputs=(a.ir, b.ir), shape=a.features, info={"onnx_nodes": [label]}
        )
        self._new_layer(layer, a, label)
        return _Value(name, a.features, a.batch, layer, relu_ok=True, stream_image=a.stream_image)

    def _bias_add(self, v: _Value, node: onnx.NodeProto, label: str) -> _Value:
        data = node.input[0] if node.input[0] in self.values else node.input[1]
        layer = v.layer
        if not (isinstance(layer, MatrixLayer) and v.open and self._sole_reader(data)):
            raise _unsupported(
                label,
                "Add",
                "only a constant bias directly after Gemm, MatMul or Conv can be added",
            )
        pos = 1 if data == node.input[0] else 0
        c = np.asarray(self._const_input(node, label, pos, "bias input"), dtype=np.float64)
        if isinstance(layer, ConvLayer):
            b = _channel_vector(label, "Add", c, layer.shape[0])
        else:
            b = _bias_vector(label, "Add", c, layer.shape[0])
        _check_finite(label, "Add", "bias", b)
        layer.bias = layer.bias + b
        layer.info["onnx_nodes"].append(label)
        return dataclasses.replace(v)

    def _relu(self, v: _Value, node: onnx.NodeProto, label: str) -> _Value:
        layer = v.layer
        if layer is None or isinstance(layer, FlattenLayer) or not v.relu_ok:
            raise _unsupported(
                label,
                "Relu",
                "Relu must directly follow a Gemm, MatMul, Conv, pool or Add layer",
            )
        if not self._sole_reader(node.input[0]):
            raise _unsupported(
                label, "Relu", f"'{node.input[0]}' is also read before the Relu; not supported"
            )
        layer.relu = True
        return dataclasses.replace(v, open=False, relu_ok=False)

    def _flatten(self, v: _Value, node: onnx.NodeProto, label: str) -> _Value:
        """Accept only reshapes that keep the batch axis and make (batch, features)."""
        rank = len(v.features) + 1
        if node.op_type == "Flatten":
            axis = int(_attr(node, "axis", 1))
            if axis < 0:
                axis += rank
            if axis != 1:
                raise _unsupported(
                    label,
                    "Flatten",
                    f"axis={axis} mixes the batch axis into features; only axis=1 is supported",
                )
        else:
            shape_attr = _attr(node, "shape")
            if shape_attr is not None:
                target = [int(x) for x in shape_attr]
            else:
                shape = self._const_input(node, label, 1, "shape input")
                target = [int(x) for x in np.asarray(shape).reshape(-1)]
            if not self._keeps_batch_flat(v, target, bool(_attr(node, "allowzero", 0))):
                raise _unsupported(
                    label,
                    "Reshape",
                    f"reshape of (batch, {', '.join(map(str, v.features))})"
                    f" to {target} is not a flatten to (batch, {v.size})",
                )
        if v.flat:
            return self._through(v, node.input[0])
        if v.layer is None:  # the input as a vector: ONNX order is the IR's order
            self.input_flat = True
            return _Value(v.ir, (v.size,), v.batch)
        if len(v.features) != 3:
            raise _unsupported(label, node.op_type, "only images (C, H, W) can be flattened")
        name = _layer_name(label, node.op_type, self.layer_names, len(self.layers), "flatten")
        layer = FlattenLayer(
            name=name, image=v.features, info={"onnx_nodes": [label]}, inputs=(v.ir,)
        )
        self._new_layer(layer, v, label)
        return _Value(name, (v.size,), v.batch, layer, stream_image=v.features)

    @staticmethod
    def _keeps_batch_flat(v: _Value, target: list[int], allowzero: bool) -> bool:
        if len(target) != 2:
            return False
        first, second = target
        batch_ok = (
            first in (-1, _BATCH_DIM)
            or (first == 0 and not allowzero)
            or (v.batch is not None and first == v.batch)
        )
        feat_ok = (
            second == v.size
            or (second == -1 and first != -1)
            or (second == 0 and not allowzero and v.flat)
        )
        return batch_ok and feat_ok

    def _dropout(self, node: onnx.NodeProto, label: str) -> None:
        if (
            len(node.output) > 1
            and node.output[1]
            and (
                self.consumers.get(node.output[1], 0) or node.output[1] == self.graph.output[0].name
            )
        ):
            raise _unsupported(label, "Dropout", "the dropout mask output is used")
        if len(node.input) > 2 and node.input[2]:
            mode = self._const_input(node, label, 2, "training_mode input")
            if bool(np.asarray(mode).reshape(-1)[0]):
                raise _unsupported(label, "Dropout", "training_mode is true; export for inference")


# --------------------------------------------------------------------------- public API


def load_onnx(path: str | Path) -> MatrixGraph:
    """Import an ONNX MLP or CNN as a :class:`MatrixGraph` (see the module docstring)."""
    model = _read_model(path)
    p = Path(path)
    graph = _Importer(model, str(p)).run(p.stem)
    graph.verify()
    return graph


def inspect_onnx(path: str | Path) -> list[dict[str, Any]]:
    """One row per node (op, name, shapes, whether nnlcc can import it and why not).

    The per-op verdict comes from the operator table; the first problem the full import hits
    is then written on the row of the node it names, so ``inspect`` and ``compile`` agree.
    """
    model = _read_model(path)
    shapes = _Shapes.of(model)
    rows: list[dict[str, Any]] = []
    for index, node in enumerate(model.graph.node):
        ok = node.op_type in _SUPPORTED_OPS
        rows.append(
            {
                "index": index,
                "name": _node_label(node, index),
                "op": node.op_type,
                "inputs": list(node.input),
                "outputs": list(node.output),
                "in_shapes": [_fmt_shape(shapes.get(n)) for n in node.input if n],
                "out_shapes": [_fmt_shape(shapes.get(n)) for n in node.output if n],
                "supported": ok,
                "reason": "" if ok else f"operator {node.op_type} is not supported by nnlcc yet",
            }
        )
    try:
        _Importer(model, str(path)).run(Path(path).stem)
    except UnsupportedModelError as e:
        label = getattr(e, "node", None)
        for row in rows:
            if row["name"] == label:
                row["supported"] = False
                row["reason"] = str(e).split("): ", 1)[-1]
    return rows


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


def onnx_reference(path: str | Path, x: npt.ArrayLike) -> FloatArray:
    """Float outputs of the model on a batch, by onnxruntime: the accuracy the user trained.

    ``x`` is (batch, input_size) or already the model's input shape.  A model exported with a
    fixed batch runs chunk by chunk (the last chunk zero-padded).  Opsets too old for
    onnxruntime fall back to ONNX's reference evaluator.
    """
    model = _read_model(path)
    inputs = [
        i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    if len(inputs) != 1:
        raise UnsupportedModelError(f"model has {len(inputs)} inputs; nnlcc needs exactly one")
    inp = inputs[0]
    dims = _Shapes.of(model).get(inp.name) or []
    features = [d for d in dims[1:] if isinstance(d, int) and d > 0]
    if len(dims) < 2 or len(features) != len(dims) - 1:
        raise UnsupportedModelError(f"input '{inp.name}' has shape {_fmt_shape(dims)}")
    dtype = onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
    xs = np.asarray(x, dtype=np.float64)
    n = len(xs)
    if xs.size != n * math.prod(features):
        raise BadInputError(
            f"data of shape {xs.shape} does not fit input '{inp.name}' {_fmt_shape(dims)}"
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
    try:
        outs = _run_session(model.SerializeToString(), feeds, inp.name)
    except Exception as first:  # ORT raises its own unrelated classes
        try:
            outs = _run_reference(model, feeds, inp.name)
        except Exception as e:
            raise BadInputError(
                f"model file '{path}' cannot be run: {_one_line(str(first))}"
            ) from e
    if not outs:
        return np.zeros((0, 0))
    y: FloatArray = np.concatenate(
        [np.asarray(o, dtype=np.float64).reshape(len(o), -1) for o in outs]
    )
    return y[:n]
