"""Lowering: a quantized, coded MatrixGraph becomes a LoweredNetwork of adder graphs.

Each matrix layer's graph reads the previous layer's integers, computes the matrix product
with the layer's code (CSD, LCC, ...) and requantizes every output per
:mod:`nnlcc.ir.fixed_point`; a conv layer's graph is the same, applied to window vectors.  Pools,
residual adds and flattens get small graphs of their own (see :mod:`nnlcc.ir.lowered`), built
from the rules :func:`~nnlcc.ir.fixed_point.avg_pool_plan` and :func:`~nnlcc.ir.fixed_point.add_plan`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from nnlcc.ir.adder_graph import AdderGraph, Op
from nnlcc.ir.cell import LoweredRecurrent, plan_cell
from nnlcc.ir.csd import csd_digits
from nnlcc.ir.family import Family
from nnlcc.ir.fixed_point import FixedFormat, Requant, add_plan, avg_pool_plan, requant_plan
from nnlcc.ir.imported import ImportedQuant, Rounding
from nnlcc.ir.lowered import Accumulators, LoweredLayer, LoweredNetwork
from nnlcc.ir.matrix import (
    AddLayer,
    ConvLayer,
    FlattenLayer,
    Layer,
    MatrixGraph,
    MatrixLayer,
    PoolLayer,
    Shape,
)
from nnlcc.ir.recurrent import RecurrentLayer
from nnlcc.ir.rescale import Rescale, row_plan
from nnlcc.ir.timing import ScheduleSetting, default_stage_budget
from nnlcc.ir.truncate import InputPower, TruncationBudget, plan_truncation
from nnlcc.jobs import SERIAL, Jobs


def _requantize(graph: AdderGraph, node: int | None, rq: Requant, neg: bool = False) -> int:
    """``clamp((±node + const) >> shift)`` appended to ``graph`` (``node`` None: zero)."""
    if node is None:
        out = graph.const(rq.const)
    elif rq.const == 0 and not neg:
        out = node
    else:
        out = graph.add(graph.const(rq.const), node, nb=neg)
    if rq.shift != 0:
        out = graph.shr(out, rq.shift)
    return graph.clamp(out, rq.lo, rq.hi)


def _rescale(graph: AdderGraph, node: int | None, plan: Rescale, neg: bool = False) -> int:
    """``plan`` (:class:`~nnlcc.ir.rescale.Rescale`) applied to ``±node`` (None: zero).

    Round half to even on ``t >> k`` adds ``2**(k-1) - 1`` plus bit ``k`` of ``t``, which is
    ``(t >> k) - ((t >> (k+1)) << 1)`` (two shifts, one adder, clamped to its range [0, 1]);
    half to odd adds ``2**(k-1)`` minus that bit."""
    if node is None:
        value = int(plan.apply([0])[0])
        return graph.clamp(graph.const(value), value, value)
    mult, negate = abs(plan.mult), neg != (plan.mult < 0)
    if mult & (mult - 1) == 0:
        scaled = graph.shr(node, -(mult.bit_length() - 1)) if mult > 1 else node
    else:
        scaled = _times_const(graph, node, mult)
    k, const = plan.shift, plan.const
    if k > 0 and plan.rounding is Rounding.CEIL:
        const += (1 << k) - 1
    t = graph.add(graph.const(const), scaled, nb=negate) if const or negate else scaled
    if plan.rounding is Rounding.BIPOLAR:  # +1 where t >= 0, else -1: 2 * sign_bit + 1
        sign = graph.shr(t, graph.width(t))
        return graph.add(graph.const(1), sign, sb=1)
    if k > 0 and plan.rounding in (Rounding.ROUND, Rounding.ROUND_ODD):
        odd = graph.add(graph.shr(t, k), graph.shr(t, k + 1), sb=1, nb=True)
        even = plan.rounding is Rounding.ROUND  # ties to even: + bit; to odd: - bit
        t = graph.add(t, graph.clamp(odd, 0, 1), nb=not even)
        half = (1 << (k - 1)) - (1 if even else 0)
        if half:
            t = graph.add(graph.const(half), t)
    if k > 0:
        t = graph.shr(t, k)
    return graph.clamp(t, plan.lo, plan.hi)


def _lowered(
    layer: Layer,
    graph: AdderGraph,
    in_fmt: FixedFormat,
    out_fmt: FixedFormat,
    *,
    in_fmt_b: FixedFormat | None = None,
    truncation: dict[str, float] | None = None,
    family: Family | None = None,
    accumulators: Accumulators | None = None,
) -> LoweredLayer:
    """The one place a :class:`LoweredLayer` is made: ``graph`` with the layer's name, kind,
    inputs and geometry, and the register placement the ``schedule`` pass recorded on the
    layer (none recorded: a register after every adder, each driving at most the fanout
    ``family``'s model allows, unbounded without a family)."""
    image: Shape = ()
    if isinstance(layer, AddLayer):  # an image add has an image shape, a vector add none
        image = layer.shape if len(layer.shape) == 3 else ()
    else:
        image = layer.image if isinstance(layer, ConvLayer | PoolLayer | FlattenLayer) else ()
    setting = layer.notes.get(ScheduleSetting)
    widths = [graph.width(i) for i, n in enumerate(graph.nodes) if n.op in (Op.ADD, Op.CLAMP)]
    if setting is not None:
        graph.set_stage_budget(setting.stage_budget(layer.name, widths))
    elif family is not None:
        graph.set_stage_budget(default_stage_budget(layer.name, widths, family))
    return LoweredLayer(
        name=layer.name,
        graph=graph,
        in_fmt=in_fmt,
        out_fmt=out_fmt,
        kind=layer.kind,
        inputs=layer.inputs,
        window=layer.window if isinstance(layer, ConvLayer | PoolLayer) else None,
        image=image,
        in_fmt_b=in_fmt_b,
        op=layer.op if isinstance(layer, PoolLayer) else "",
        truncation=truncation,
        accumulators=accumulators,
    )


def lower_layer(
    layer: MatrixLayer, in_fmt: FixedFormat, family: Family | None = None
) -> LoweredLayer:
    """A dense or conv layer's adder graph (a conv's reads one window vector)."""
    if layer.code is None or layer.out_fmt is None:
        raise ValueError(f"layer {layer.name} has no code/format: run quantize and a matrix pass")
    _, cols = layer.shape
    graph = AdderGraph.with_inputs([(in_fmt.lo, in_fmt.hi)] * cols)
    terms = layer.code.lower(graph, list(range(cols)))
    comp = [0] * len(terms)
    facts: dict[str, float] | None = None
    budget = layer.notes.get(TruncationBudget)
    if budget is not None:  # partial sums keep only the bits the budget says matter
        power = layer.notes[InputPower].mean_square
        planned = plan_truncation(graph, terms, budget, power, in_fmt.frac, layer.out_fmt.frac)
        if planned is not None:
            cut, found = planned
            graph, terms, comp = cut.graph, cut.terms, cut.comp
            facts = {**found, "target_db": budget.target_db}
    outputs: list[int] = []
    imported = layer.notes.get(ImportedQuant)
    for r, term in enumerate(terms):
        acc_exp = term.exp - in_fmt.frac
        if imported is not None:  # the model's own rounding and scales (nnlcc.ir.rescale)
            plan = row_plan(imported, r, acc_exp, float(layer.bias[r]), layer.out_fmt, layer.relu)
            if comp[r]:
                plan = dataclasses.replace(plan, const=plan.const + comp[r] * plan.mult)
            outputs.append(_rescale(graph, term.node, plan, term.neg))
            continue
        rq = requant_plan(acc_exp, float(layer.bias[r]), layer.out_fmt, layer.relu)
        if comp[r]:  # the truncation's mean error, cancelled in the constant adder
            rq = dataclasses.replace(rq, const=rq.const + comp[r])
        outputs.append(_requantize(graph, term.node, rq, term.neg))
    graph.outputs = outputs
    acc = Accumulators(tuple(terms), tuple(comp))
    return _lowered(
        layer, graph, in_fmt, layer.out_fmt, truncation=facts, accumulators=acc, family=family
    )


def _tree(nodes: list[int], pair: Callable[[int, int], int]) -> int:
    """``nodes`` combined by ``pair`` (an adder, a MAX) as a balanced tree (depth
    ``ceil(log2 n)``)."""
    while len(nodes) > 1:
        nxt = [pair(nodes[k], nodes[k + 1]) for k in range(0, len(nodes) - 1, 2)]
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        nodes = nxt
    return nodes[0]


def _times_const(graph: AdderGraph, node: int, mult: int) -> int:
    """``node * mult`` for a positive constant, as CSD shift-adds."""
    digits = sorted(csd_digits(mult), reverse=True)  # top digit is +1
    if len(digits) == 1:
        return graph.shr(node, -digits[0][0]) if digits[0][0] else node
    low = digits[-1][0]
    acc = node
    top = digits[0][0] - low
    first = True
    for pos, d in digits[1:]:
        if first:
            acc = graph.add(node, node, sa=top, sb=pos - low, nb=d < 0)
            first = False
        else:
            acc = graph.add(acc, node, sb=pos - low, nb=d < 0)
    return graph.shr(acc, -low) if low else acc


def lower_pool(layer: PoolLayer, in_fmt: FixedFormat, family: Family | None = None) -> LoweredLayer:
    if layer.out_fmt is None:
        raise ValueError(f"layer {layer.name} has no format: run quantize")
    c = layer.image[0]
    taps = layer.window.taps
    graph = AdderGraph.with_inputs([(in_fmt.lo, in_fmt.hi)] * (taps * c))
    outputs = []
    for ch in range(c):
        column = [t * c + ch for t in range(taps)]
        if layer.op == "max":
            m = _tree(column, graph.max)
            lo = max(layer.out_fmt.lo, 0) if layer.relu else layer.out_fmt.lo
            node = graph.nodes[m]
            # MAX ranges are exact: a clamp only where a fused ReLU (or format) cuts them
            outputs.append(
                m
                if lo <= node.lo and node.hi <= layer.out_fmt.hi
                else graph.clamp(m, lo, layer.out_fmt.hi)
            )
        else:
            plan = avg_pool_plan(taps, in_fmt, layer.out_fmt, layer.relu)
            acc = _times_const(graph, _tree(column, graph.add), plan.mult)
            outputs.append(_requantize(graph, acc, plan.requant))
    graph.outputs = outputs
    return _lowered(layer, graph, in_fmt, layer.out_fmt, family=family)


def lower_add(
    layer: AddLayer, fa: FixedFormat, fb: FixedFormat, family: Family | None = None
) -> LoweredLayer:
    if layer.out_fmt is None:
        raise ValueError(f"layer {layer.name} has no format: run quantize")
    c = layer.shape[0]  # channels of an image (one pixel per graph call) or vector length
    plan = add_plan(fa, fb, layer.out_fmt, layer.relu)
    graph = AdderGraph.with_inputs([(fa.lo, fa.hi)] * c + [(fb.lo, fb.hi)] * c)
    graph.outputs = [
        _requantize(graph, graph.add(k, c + k, sa=plan.sa, sb=plan.sb), plan.requant)
        for k in range(c)
    ]
    return _lowered(layer, graph, fa, layer.out_fmt, in_fmt_b=fb, family=family)


def lower_flatten(
    layer: FlattenLayer, in_fmt: FixedFormat, family: Family | None = None
) -> LoweredLayer:
    n = layer.out_shape[0]
    graph = AdderGraph.with_inputs([(in_fmt.lo, in_fmt.hi)] * n)
    graph.outputs = list(range(n))
    return _lowered(layer, graph, in_fmt, in_fmt, family=family)


def lower_recurrent(
    layer: RecurrentLayer, in_fmt: FixedFormat, family: Family | None = None
) -> LoweredRecurrent:
    """A recurrent layer's two gate matrices (each lowered as a dense layer: the input one on
    ``x_t``, the recurrent one on ``h_{t-1}``) and its cell's program (:mod:`nnlcc.ir.cell`)."""
    w, r, h = layer.w, layer.r, layer.out_fmt
    if h is None or w.out_fmt is None or r.out_fmt is None:
        raise ValueError(f"layer {layer.name} has no formats: run quantize")
    low_w = lower_layer(w, in_fmt, family)
    low_r = lower_layer(r, h, family)
    plan = plan_cell(
        layer.cell,
        layer.hidden,
        w.out_fmt,
        r.out_fmt,
        h,
        layer.cell_fmt,
        layer.table_bits,
        rh_ready=low_r.graph.latency,
    )
    return LoweredRecurrent(
        name=layer.name,
        graph=low_r.graph,
        in_fmt=in_fmt,
        out_fmt=h,
        kind=layer.kind,
        inputs=layer.inputs,
        truncation=low_r.truncation,
        w=low_w,
        plan=plan,
        steps=layer.steps,
        r_name=r.name,
        r=low_r,
    )


def lower_any(layer: Layer, fmts: list[FixedFormat], family: Family | None = None) -> LoweredLayer:
    """Lower one layer given the formats of the tensors it reads (``family``: the board's,
    for the default schedule of a layer no ``schedule`` pass set)."""
    if isinstance(layer, RecurrentLayer):
        return lower_recurrent(layer, fmts[0], family)
    if isinstance(layer, MatrixLayer):
        return lower_layer(layer, fmts[0], family)
    if isinstance(layer, PoolLayer):
        return lower_pool(layer, fmts[0], family)
    if isinstance(layer, AddLayer):
        return lower_add(layer, fmts[0], fmts[1], family)
    return lower_flatten(layer, fmts[0], family)


def lower_network(
    graph: MatrixGraph, family: Family | None = None, jobs: Jobs = SERIAL
) -> LoweredNetwork:
    """Every layer of ``graph`` lowered; ``family`` (the board's) sets the fanout bound of
    layers no ``schedule`` pass set (None: unbounded).  The matrix layers are independent
    tasks of ``jobs`` (a matrix layer's output format is its own, so none waits for another),
    the small pool, add and flatten graphs are lowered here."""
    if graph.input_fmt is None:
        raise ValueError("graph has no input format: run the quantize pass first")
    fmts: dict[str, FixedFormat] = {graph.input_name: graph.input_fmt}
    layers: list[LoweredLayer | None] = []
    matrix: list[tuple[int, MatrixLayer, FixedFormat]] = []
    failed: Exception | None = None  # the first other layer that failed: after the tasks
    for i, layer in enumerate(graph.layers):
        ins = [fmts[t] for t in graph.inputs_of(i)]
        if isinstance(layer, MatrixLayer):
            if layer.out_fmt is None:  # as lower_layer says
                raise ValueError(
                    f"layer {layer.name} has no code/format: run quantize and a matrix pass"
                )
            matrix.append((i, layer, ins[0]))
            layers.append(None)
            fmts[layer.name] = layer.out_fmt
        else:
            try:
                lowered = lower_any(layer, ins, family)
            except Exception as e:  # a matrix layer before it fails first, as in graph order
                failed = e
                break
            layers.append(lowered)
            fmts[layer.name] = lowered.out_fmt
    done = jobs.map(
        _lower_task,
        [(layer, fmt) for _, layer, fmt in matrix],
        family,
        [f"lower {layer.name}" for _, layer, _ in matrix],
    )
    if failed is not None:
        raise failed
    for (i, _, _), lowered in zip(matrix, done, strict=True):
        layers[i] = lowered
    return LoweredNetwork(
        name=graph.name,
        input_fmt=graph.input_fmt,
        layers=[la for la in layers if la is not None],
        input_shape=graph.input_shape,
        input_name=graph.input_name,
        **boundary(graph),
    )


def _lower_task(task: tuple[MatrixLayer, FixedFormat], family: Family | None) -> LoweredLayer:
    return lower_layer(task[0], task[1], family)


def boundary(graph: MatrixGraph) -> dict[str, Any]:
    """The :class:`LoweredNetwork` fields an imported quantized model fixes: the input's
    quantizer and the output's gain (nothing for a float model)."""
    facts = [layer.notes.get(ImportedQuant) for layer in graph.layers]
    quant = next((f.input for f in facts if f is not None and f.input is not None), None)
    last = facts[-1] if facts else None
    gain = last.output.gain if last is not None and last.output is not None else 1.0
    return {"input_quant": quant, "output_gain": gain}
