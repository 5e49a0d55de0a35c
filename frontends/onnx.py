"""Import a trained ONNX multilayer perceptron into the matrix IR.

The importer walks the graph once as a single chain from the one input to the one output.
Matrix nodes (Gemm, MatMul + constant Add) become :class:`~nnlcc.matrix_ir.DenseLayer` s, Relu
marks the layer before it, and shape-only nodes (Flatten, Reshape to (batch, features),
Identity, Dropout) vanish.  Anything else stops the import with one line naming the node, so a
user sees at once which part of the model nnlcc cannot compile yet.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import onnx
from google.protobuf.message import DecodeError

from nnlcc.errors import BadInputError, UnsupportedModelError
from nnlcc.matrix_ir import DenseLayer, FloatArray, MatrixGraph

__all__ = ["inspect_onnx", "load_onnx", "onnx_reference"]

# Ops that only move data around for an MLP: they vanish from the matrix IR.
_NOOP_OPS = frozenset({"Identity", "Dropout", "Flatten", "Reshape"})
_MATRIX_OPS = frozenset({"Gemm", "MatMul"})
# Ops folded away when all their inputs are constants: weights stored transposed or as fp16,
# and the Shape -> Gather -> Unsqueeze -> Concat arithmetic torch writes for x.view(x.size(0), -1).
_FOLDABLE_OPS = frozenset(
    {"Identity", "Transpose", "Cast", "Gather", "Unsqueeze", "Squeeze", "Concat"}
)
_SUPPORTED_OPS = _MATRIX_OPS | _NOOP_OPS | _FOLDABLE_OPS | {"Add", "Relu", "Constant", "Shape"}
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


# --------------------------------------------------------------------------- the chain walk


@dataclass
class _Chain:
    """State of the walk: the tensor carrying the data and what it looks like."""

    tensor: str
    features: tuple[int, ...]  # non-batch dims of ``tensor``
    batch: int | None  # fixed batch size, None when symbolic
    layers: list[DenseLayer] = field(default_factory=list)
    # True while the last real op was a matrix layer or its bias add: an Add or Relu may join it.
    open_layer: bool = False

    @property
    def flat(self) -> bool:
        return len(self.features) == 1

    @property
    def size(self) -> int:
        return math.prod(self.features)


def _layer_name(label: str, op: str, taken: set[str], index: int) -> str:
    """A Verilog/Python-safe, unique layer name derived from the ONNX node name.

    Torch names nodes ``/fc1/Gemm`` (module path, then op): the module path is the useful part.
    """
    parts = [p for p in label.split("/") if p]
    if len(parts) > 1 and parts[-1].startswith(op):
        parts = parts[:-1]
    name = re.sub(r"[^0-9A-Za-z_]+", "_", "_".join(parts)).strip("_") or f"dense{index}"
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


class _Importer:
    """One pass over a checked model; produces the layers or raises naming the node."""

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
        # Shapes of the tensors the data path went through, for Shape nodes reading them.
        self.seen: dict[str, tuple[int | None, tuple[int, ...]]] = {}
        self.layer_names: set[str] = set()

    # ---- graph boundary

    def _data_inputs(self) -> list[onnx.ValueInfoProto]:
        # Before IR v4 every initializer is also listed as a graph input.
        return [i for i in self.graph.input if i.name not in self.consts]

    def _start(self) -> _Chain:
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
        return _Chain(tensor=inp.name, features=tuple(features), batch=batch)

    def _weight_from_input(self, inputs: set[str]) -> str:
        """Name the node that reads a weight from a graph input: the usual cause of many inputs."""
        for index, node in enumerate(self.graph.node):
            if node.op_type in _MATRIX_OPS:
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
        chain = self._start()
        self.seen[chain.tensor] = (chain.batch, chain.features)
        input_name, input_size = chain.tensor, chain.size
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
            self._step(chain, node, label, live)
        self._finish(chain)
        return MatrixGraph(
            name=name,
            input_name=input_name,
            input_size=input_size,
            output_name=self.graph.output[0].name,
            layers=chain.layers,
            source=self.source,
        )

    def _step(self, chain: _Chain, node: onnx.NodeProto, label: str, live: list[str]) -> None:
        op = node.op_type
        if op not in _SUPPORTED_OPS:
            raise _unsupported(label, op, f"operator {op} is not supported for MLPs yet")
        if len(live) > 1 or live[0] != chain.tensor:
            raise _unsupported(
                label, op, "reads more than one computed tensor; branching graphs are not supported"
            )
        if op == "Gemm":
            self._gemm(chain, node, label)
        elif op == "MatMul":
            self._matmul(chain, node, label)
        elif op == "Add":
            self._add(chain, node, label)
        elif op == "Relu":
            if not chain.open_layer:
                raise _unsupported(label, op, "Relu must directly follow a Gemm or MatMul layer")
            chain.layers[-1].relu = True
            chain.open_layer = False
        elif op in ("Flatten", "Reshape"):
            self._flatten(chain, node, label)
        elif op == "Dropout":
            self._dropout(node, label)
        elif (op in _FOLDABLE_OPS and op != "Identity") or op == "Shape":
            raise _unsupported(label, op, f"{op} of the data path is not supported")
        self._advance(chain, node, label)

    def _advance(self, chain: _Chain, node: onnx.NodeProto, label: str) -> None:
        """Move the chain to the node's first output, refusing forks of the data path."""
        out = node.output[0]
        uses = self.consumers.get(out, 0) + (1 if out == self.graph.output[0].name else 0)
        if uses > 1:
            raise _unsupported(
                label,
                node.op_type,
                f"output '{out}' is used {uses} times; branching graphs are not supported",
            )
        chain.tensor = out
        self.seen[out] = (chain.batch, chain.features)

    def _finish(self, chain: _Chain) -> None:
        out = self.graph.output[0].name
        if chain.tensor != out:
            raise UnsupportedModelError(
                f"model output '{out}' is not computed by the chain of layers from the input"
                f" (the chain ends at '{chain.tensor}')"
            )
        if not chain.layers:
            raise UnsupportedModelError("model has no Gemm or MatMul layer; nothing to compile")
        if not chain.flat:
            raise UnsupportedModelError(
                f"model output '{out}' has shape (batch, {', '.join(map(str, chain.features))});"
                " expected (batch, features)"
            )

    def _need_flat(self, chain: _Chain, node: onnx.NodeProto, label: str) -> None:
        if not chain.flat:
            raise _unsupported(
                label,
                node.op_type,
                f"input '{chain.tensor}' has shape (batch, {', '.join(map(str, chain.features))});"
                " flatten it to (batch, features) first",
            )

    def _add_layer(
        self, chain: _Chain, node: onnx.NodeProto, label: str, w: np.ndarray, b: np.ndarray
    ) -> None:
        rows, cols = w.shape
        if rows == 0 or cols == 0:
            raise _unsupported(label, node.op_type, f"zero-size layer ({rows}x{cols})")
        if cols != chain.size:
            raise _unsupported(
                label,
                node.op_type,
                f"weight expects {cols} inputs, but '{chain.tensor}' has {chain.size} features",
            )
        _check_finite(label, node.op_type, "weight", w)
        _check_finite(label, node.op_type, "bias", b)
        name = _layer_name(label, node.op_type, self.layer_names, len(chain.layers))
        chain.layers.append(
            DenseLayer(
                name=name,
                weight=np.ascontiguousarray(w, dtype=np.float64),
                bias=np.asarray(b, dtype=np.float64),
                relu=False,
                info={"onnx_nodes": [label]},
            )
        )
        chain.features = (rows,)
        chain.open_layer = True

    def _gemm(self, chain: _Chain, node: onnx.NodeProto, label: str) -> None:
        if node.input[0] != chain.tensor:
            raise _unsupported(
                label,
                "Gemm",
                f"the data '{chain.tensor}' must be operand A;"
                " weights must be initializers or Constant nodes",
            )
        unknown = {a.name for a in node.attribute} - _GEMM_ATTRS
        if unknown:
            raise _unsupported(label, "Gemm", f"attribute {sorted(unknown)[0]} is not supported")
        if _attr(node, "transA", 0):
            raise _unsupported(
                label, "Gemm", "transA=1 is not supported (input must be (batch, features))"
            )
        self._need_flat(chain, node, label)
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
        self._add_layer(chain, node, label, w, b)

    def _matmul(self, chain: _Chain, node: onnx.NodeProto, label: str) -> None:
        if node.input[0] != chain.tensor:
            raise _unsupported(
                label,
                "MatMul",
                f"the data '{chain.tensor}' must be operand A;"
                " weights must be initializers or Constant nodes",
            )
        self._need_flat(chain, node, label)
        m = np.asarray(self._const_input(node, label, 1, "weight input B"), dtype=np.float64)
        if m.ndim != 2:
            raise _unsupported(
                label, "MatMul", f"weight has shape {_fmt_shape(list(m.shape))}; expected 2-D"
            )
        self._add_layer(chain, node, label, m.T, np.zeros(m.shape[1]))

    def _add(self, chain: _Chain, node: onnx.NodeProto, label: str) -> None:
        if not chain.open_layer:
            raise _unsupported(
                label, "Add", "only a constant bias directly after Gemm or MatMul can be added"
            )
        pos = 1 if node.input[0] == chain.tensor else 0
        c = np.asarray(self._const_input(node, label, pos, "bias input"), dtype=np.float64)
        layer = chain.layers[-1]
        b = _bias_vector(label, "Add", c, layer.shape[0])
        _check_finite(label, "Add", "bias", b)
        layer.bias = layer.bias + b
        layer.info["onnx_nodes"].append(label)

    def _flatten(self, chain: _Chain, node: onnx.NodeProto, label: str) -> None:
        """Accept only reshapes that keep the batch axis and make (batch, features)."""
        rank = len(chain.features) + 1
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
                target = [int(v) for v in shape_attr]
            else:
                shape = self._const_input(node, label, 1, "shape input")
                target = [int(v) for v in np.asarray(shape).reshape(-1)]
            if not self._keeps_batch_flat(chain, target, bool(_attr(node, "allowzero", 0))):
                raise _unsupported(
                    label,
                    "Reshape",
                    f"reshape of (batch, {', '.join(map(str, chain.features))})"
                    f" to {target} is not a flatten to (batch, {chain.size})",
                )
        chain.features = (chain.size,)

    @staticmethod
    def _keeps_batch_flat(chain: _Chain, target: list[int], allowzero: bool) -> bool:
        if len(target) != 2:
            return False
        first, second = target
        batch_ok = (
            first in (-1, _BATCH_DIM)
            or (first == 0 and not allowzero)
            or (chain.batch is not None and first == chain.batch)
        )
        feat_ok = (
            second == chain.size
            or (second == -1 and first != -1)
            or (second == 0 and not allowzero and chain.flat)
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
    """Import an ONNX MLP (Gemm/MatMul/Add/Relu chain) as a :class:`MatrixGraph`."""
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
                "reason": "" if ok else f"operator {node.op_type} is not supported for MLPs yet",
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
