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
out=`` and ``flatten NAME image= in= out=``; ``inputs A B`` lists a layer's ``inputs`` (the DAG
edges) when it has any, ``-`` is a missing format, and a name that is not a plain word is a
JSON string.  Floats are written as Python's ``repr`` (the shortest text that reads back to
the same float64), so weights and biases round-trip bit-exactly.  ``info`` is the layer's
``info`` as JSON (tuples in it come back as lists); a :class:`SharePlan` in it is a ``plan``
block instead.

Matrix codes (``code KIND ...``):

* ``csd frac= cse=``: the integer weights, one row per line;
* ``lcc shape= algo= target_db= reached_db= transposed=`` with ``options`` (JSON) and one
  ``slice cols= scale= rounds= terms=`` per column slice: a line ``cK = +c0<<-1 -c2<<3`` per
  codeword (``_`` is an unused term slot) and ``out`` (the codeword of each row, -1: none).
  The slices' exact blocks and the code's ``exact`` matrix are recomputed from the programs
  (every product is a power-of-two scaling of a sum, exact in float64); the cached costs are
  recomputed when asked for;
* ``circulant shape= block= layout= form= ...``: the block vectors (and the fft form's
  spectrum, the lcc form's inner code), see :mod:`nnlcc.passes.circulant.text_form`;
* ``lowrank shape= rank= target_db= reached_db= split=``: ``shifts``, ``options`` (JSON) and
  the factors' own ``code`` blocks (V, U, and E when split), see
  :mod:`nnlcc.passes.lowrank.text_form`;
* ``alkaid frac=``: ``weights`` (the integers, one row per line) and one ``stage ops= inputs=
  outputs=`` per program of alkaid's cascade: ``ops`` rows ``opcode a b data``, ``inp_shifts``
  and ``out`` (three rows: index, shift, negation of each output);
* ``share [plan=KEY]``: a ``plan rows= cols= clusters= error_sqnr_db=`` block (``reduced`` rows
  and one ``kJ = 1.0*x3 -0.5*x7`` line per cluster: ``expand`` and ``members``) and the inner
  ``code`` on the reduced matrix; ``plan=KEY``: the same plan object is ``layer.info[KEY]``.

Not carried: a code's ``name`` (each kind has one), and codes of other classes (printed as
``code NAME unsupported``, which does not parse).  The code classes belong to the passes,
which the IR may not import (the layering contract), so parsing loads them by name as the
pass registry does.

Parse errors raise :class:`~nnlcc.errors.BadInputError` naming the line.  The line syntax
(nesting, fields, numbers) is :mod:`nnlcc.ir.text_syntax`.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from typing import Any

