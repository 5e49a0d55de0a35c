"""The text form of the matrix IR: :func:`print_graph` writes a :class:`MatrixGraph` and
:func:`parse_graph` reads it back, so that ``print_graph(parse_graph(t)) == t`` and the parsed
graph lowers to the same adder graphs and computes the same floats.

One block per layer, a header line at column 0 and its body indented below it; matrices are
written one row per line, so a pass that changes a layer reads as a line diff::

    graph digits_mlp input=x shape=64 fmt=u8.7 output=logits
      source "examples/digits_mlp.onnx"

    dense fc2 10x16 relu=0 in=u8.4 out=s8.2
      info {"onnx_nodes": ["Gemm /fc2/Gemm"]}
      bias 0.0172 -0.0911 ...
      weight
        0.25 -0.125 ...                      (one line per row, rows = outputs)
      code csd frac=8 cse=1
        64 -32 ...                           (the CSD integers, one line per row)

Other layer headers: ``conv NAME RxC image=CxHxW k=3x3 s=1x1 p=1,1,1,1 relu= in= out=``,
``pool NAME max|avg image=CxHxW k= s= p= relu= in= out=``, ``add NAME shape= relu= in= in_b=
out=``, ``flatten NAME image= in= out=`` and ``lstm|gru NAME steps=T in= out= cell= table=``
(a recurrent layer: ``out`` is the hidden state's format, ``cell`` an LSTM's cell state's,
``table`` the activation tables' bits), whose body holds its two gate matrices as ``dense``
blocks, the input one first (:mod:`nnlcc.ir.recurrent`); ``inputs A B`` lists a layer's ``inputs`` (the DAG
edges) when it has any, ``-`` is a missing format, and a name that is not a plain word is a
JSON string.  Floats are written as Python's ``repr`` (the shortest text that reads back to
the same float64), so weights and biases round-trip bit-exactly.  ``info`` holds the layer's
notes (:mod:`nnlcc.ir.notes`) as one JSON object, each :class:`~nnlcc.ir.notes.JsonNote` under
its key, in the order they were recorded; a note that is not JSON (a share plan) prints itself
as a block of the layer instead (a :class:`~nnlcc.ir.notes.BlockNote`).  The parser knows the
notes of :data:`IR_NOTES` and those its caller's syntax gives; an unknown key is an error.

Matrix codes (``code KIND ...``) print and parse themselves: this module knows no code kind.
A code's :meth:`~nnlcc.ir.matrix.MatrixCode.text_lines` writes its block, and
:func:`parse_graph` reads it back with the parser its caller gives for ``KIND`` (how codes
plug in: :mod:`nnlcc.ir.code_text`; every code's syntax is documented with its code, in the
pass that makes it; :func:`nnlcc.passes.text.parse_graph` knows all of nnlcc's).

Not carried: a code's ``name`` (each kind has one), and codes without a text form (printed as
``code NAME unsupported``, which does not parse).

Parse errors raise :class:`~nnlcc.errors.BadInputError` naming the line.  The line syntax
(nesting, fields, numbers) is :mod:`nnlcc.ir.text_syntax`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from nnlcc.ir.code_text import CodeReader, CodeWriter, Syntax, code_lines
from nnlcc.ir.imported import ImportedQuant
from nnlcc.ir.matrix import (
    AddLayer,
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    Layer,
    MatrixGraph,
    MatrixLayer,
    PoolLayer,
)
from nnlcc.ir.notes import BatchNormLayer, BlockNote, JsonNote, LayerNotes, OnnxNodes
from nnlcc.ir.recurrent import CELLS, RecurrentLayer
from nnlcc.ir.text_syntax import (
    Line,
    LineError,
    fields,
    flag,
    fmt_text,
    keyword,
    line_tree,
    matrix_lines,
    numbers,
    parse_fmt,
    parse_matrix,
    parse_shape,
    parse_window,
    quote,
    rest_of,
    row_text,
    shape_text,
    unquote,
)
from nnlcc.ir.timing import ScheduleSetting
from nnlcc.ir.truncate import InputPower, TruncationBudget

__all__ = ["IR_NOTES", "parse_graph", "print_graph"]

#: The JSON notes of :mod:`nnlcc.ir`'s own classes, which every parse knows (a pass's notes
#: come with the caller's :class:`Syntax`: :func:`nnlcc.passes.registry.text_syntax`).
IR_NOTES: tuple[type[JsonNote], ...] = (
    OnnxNodes,
    BatchNormLayer,
    InputPower,
    TruncationBudget,
    ScheduleSetting,
    ImportedQuant,
)

# --------------------------------------------------------------------------------- printing


def _header(layer: Layer) -> list[str]:
    io = [f"in={fmt_text(layer.in_fmt)}", f"out={fmt_text(layer.out_fmt)}"]
    if isinstance(layer, RecurrentLayer):
        cell = f"cell={fmt_text(layer.cell_fmt)}"
        return [
            layer.cell,
            quote(layer.name),
            f"steps={layer.steps}",
            *io,
            cell,
            f"table={layer.table_bits}",
        ]
    if isinstance(layer, MatrixLayer):
        rows, cols = layer.shape
        kind = "conv" if isinstance(layer, ConvLayer) else "dense"
        head = [kind, quote(layer.name), f"{rows}x{cols}"]
        if isinstance(layer, ConvLayer):
            head += [f"image={shape_text(layer.image)}", layer.window.to_text()]
        return [*head, f"relu={int(layer.relu)}", *io]
    if isinstance(layer, PoolLayer):
        geo = [f"image={shape_text(layer.image)}", layer.window.to_text()]
        return ["pool", quote(layer.name), layer.op, *geo, f"relu={int(layer.relu)}", *io]
    if isinstance(layer, AddLayer):
        return [
            "add",
            quote(layer.name),
            f"shape={shape_text(layer.shape)}",
            f"relu={int(layer.relu)}",
            f"in={fmt_text(layer.in_fmt)}",
            f"in_b={fmt_text(layer.in_fmt_b)}",
            f"out={fmt_text(layer.out_fmt)}",
        ]
    return ["flatten", quote(layer.name), f"image={shape_text(layer.image)}", *io]


def _layer(layer: Layer) -> list[str]:
    lines = [" ".join(_header(layer))]
    if layer.inputs:
        lines.append("  inputs " + " ".join(map(quote, layer.inputs)))
    blocks = [n for n in layer.notes if isinstance(n, BlockNote)]
    info = {n.key: n.to_json() for n in layer.notes if isinstance(n, JsonNote)}
    if info:
        lines.append(f"  info {json.dumps(info)}")
    out = CodeWriter(blocks)  # a code holding a note names its key (a share plan)
    code = layer.code if isinstance(layer, MatrixLayer) else None
    coded = code_lines(code, "  ", out) if code is not None else []
    for block in blocks:
        if not any(block is used for used in out.used):
            lines += block.block_lines("  ", block.key)
    if isinstance(layer, MatrixLayer):
        lines.append(f"  bias {row_text(layer.bias)}".rstrip())
        lines += ["  weight", *matrix_lines(layer.weight, "    ")]
        lines += coded
    if isinstance(layer, RecurrentLayer):
        for m in layer.matrices():
            lines += ["  " + ln if ln else ln for ln in _layer(m)]
    return lines


def print_graph(graph: MatrixGraph) -> str:
    """The whole graph as text (see the module docstring); :func:`parse_graph` reads it."""
    lines = [
        f"graph {quote(graph.name)} input={quote(graph.input_name)}"
        f" shape={shape_text(graph.input_shape)} fmt={fmt_text(graph.input_fmt)}"
        f" output={quote(graph.output_name)}"
    ]
    if graph.source:
        lines.append(f"  source {json.dumps(graph.source)}")
    for layer in graph.layers:
        lines += ["", *_layer(layer)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- parsing


_LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "dense": ("relu", "in", "out"),
    "conv": ("image", "k", "s", "p", "relu", "in", "out"),
    "pool": ("image", "k", "s", "p", "relu", "in", "out"),
    "add": ("shape", "relu", "in", "in_b", "out"),
    "flatten": ("image", "in", "out"),
    **{cell: ("steps", "in", "out", "cell", "table") for cell in CELLS},
}


def _notes(text: str, syntax: Syntax) -> LayerNotes:
    """The notes of an ``info`` line's JSON object, each read by its key's class."""
    obj = json.loads(text)
    if not isinstance(obj, dict):
        raise ValueError("info must be a JSON object")
    known = {cls.key: cls for cls in IR_NOTES} | dict(syntax.notes)
    notes = LayerNotes()
    for key, value in obj.items():
        cls = known.get(key)
        if cls is None:
            raise ValueError(f"unknown note {key!r} in info (known: {', '.join(sorted(known))})")
        notes.put(cls.from_json(value))
    return notes


def _parse_layer(line: Line, syntax: Syntax) -> Layer:
    kind = keyword(line)
    if kind not in _LAYER_KEYS:
        line.fail(f"unknown layer kind {kind!r} ({', '.join(_LAYER_KEYS)})")
    pos, kv = fields(line, _LAYER_KEYS[kind])
    want = {"dense": 2, "conv": 2, "pool": 2}.get(kind, 1)
    if len(pos) != want:
        line.fail(f"{kind} header takes {want} words before its fields, got {len(pos)}")
    name = pos[0]
    body: dict[str, Line] = {}
    blocks: list[Line] = []  # block notes (a share plan): the syntax's blocks
    gates: list[Line] = []  # a recurrent layer's gate matrices
    for ch in line.children:
        key = keyword(ch)
        if key in syntax.blocks:
            blocks.append(ch)
            continue
        if key == "dense" and kind in CELLS:
            gates.append(ch)
            continue
        if key not in ("inputs", "info", "bias", "weight", "code") or key in body:
            ch.fail(f"unexpected or repeated '{key}' line in layer {name}")
        body[key] = ch
    inputs = tuple(fields(body["inputs"].leaf(), ())[0]) if "inputs" in body else ()
    notes = LayerNotes()
    if "info" in body:
        with body["info"].leaf().at():
            notes = _notes(rest_of(body["info"]), syntax)
    for b in blocks:
        notes.put(syntax.blocks[keyword(b)](b))
    with line.at():
        in_fmt, out_fmt = parse_fmt(kv["in"]), parse_fmt(kv["out"])
        relu = flag(kv.get("relu", "0"))
        if kind == "pool":
            if pos[1] not in ("max", "avg"):
                raise ValueError(f"pool op must be max or avg, not {pos[1]!r}")
            window = parse_window(kv)
            op: Any = pos[1]
            return PoolLayer(
                name=name,
                op=op,
                image=parse_shape(kv["image"]),
                window=window,
                relu=relu,
                in_fmt=in_fmt,
                out_fmt=out_fmt,
                notes=notes,
                inputs=inputs,
            )
        if kind == "add":
            return AddLayer(
                name=name,
                inputs=inputs,
                shape=parse_shape(kv["shape"]),
                relu=relu,
                in_fmt=in_fmt,
                in_fmt_b=parse_fmt(kv["in_b"]),
                out_fmt=out_fmt,
                notes=notes,
            )
        if kind in CELLS:
            return _recurrent(line, kind, name, kv, gates, syntax, notes, inputs)
        if kind == "flatten":
            return FlattenLayer(
                name=name,
                image=parse_shape(kv["image"]),
                in_fmt=in_fmt,
                out_fmt=out_fmt,
                notes=notes,
                inputs=inputs,
            )
        rows, cols = parse_shape(pos[1])
    if "inputs" not in body and kind == "add":
        line.fail("an add layer needs an 'inputs' line")
    for key in ("bias", "weight"):
        if key not in body:
            line.fail(f"layer {name} has no '{key}' line")
    bias = np.array(numbers(body["bias"].leaf(), rest_of(body["bias"]), rows, float))
    weight = parse_matrix(body["weight"], (rows, cols), float, np.float64)
    common: dict[str, Any] = {
        "name": name,
        "weight": weight,
        "bias": bias,
        "relu": relu,
        "in_fmt": in_fmt,
        "out_fmt": out_fmt,
        "notes": notes,
        "inputs": inputs,
    }
    layer: MatrixLayer
    if kind == "conv":
        with line.at():
            image, window = parse_shape(kv["image"]), parse_window(kv)
        layer = ConvLayer(**common, image=image, window=window)
    else:
        layer = DenseLayer(**common)
    if "code" in body:
        reader = CodeReader(syntax)
        layer.code = reader.code(body["code"], (rows, cols))
        for note in reader.kept:  # the notes the code holds too (its share plan)
            notes.put(note)
    return layer


def _recurrent(
    line: Line,
    cell: Any,
    name: str,
    kv: dict[str, str],
    gates: list[Line],
    syntax: Syntax,
    notes: LayerNotes,
    inputs: tuple[str, ...],
) -> RecurrentLayer:
    if len(gates) != 2:
        line.fail(f"a {cell} layer holds two dense gate matrices (W, then R), not {len(gates)}")
    w, r = (_parse_layer(g, syntax) for g in gates)
    assert isinstance(w, DenseLayer) and isinstance(r, DenseLayer)
    return RecurrentLayer(
        name=name,
        cell=cell,
        steps=int(kv["steps"]),
        w=w,
        r=r,
        in_fmt=parse_fmt(kv["in"]),
        out_fmt=parse_fmt(kv["out"]),
        cell_fmt=parse_fmt(kv["cell"]),
        table_bits=int(kv["table"]),
        notes=notes,
        inputs=inputs,
    )


def parse_graph(text: str, syntax: Syntax | None = None) -> MatrixGraph:
    """The graph :func:`print_graph` wrote; :class:`BadInputError` names the offending line.

    ``syntax`` holds the parsers of the matrix codes, of the layer blocks of block notes and
    the classes of the passes' JSON notes; without it, a graph with a code or a pass's note
    does not parse.  nnlcc's codes:
    :func:`nnlcc.passes.text.parse_graph`."""
    syntax = syntax if syntax is not None else Syntax()
    blocks = line_tree(text)
    if not blocks or keyword(blocks[0]) != "graph":
        where = blocks[0].no if blocks else 1
        raise LineError(f"IR text line {where}: expected a 'graph' header")
    head = blocks[0]
    pos, kv = fields(head, ("input", "shape", "fmt", "output"))
    if len(pos) != 1:
        head.fail("graph header takes its name, then input= shape= fmt= output=")
    source = ""
    for ch in head.children:
        if keyword(ch) != "source":
            ch.fail(f"unexpected '{keyword(ch)}' line in the graph header")
        with ch.leaf().at():
            source = unquote(rest_of(ch))
    with head.at():
        shape = parse_shape(kv["shape"])
        fmt = parse_fmt(kv["fmt"])
    layers = [_parse_layer(b, syntax) for b in blocks[1:]]
    graph = MatrixGraph(
        pos[0], kv["input"], math.prod(shape), kv["output"], layers, fmt, source, shape
    )
    lines = {layer.name: b for layer, b in zip(layers, blocks[1:], strict=True)}
    try:
        graph.verify()
    except (AssertionError, ValueError) as e:
        at = lines.get(str(e).split(":", 1)[0], head)
        at.fail(str(e))
    return graph
