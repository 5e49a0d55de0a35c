"""The DAG walk: one pass over a checked model in node order, from the one input to the one
output, mapping every computed ONNX tensor to an IR tensor (a :class:`Value`).

A node that reads no computed tensor is evaluated when the operator table has a folder for it
and its inputs are constants, and otherwise only remembered (an error names it if a weight
turns out to be computed by it).  A node on the data path goes to its op's handler in the
table (:mod:`nnlcc.frontends.onnx.registry`); an op the table does not know, or knows only as
a constant folder, stops the import with one line naming the node.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from nnlcc.errors import UnsupportedModelError
from nnlcc.frontends.onnx.nodes import layer_name, node_label, unsupported
from nnlcc.frontends.onnx.read import Shapes, fmt_shape, initializers, read_model
from nnlcc.frontends.onnx.registry import lookup, supported_ops
from nnlcc.frontends.onnx.values import Step, Value
from nnlcc.ir.matrix import Layer, MatrixGraph, Shape
from nnlcc.ir.notes import OnnxNodes
from nnlcc.ir.recurrent import RecurrentLayer

__all__ = ["Importer", "inspect_onnx", "load_onnx"]

# Element types the model input may have.
_FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.DOUBLE,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
    }
)


class Importer:
    """One pass over a checked model in node order; produces the layers or raises naming the
    node.  Handlers read and update its state through the public attributes and methods."""

    def __init__(self, model: onnx.ModelProto, source: str) -> None:
        self.model = model
        self.graph = model.graph
        self.source = source
        self.shapes = Shapes.of(model)
        self.consts: dict[str, np.ndarray] = initializers(model)
        # Outputs of constant-only nodes we do not evaluate: named so a weight error can say why.
        self.computed: dict[str, str] = {}
        self.consumers: dict[str, int] = {}
        for node in self.graph.node:
            entry = lookup(node.op_type)
            if entry is not None and entry.metadata_only:
                continue  # reads only metadata: does not fork the data path
            for name in node.input:
                if name:
                    self.consumers[name] = self.consumers.get(name, 0) + 1
        out = self.graph.output[0].name if self.graph.output else ""
        self.consumers[out] = self.consumers.get(out, 0) + 1
        self.values: dict[str, Value] = {}
        self.layers: list[Layer] = []
        self.layer_names: set[str] = set()
        self.input_name = ""
        self.input_flat = False  # the graph input is only ever read flattened
        self.input_image = False  # ... or as an image
        # What an op module keeps across nodes (by module), and its checks once all nodes
        # are read (e.g. :mod:`.quant`: quantizers waiting for their layer).
        self.state: dict[str, Any] = {}
        self.on_finish: list[Callable[[], None]] = []

    # ---- graph boundary

    def _data_inputs(self) -> list[onnx.ValueInfoProto]:
        return [i for i in self.graph.input if i.name not in self.consts]

    def _start(self) -> Value:
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
                f"input '{inp.name}' has shape {fmt_shape(dims)}; expected (batch, features...)"
            )
        batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None
        features: list[int] = []
        for axis, d in enumerate(dims[1:], start=1):
            if isinstance(d, int) and d <= 0:
                raise UnsupportedModelError(
                    f"input '{inp.name}' has shape {fmt_shape(dims)}: axis {axis} has size {d};"
                    " every feature axis needs at least one element"
                )
            if not isinstance(d, int):
                raise UnsupportedModelError(
                    f"input '{inp.name}' has shape {fmt_shape(dims)}: axis {axis} is dynamic;"
                    " only the batch (first) axis may be"
                )
            features.append(d)
        self.input_name = inp.name
        return Value(ir=inp.name, features=tuple(features), batch=batch)

    def _weight_from_input(self, inputs: set[str]) -> str:
        """Name the node that reads a weight from a graph input: the usual cause of many inputs."""
        for index, node in enumerate(self.graph.node):
            entry = lookup(node.op_type)
            if entry is None or not entry.weights:
                continue
            for name in node.input[1:]:
                if name in inputs:
                    label = node_label(node, index)
                    return (
                        f"; node '{label}' ({node.op_type}) takes its weight from graph"
                        f" input '{name}' (weights must be initializers or constants)"
                    )
        return ""

    # ---- the walk

    def run(self, name: str) -> MatrixGraph:
        start = self._start()
        self.values[start.ir] = start
        for index, node in enumerate(self.graph.node):
            label = node_label(node, index)
            live = [n for n in node.input if n and n not in self.consts and n not in self.computed]
            if not live:
                self._off_data_path(node, label)
                continue
            out = self._step(node, label, live)
            if isinstance(out, Value):
                self.values[node.output[0]] = out
            else:  # known at import time (the Shape of a data tensor)
                self.consts[node.output[0]] = out
        return self._finish(name, start)

    def _off_data_path(self, node: onnx.NodeProto, label: str) -> None:
        """A node reading no computed tensor: folded if it can be, else only remembered."""
        entry = lookup(node.op_type)
        if entry is None or entry.folder is None or any(n in self.computed for n in node.input):
            for out in node.output:
                self.computed[out] = f"'{label}' ({node.op_type})"
            return
        args = [self.consts[n] for n in node.input if n]
        try:
            self.consts[node.output[0]] = entry.folder(node, label, args)
        except (ValueError, IndexError, TypeError) as e:
            raise unsupported(label, node.op_type, f"cannot fold constants: {e}") from e

    def _step(self, node: onnx.NodeProto, label: str, live: list[str]) -> Value | np.ndarray:
        op = node.op_type
        entry = lookup(op)
        if entry is None:
            raise unsupported(label, op, f"operator {op} is not supported by nnlcc yet")
        if len(live) > entry.joins:
            raise unsupported(
                label, op, "reads more than one computed tensor; only Add may join two branches"
            )
        if entry.handler is None:
            raise unsupported(label, op, f"{op} of the data path is not supported")
        step = Step(node, label, tuple(live), tuple(self.values[t] for t in live))
        lead = next((v for v in step.inputs if v.lead or v.time_axis >= 0), None)
        if lead is not None and not (entry.sequences or entry.metadata_only):
            dims = ", ".join(map(str, [*lead.lead, "batch", *lead.features]))
            raise unsupported(
                label,
                op,
                f"reads '{live[0]}' of shape ({dims}), a sequence; take the last hidden state"
                " (Y_h, or Y's last step) and squeeze it to (batch, features) first",
            )
        return entry.handler(self, step)

    def _finish(self, name: str, start: Value) -> MatrixGraph:
        for check in self.on_finish:
            check()
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
        if v.lead or v.time_axis >= 0:
            raise UnsupportedModelError(
                f"model output '{out}' is a sequence; take the last hidden state (Y_h, or Y's"
                " last step) and squeeze it to (batch, features)"
            )
        layers = self._live_layers(v.ir)
        input_shape: Shape = (start.size,) if self.input_flat else start.features
        sequence = len(input_shape) == 2 and isinstance(layers[0], RecurrentLayer)
        if not sequence and len(input_shape) not in (1, 3):
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

    # ---- for the handlers

    def const_input(self, node: onnx.NodeProto, label: str, pos: int, role: str) -> np.ndarray:
        """Input ``pos`` of the node, which must be a constant (a weight, a bias, a shape)."""
        name = node.input[pos]
        if name in self.consts:
            return self.consts[name]
        if name in self.computed:
            why = f"computed by node {self.computed[name]}"
        elif name in {i.name for i in self.graph.input}:
            why = "a graph input"
        else:
            why = "computed from the model input"
        raise unsupported(
            label,
            node.op_type,
            f"{role} '{name}' is not a constant ({why}); weights must be"
            " initializers or Constant nodes",
        )

    def through(self, v: Value, tensor: str) -> Value:
        """The same IR tensor under a new ONNX name; folding stops if the old name is shared."""
        if self.consumers.get(tensor, 0) > 1:
            return dataclasses.replace(v, open=False, relu_ok=False)
        return v

    def sole_reader(self, tensor: str) -> bool:
        return self.consumers.get(tensor, 0) == 1

    def new_name(self, label: str, op: str, kind: str = "dense") -> str:
        """A unique layer name for the layer the node becomes (see :func:`layer_name`)."""
        return layer_name(label, op, self.layer_names, len(self.layers), kind)

    def add_layer(self, layer: Layer, label: str) -> None:
        if OnnxNodes not in layer.notes:
            layer.notes.put(OnnxNodes([label]))
        self.layers.append(layer)

    def need_flat(self, v: Value, node: onnx.NodeProto, label: str) -> None:
        if not v.flat:
            raise unsupported(
                label,
                node.op_type,
                f"input '{node.input[0]}' has shape (batch, {', '.join(map(str, v.features))});"
                " flatten it to (batch, features) first",
            )

    def need_image(self, v: Value, node: onnx.NodeProto, label: str) -> tuple[int, int, int]:
        if len(v.features) != 3 or v.stream_image is not None:
            dims = ", ".join(map(str, v.features))
            raise unsupported(
                label,
                node.op_type,
                f"input '{node.input[0]}' has shape (batch, {dims}); only 4-D"
                " (batch, channels, height, width) tensors are supported",
            )
        if v.layer is None:
            self.input_image = True
        c, h, w = v.features
        return c, h, w


# --------------------------------------------------------------------------- public API


def load_onnx(path: str | Path) -> MatrixGraph:
    """Import an ONNX MLP or CNN as a :class:`MatrixGraph` (see the package docstring)."""
    model = read_model(path)
    p = Path(path)
    graph = Importer(model, str(p)).run(p.stem)
    graph.verify()
    return graph


def inspect_onnx(path: str | Path) -> list[dict[str, Any]]:
    """One row per node (op, name, shapes, whether nnlcc can import it and why not).

    The per-op verdict comes from the operator table; the first problem the full import hits
    is then written on the row of the node it names, so ``inspect`` and ``compile`` agree.
    """
    model = read_model(path)
    shapes = Shapes.of(model)
    known = set(supported_ops())
    rows: list[dict[str, Any]] = []
    for index, node in enumerate(model.graph.node):
        ok = node.op_type in known
        rows.append(
            {
                "index": index,
                "name": node_label(node, index),
                "op": node.op_type,
                "inputs": list(node.input),
                "outputs": list(node.output),
                "in_shapes": [fmt_shape(shapes.get(n)) for n in node.input if n],
                "out_shapes": [fmt_shape(shapes.get(n)) for n in node.output if n],
                "supported": ok,
                "reason": "" if ok else f"operator {node.op_type} is not supported by nnlcc yet",
            }
        )
    try:
        Importer(model, str(path)).run(Path(path).stem)
    except UnsupportedModelError as e:
        label = getattr(e, "node", None)
        for row in rows:
            if row["name"] == label:
                row["supported"] = False
                row["reason"] = str(e).split("): ", 1)[-1]
    return rows