import numpy as np

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
from nnlcc.ir.text_syntax import (
    TOKEN,
    Line,
    LineError,
    child,
    fields,
    flag,
    fmt_text,
    ints,
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

__all__ = ["parse_graph", "print_graph"]

#: ``code KIND`` -> (module, class) of the pass objects the text stands for.
_CLASSES = {
    "csd": ("nnlcc.passes.csd", "CsdCode"),
    "lcc": ("nnlcc.passes.lcc.code", "LccCode"),
    "share": ("nnlcc.passes.share", "ShareCode"),
    "plan": ("nnlcc.passes.share", "SharePlan"),
    "slice": ("nnlcc.passes.lcc.fp", "SliceProgram"),
    "circulant": ("nnlcc.passes.circulant.code", "CirculantCode"),
    "circulant_print": ("nnlcc.passes.circulant.text_form", "print_code"),
    "circulant_parse": ("nnlcc.passes.circulant.text_form", "parse_code"),
    "alkaid": ("nnlcc.passes.alkaid", "AlkaidCode"),
    "stage": ("nnlcc.passes.alkaid", "AlkaidStage"),
    "lowrank": ("nnlcc.passes.lowrank.code", "LowRankCode"),
    "lowrank_print": ("nnlcc.passes.lowrank.text_form", "print_code"),
    "lowrank_parse": ("nnlcc.passes.lowrank.text_form", "parse_code"),
}


def _kind_of(obj: object) -> str | None:
    """The ``_CLASSES`` key of ``obj``'s class (without importing anything)."""
    where = (type(obj).__module__, type(obj).__qualname__)
    return next((k for k, v in _CLASSES.items() if v == where), None)


def _cls(kind: str) -> Any:
    module, name = _CLASSES[kind]
    return getattr(importlib.import_module(module), name)


# --------------------------------------------------------------------------------- printing


def _plan(plan: Any, ind: str, key: str | None) -> list[str]:
    rows, clusters = plan.reduced.shape
    head = (
        f"{ind}plan rows={rows} cols={plan.expand.shape[1]} clusters={clusters}"
        f" error_sqnr_db={plan.error_sqnr_db!r}" + (f" key={quote(key)}" if key else "")
    )
    lines = [head, f"{ind}  reduced", *matrix_lines(plan.reduced, ind + "    ")]
    for k, cols in enumerate(plan.members):
        if np.count_nonzero(plan.expand[k]) != len(cols):
            raise ValueError(f"share plan cluster {k}: expand has entries outside its members")
        terms = " ".join(f"{float(plan.expand[k, j])!r}*x{j}" for j in cols)
        lines.append(f"{ind}  k{k} = {terms}".rstrip())
    return lines


def _term(src: int, exp: int, neg: bool) -> str:
    if src < 0 and exp == 0 and not neg:
        return "_"
    return f"{'-' if neg else '+'}{'_' if src < 0 else f'c{src}'}<<{exp}"


def _lcc(code: Any, ind: str) -> list[str]:
    r, c = code.shape
    lines = [
        f"{ind}code lcc shape={r}x{c} algo={quote(code.algo)} target_db={code.target_db!r}"
        f" reached_db={code.reached_db!r} transposed={int(code.transposed)}",
        f"{ind}  options {json.dumps(code.options)}",
    ]
    for s in code.slices:
        k = len(s.cols)
        lines.append(
            f"{ind}  slice cols={','.join(map(str, s.cols.tolist()))} scale={s.scale}"
            f" rounds={s.rounds} terms={s.src.shape[1]}"
        )
        for i, (src, exp, neg) in enumerate(
            zip(s.src.tolist(), s.exp.tolist(), s.neg.tolist(), strict=True)
        ):
            terms = " ".join(_term(*t) for t in zip(src, exp, neg, strict=True))
            lines.append(f"{ind}    c{k + i} = {terms}".rstrip())
        lines.append(f"{ind}    out {row_text(s.out)}".rstrip())
    return lines


def _code(code: Any, ind: str, plan_key: str | None) -> list[str]:
    kind = _kind_of(code)
    if kind == "csd":
        return [
            f"{ind}code csd frac={code.frac} cse={int(code.cse)}",
            *matrix_lines(code.w_int, ind + "  "),
        ]
    if kind == "lcc":
        return _lcc(code, ind)
    if kind == "alkaid":
        lines = [f"{ind}code alkaid frac={code.frac}", f"{ind}  weights"]
        lines += matrix_lines(code.w_int, ind + "    ")
        for s in code.stages:
            outs = np.stack([s.out_idx, s.out_shift, s.out_neg.astype(np.int64)])
            lines += [
                f"{ind}  stage ops={len(s.ops)} inputs={len(s.inp_shifts)} outputs={outs.shape[1]}",
                f"{ind}    ops",
                *matrix_lines(s.ops, ind + "      "),
                f"{ind}    inp_shifts",
                *matrix_lines(s.inp_shifts[None, :], ind + "      "),
                f"{ind}    out",
                *matrix_lines(outs, ind + "      "),
            ]
        return lines
    if kind == "share":
        head = f"{ind}code share" + (f" plan={quote(plan_key)}" if plan_key else "")
        return [head, *_plan(code.plan, ind + "  ", None), *_code(code.inner, ind + "  ", None)]
    if kind in ("circulant", "lowrank"):
        printed: list[str] = _cls(f"{kind}_print")(code, ind, _code)
        return printed
    return [f"{ind}code {quote(code.name)} unsupported"]


def _header(layer: Layer) -> list[str]:
    io = [f"in={fmt_text(layer.in_fmt)}", f"out={fmt_text(layer.out_fmt)}"]
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
    code = layer.code if isinstance(layer, MatrixLayer) else None
    shared = getattr(code, "plan", None) if _kind_of(code) == "share" else None
    plans = {k: v for k, v in layer.info.items() if _kind_of(v) == "plan"}
    rest = {k: v for k, v in layer.info.items() if k not in plans}
    if rest:
        lines.append(f"  info {json.dumps(rest)}")
    code_key = next((k for k, v in plans.items() if v is shared), None)
    for key, plan in plans.items():
        if key != code_key:
            lines += _plan(plan, "  ", key)
    if isinstance(layer, MatrixLayer):
        lines.append(f"  bias {row_text(layer.bias)}".rstrip())
        lines += ["  weight", *matrix_lines(layer.weight, "    ")]
        if layer.code is not None:
            lines += _code(layer.code, "  ", code_key)
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


def _parse_plan(line: Line, key_field: bool) -> tuple[Any, str | None]:
    keys = ("rows", "cols", "clusters", "error_sqnr_db")
    pos, kv = fields(line, (*keys, "key") if key_field else keys)
    key = kv.get("key")
    if pos:
        line.fail(f"unexpected {pos[0]!r}")
    with line.at():
        rows, cols, n = int(kv["rows"]), int(kv["cols"]), int(kv["clusters"])
        sqnr = float(kv["error_sqnr_db"])
    reduced = parse_matrix(child(line, 0, "reduced"), (rows, n), float, np.float64)
    if len(line.children) != n + 1:
        line.fail(f"expected {n} cluster lines, got {len(line.children) - 1}")
    expand = np.zeros((n, cols))
    members: list[list[int]] = []
    for k, cl in enumerate(line.children[1:]):
        m = re.fullmatch(rf"k{k} =(.*)", cl.leaf().text)
        if not m:
            cl.fail(f"expected cluster line 'k{k} = ...'")
        cluster: list[int] = []
        for tok in m[1].split():
            tm = re.fullmatch(r"(\S+)\*x(\d+)", tok)
            if not tm or int(tm[2]) >= cols:
                cl.fail(f"bad cluster term {tok!r}")
            with cl.at():
                expand[k, int(tm[2])] = float(tm[1])
            cluster.append(int(tm[2]))
        members.append(cluster)
    plan = _cls("plan")(reduced=reduced, expand=expand, members=members, error_sqnr_db=sqnr)
    return plan, key


_TERM = re.compile(r"_|([+-])(?:c(\d+)|_)<<(-?\d+)")


def _parse_slice(line: Line, rows: int) -> Any:
    pos, kv = fields(line, ("cols", "scale", "rounds", "terms"))
    if pos:
        line.fail(f"unexpected {pos[0]!r}")
    with line.at():
        cols = np.array(ints(kv["cols"]), dtype=np.int64)
        scale, rounds, terms = int(kv["scale"]), int(kv["rounds"]), int(kv["terms"])
    k = len(cols)
    if not line.children:
        line.fail("a slice ends with an 'out' line")
    body, last = line.children[:-1], child(line, len(line.children) - 1, "out")
    src = np.full((len(body), terms), -1, dtype=np.int32)
    exp = np.zeros((len(body), terms), dtype=np.int16)
    neg = np.zeros((len(body), terms), dtype=np.bool_)
    values = np.zeros((k + len(body), k))
    values[:k] = np.eye(k)
    for i, cw in enumerate(body):
        lhs, eq, rhs = cw.leaf().text.partition(" =")
        if lhs != f"c{k + i}" or not eq:
            cw.fail(f"expected codeword line 'c{k + i} = ...'")
        toks = rhs.split()
        if len(toks) != terms:
            cw.fail(f"expected {terms} terms, got {len(toks)}")
        for t, tok in enumerate(toks):
            m = _TERM.fullmatch(tok)
            if not m:
                cw.fail(f"bad term {tok!r}")
            if m[1] is None:
                continue
            s, e, ng = (int(m[2]) if m[2] else -1), int(m[3]), m[1] == "-"
            if s >= k + i:
                cw.fail(f"c{s} is not defined before c{k + i}")
            src[i, t], exp[i, t], neg[i, t] = s, e, ng
            if s >= 0:
                part = np.ldexp(values[s], e)
                values[k + i] = values[k + i] - part if ng else values[k + i] + part
    out = np.array(numbers(last.leaf(), rest_of(last), rows, int), dtype=np.int32)
    if np.any(out >= k + len(body)) or np.any(out < -1):
        last.fail("out names an undefined codeword")
    block = np.zeros((rows, k))
    has = out >= 0
    block[has] = np.ldexp(values[out[has]], scale)
    return _cls("slice")(
        cols=cols, scale=scale, src=src, exp=exp, neg=neg, out=out, block=block, rounds=rounds
    )


def _parse_lcc(line: Line, shape: tuple[int, int]) -> Any:
    pos, kv = fields(line, ("shape", "algo", "target_db", "reached_db", "transposed"))
    if pos[1:]:
        line.fail(f"unexpected {pos[1]!r}")
    with line.at():
        r, c = parse_shape(kv["shape"])
        target, reached = float(kv["target_db"]), float(kv["reached_db"])
        transposed = flag(kv["transposed"])
    if (r, c) != shape:
        line.fail(f"lcc shape {r}x{c} for a {shape[0]}x{shape[1]} matrix")
    opt = child(line, 0, "options").leaf()
    with opt.at():
        options = json.loads(rest_of(opt))
    fr, fc = (c, r) if transposed else (r, c)
    slices = []
    for s in line.children[1:]:
        if keyword(s) != "slice":
            s.fail(f"expected 'slice', got '{keyword(s)}'")
        slices.append(_parse_slice(s, fr))
    exact = np.zeros((fr, fc))
    for p in slices:
        if np.any(p.cols >= fc) or np.any(p.cols < 0):
            line.fail("a slice reads a column outside the matrix")
        exact[:, p.cols] += p.block
    if transposed:
        exact = np.ascontiguousarray(exact.T)
    return _cls("lcc")(
        shape=(r, c),
        slices=slices,
        exact=exact,
        target_db=target,
        reached_db=reached,
        algo=kv["algo"],
        options=options,
        transposed=transposed,
    )


def _parse_code(line: Line, shape: tuple[int, int]) -> tuple[Any, str | None]:
    """A ``code`` block for a matrix of ``shape``; the info key its share plan is kept under."""
    toks = TOKEN.findall(line.text)
    kind = toks[1] if len(toks) > 1 else ""
    if kind == "csd":
        _, kv = fields(line, ("frac", "cse"))
        with line.at():
            frac, cse = int(kv["frac"]), flag(kv["cse"])
        w_int = parse_matrix(line, shape, int, np.int64)
        return _cls("csd")(w_int=w_int, frac=frac, cse=cse), None
    if kind == "lcc":
        return _parse_lcc(line, shape), None
    if kind == "share":
        has_key = "plan=" in line.text
        _, kv = fields(line, ("plan",) if has_key else ())
        if len(line.children) != 2:
            line.fail("a share code holds a 'plan' and a 'code' block")
        plan, _ = _parse_plan(child(line, 0, "plan"), False)
        if plan.expand.shape[1] != shape[1] or plan.reduced.shape[0] != shape[0]:
            line.fail(f"share plan does not fit a {shape[0]}x{shape[1]} matrix")
        inner, _ = _parse_code(child(line, 1, "code"), plan.reduced.shape)
        return _cls("share")(plan, inner), kv.get("plan")
    if kind in ("circulant", "lowrank"):
        return _cls(f"{kind}_parse")(line, shape, _parse_code), None
    if kind == "alkaid":
        return _parse_alkaid(line, shape), None
    line.fail(
        f"cannot rebuild code {kind!r}: the text knows csd, lcc, alkaid, share, circulant and"
        " lowrank"
    )


def _parse_alkaid(line: Line, shape: tuple[int, int]) -> Any:
    _, kv = fields(line, ("frac",))
    with line.at():
        frac = int(kv["frac"])
    w_int = parse_matrix(child(line, 0, "weights"), shape, int, np.int64)
    stages = []
    for st in line.children[1:]:
        if keyword(st) != "stage":
            st.fail(f"expected 'stage', got '{keyword(st)}'")
        _, skv = fields(st, ("ops", "inputs", "outputs"))
        with st.at():
            n, i, o = int(skv["ops"]), int(skv["inputs"]), int(skv["outputs"])
        ops = parse_matrix(child(st, 0, "ops"), (n, 4), int, np.int64)
        shifts = parse_matrix(child(st, 1, "inp_shifts"), (1, i), int, np.int64)[0]
        out = parse_matrix(child(st, 2, "out"), (3, o), int, np.int64)
        stages.append(_cls("stage")(ops, shifts, out[0], out[1], out[2].astype(np.bool_)))
    code = _cls("alkaid")(w_int=w_int, frac=frac, stages=stages)
    with line.at():
        code.check()  # the program must still compute the weights
    return code


_LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "dense": ("relu", "in", "out"),
    "conv": ("image", "k", "s", "p", "relu", "in", "out"),
    "pool": ("image", "k", "s", "p", "relu", "in", "out"),
    "add": ("shape", "relu", "in", "in_b", "out"),
    "flatten": ("image", "in", "out"),
}


def _parse_layer(line: Line) -> Layer:
    kind = keyword(line)
    if kind not in _LAYER_KEYS:
        line.fail(f"unknown layer kind {kind!r} ({', '.join(_LAYER_KEYS)})")
    pos, kv = fields(line, _LAYER_KEYS[kind])
    want = {"dense": 2, "conv": 2, "pool": 2}.get(kind, 1)
    if len(pos) != want:
        line.fail(f"{kind} header takes {want} words before its fields, got {len(pos)}")
    name = pos[0]
    body: dict[str, Line] = {}
    plans: list[Line] = []
    for ch in line.children:
        key = keyword(ch)
        if key == "plan":
            plans.append(ch)
            continue
        if key not in ("inputs", "info", "bias", "weight", "code") or key in body:
            ch.fail(f"unexpected or repeated '{key}' line in layer {name}")
        body[key] = ch
    inputs = tuple(fields(body["inputs"].leaf(), ())[0]) if "inputs" in body else ()
    info: dict[str, Any] = {}
    if "info" in body:
        with body["info"].leaf().at():
            info = json.loads(rest_of(body["info"]))
            if not isinstance(info, dict):
                raise ValueError("info must be a JSON object")
    for p in plans:
        plan, plan_key = _parse_plan(p, True)
        info[str(plan_key)] = plan
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
                info=info,
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
                info=info,
            )
        if kind == "flatten":
            return FlattenLayer(
                name=name,
                image=parse_shape(kv["image"]),
                in_fmt=in_fmt,
                out_fmt=out_fmt,
                info=info,
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
        "info": info,
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
        code, code_key = _parse_code(body["code"], (rows, cols))
        layer.code = code
        if code_key is not None:
            info[code_key] = code.plan
    return layer


def parse_graph(text: str) -> MatrixGraph:
    """The graph :func:`print_graph` wrote; :class:`BadInputError` names the offending line."""
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
    layers = [_parse_layer(b) for b in blocks[1:]]
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
