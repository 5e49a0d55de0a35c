"""Report rows (:class:`~nnlcc.report.layer_row.LayerRow`), every one made by :func:`layer_row`:
one per layer, from its lowered adder graph or, for networks too big to lower in
--report-only, straight from the matrix codes (:func:`layer_rows` without a lowered network);
and the report's totals over them (:func:`layer_totals`).

Lowering ResNet-34 would build some 20 M adder-graph nodes (gigabytes of Python objects) and
its golden integer model runs minutes per image, so ``nnlcc compile --report-only`` on a
network above :data:`LOWER_LIMIT_WEIGHTS` takes every matrix layer's adder count from its code
(the count the lowered graph has, without the bias/rounding constant adders), lowers only the
small pool/add/flatten graphs, and leaves the fields only a lowered graph knows (depth, widths,
pipeline latency) empty; kernel, stride and line buffer come from the IR
(:meth:`ConvLayer.line_buffer_bits`) instead of the streaming hardware's plan.  The golden
integer evaluation is skipped and the report says so; accuracy compares the float network with
the implemented (coded) matrices against the float network, which isolates what the matrix
code costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nnlcc.hdl.top import top_for
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.cell import LoweredRecurrent
from nnlcc.ir.cost import Cost, estimate
from nnlcc.ir.csd import csd_adders
from nnlcc.ir.facts import LayerFacts
from nnlcc.ir.family import Family
from nnlcc.ir.fixed_point import FixedFormat, quantize_weights, sqnr_db
from nnlcc.ir.lower import lower_any
from nnlcc.ir.lowered import LoweredLayer, LoweredNetwork
from nnlcc.ir.matrix import ConvLayer, Layer, MatrixCode, MatrixGraph, MatrixLayer, PoolLayer
from nnlcc.ir.recurrent import RecurrentLayer
from nnlcc.report.layer_row import ROW_KEYS, LayerRow, extra
from nnlcc.report.schema import Accuracy, Totals

__all__ = [
    "CSD_BASELINE_BITS",
    "LOWER_LIMIT_WEIGHTS",
    "code_adders",
    "csd_baseline",
    "csd_baseline_layer",
    "geometry",
    "implemented_accuracy",
    "layer_row",
    "layer_rows",
    "layer_totals",
    "too_big",
]

LOWER_LIMIT_WEIGHTS = 2_000_000
"""Matrix weights above which ``--report-only`` reports from the codes instead of lowering."""

CSD_BASELINE_BITS = 8
"""Weight bits of the plain-CSD baseline every report compares against."""


def too_big(graph: MatrixGraph) -> bool:
    return sum(layer.weight.size for layer in graph.matrix_layers()) > LOWER_LIMIT_WEIGHTS


def code_adders(code: MatrixCode, cols: int, facts: Mapping[str, Any] | None = None) -> int:
    """Adders of a matrix code (what its lowered graph counts): from its summary ``facts``
    when it states them (LCC), else by lowering the code alone into a scratch graph (CSD).
    (An LCC summary of a big transposed layer takes seconds: pass it if you have it.)"""
    facts = code.summary() if facts is None else facts
    if "adders" in facts:
        return int(facts["adders"])
    g = AdderGraph.with_inputs([(-1, 1)] * cols)
    code.lower(g, list(range(cols)))
    return g.adders


def geometry(layer: Layer, in_fmt: FixedFormat | None) -> dict[str, Any]:
    """``kernel``, ``stride`` and ``line_buffer_bits`` (:meth:`ConvLayer.line_buffer_bits`)
    of a conv or pool layer from the IR; ``{}`` for other layers."""
    if not isinstance(layer, ConvLayer | PoolLayer):
        return {}
    return {
        "kernel": list(layer.window.kernel),
        "stride": list(layer.window.stride),
        "line_buffer_bits": layer.line_buffer_bits(in_fmt.bits if in_fmt else 0),
    }


def layer_row(
    layer: Layer,
    low: LoweredLayer | None,
    window: Mapping[str, Any] | None = None,
    cost: Cost | None = None,
    facts: LayerFacts | None = None,
) -> LayerRow:
    """The report row of ``layer``.

    ``low`` is its lowered adder graph; a matrix layer may come without one (code-only rows of
    huge networks), then its adders come from its code and the graph-only fields are None.
    ``cost`` is the cost model's estimate of ``low`` (:func:`nnlcc.ir.cost.estimate`) on the
    board's family: the row's ``est_luts`` and ``est_ffs`` (None without it).
    ``window`` holds the window facts of a conv or pool layer (``kernel``, ``stride``,
    ``line_buffer_bits``, optionally ``window_delay``): :meth:`~nnlcc.hdl.top.TopStrategy.layer_facts`
    of the streaming hardware, or :func:`geometry` of the IR.  ``facts`` are what the compile
    found out about a matrix layer (:func:`nnlcc.baselines.layer_facts`: compression, auto's
    choice, the CSD baseline); without them the row has none of these.
    """
    win = window or {}
    g = low.graph if low is not None else None
    in_fmt, out_fmt = (
        (low.in_fmt, low.out_fmt) if low is not None else (layer.in_fmt, layer.out_fmt)
    )
    assert in_fmt is not None and out_fmt is not None, f"layer {layer.name}: run quantize first"
    common: dict[str, Any] = {
        "name": layer.name,
        "kind": layer.kind,
        "const_adders": g.const_adders if g is not None else None,
        "depth": g.depth if g is not None else None,
        "latency": g.latency if g is not None else None,
        "in_fmt": str(in_fmt),
        "out_fmt": str(out_fmt),
        "out_bits": out_fmt.bits,
        "max_bits": g.max_bits if g is not None else None,
        "adder_bits": g.adder_bits if g is not None else None,
        "est_luts": cost.luts if cost is not None else None,
        "est_ffs": cost.ffs_synth if cost is not None else None,
        "kernel": tuple(win["kernel"]) if "kernel" in win else None,
        "stride": tuple(win["stride"]) if "stride" in win else None,
        "line_buffer_bits": win.get("line_buffer_bits"),
        "window_delay": win.get("window_delay"),
    }
    if not isinstance(layer, MatrixLayer):  # pool, add, flatten: an adder graph, no matrix
        assert g is not None and low is not None, f"layer {layer.name}: lower it first"
        return LayerRow(
            **common,
            shape=(len(g.outputs), g.n_inputs),
            pass_name=low.op or layer.kind,
            adders=g.adders,
            adders_per_weight=None,
        )
    code = layer.code
    assert code is not None, f"layer {layer.name} has no code: run a matrix pass"
    r, c = layer.shape
    summary = code.summary()
    adders = g.adders if g is not None else code_adders(code, c, summary)
    compression = facts.compression if facts is not None else None
    auto = facts.auto if facts is not None else None
    best = facts.csd_best if facts is not None else None
    imported = facts.imported if facts is not None else None
    return LayerRow(
        **common,
        shape=(r, c),
        pass_name=code.name,
        adders=adders,
        adders_per_weight=round(adders / max(r * c, 1), 4),
        weight_sqnr_db=round(sqnr_db(layer.weight, code.implemented()), 2),
        hw_sqnr_db=_rounded(facts.hw_sqnr_db if facts is not None else None),
        relu=layer.relu,
        csd_baseline_adders=csd_baseline_layer(layer),
        kept_columns=compression.kept_columns if compression is not None else None,
        shared_columns=compression.shared_columns if compression is not None else None,
        pre_adders=compression.pre_adders if compression is not None else None,
        extras={k: extra(k, v) for k, v in summary.items() if k not in ROW_KEYS},
        auto_coder=auto.coder if auto is not None else None,
        auto_sqnr_db=auto.sqnr_db if auto is not None else None,
        auto_runners_up=auto.runners_up if auto is not None else None,
        csd_best=best.coder if best is not None else None,
        csd_best_adders=best.adders if best is not None else None,
        csd_best_luts=best.est_luts if best is not None else None,
        imported_input=imported.input if imported is not None else None,
        imported_weights=imported.weights if imported is not None else None,
        imported_output=imported.output if imported is not None else None,
        imported_exact=imported.exact if imported is not None else None,
        imported_inexact=imported.inexact if imported is not None else None,
    )


def _rounded(db: float | None) -> float | None:
    return None if db is None else round(db, 2)


def layer_rows(
    graph: MatrixGraph,
    net: LoweredNetwork | None = None,
    family: Family | None = None,
    costs: Mapping[str, Cost] | None = None,
    facts: Mapping[str, LayerFacts] | None = None,
) -> list[LayerRow]:
    """One report row per layer of ``graph``: from ``net``, its lowered network, or without
    one from the matrix codes (matrix layers are not lowered; see the module doc).

    With ``family`` every lowered graph gets the cost model's estimate on it (``costs``: the
    estimates by layer name where the caller has them already); a code-only matrix row has
    none (estimating it means lowering it, which is what the code-only rows avoid).  ``facts``:
    the matrix layers' facts by name (:func:`nnlcc.baselines.layer_facts`)."""
    known = facts or {}

    def cost(low: LoweredLayer | None) -> Cost | None:
        if family is None or low is None:
            return None
        known = costs.get(low.name) if costs is not None else None
        return (
            known if known is not None and known.family is family else estimate(low.graph, family)
        )

    def rows_of(
        layer: Layer, low: LoweredLayer | None, window: dict[str, Any] | None
    ) -> list[LayerRow]:
        if isinstance(layer, RecurrentLayer):
            assert isinstance(low, LoweredRecurrent)
            return recurrent_rows(layer, low, family, cost, known)
        return [layer_row(layer, low, window, cost(low), known.get(layer.name))]

    if net is not None:
        stream = top_for(net).layer_facts()  # kernel, stride, line_buffer_bits of window layers
        return [
            row
            for layer, low in zip(graph.layers, net.layers, strict=True)
            for row in rows_of(layer, low, stream.get(layer.name))
        ]
    rows: list[LayerRow] = []
    fmts: dict[str, FixedFormat] = {}
    if graph.input_fmt is not None:
        fmts[graph.input_name] = graph.input_fmt
    for i, layer in enumerate(graph.layers):
        assert layer.out_fmt is not None, "run quantize first"
        fmts[layer.name] = layer.out_fmt
        low = None
        if not isinstance(layer, MatrixLayer):  # small: pool, add, flatten, a recurrent layer
            low = lower_any(layer, [fmts[t] for t in graph.inputs_of(i)], family)
        rows += rows_of(layer, low, geometry(layer, layer.in_fmt))
    return rows


def recurrent_rows(
    layer: RecurrentLayer,
    low: LoweredRecurrent,
    family: Family | None,
    cost: Any,
    facts: Mapping[str, LayerFacts],
) -> list[LayerRow]:
    """A recurrent layer's rows: its two gate matrices as matrix rows (their codes, adders and
    estimated LUTs each), then its cell (the activation tables, products and state; latency:
    the clocks of one time step, the registered recurrent path)."""
    assert low.w is not None and low.r is not None and low.plan is not None
    rows = [
        layer_row(m, lm, None, cost(lm), facts.get(m.name))
        for m, lm in ((layer.w, low.w), (layer.r, low.r))
    ]
    plan = low.plan
    c = plan.cost(family) if family is not None else None
    rows.append(
        LayerRow(
            name=layer.name,
            kind=layer.kind,
            const_adders=None,
            depth=None,
            latency=plan.latency + 2,
            in_fmt=str(layer.in_fmt),
            out_fmt=str(low.out_fmt),
            out_bits=low.out_fmt.bits,
            max_bits=plan.max_bits,
            adder_bits=None,
            est_luts=c.luts if c is not None else None,
            est_ffs=c.ffs_synth if c is not None else None,
            kernel=None,
            stride=None,
            line_buffer_bits=None,
            window_delay=None,
            shape=(layer.hidden, layer.steps),
            pass_name=f"{layer.cell} cell",
            adders=plan.adders,
            adders_per_weight=None,
            extras={"multipliers": plan.multipliers, "activations": plan.describe()},
        )
    )
    return rows


def layer_totals(graph: MatrixGraph, rows: list[LayerRow], family: Family | None = None) -> Totals:
    """The report's ``totals`` over the layer rows of ``graph``; ``est_luts`` and ``est_ffs``
    sum the rows' cost-model estimates on ``family`` (None unless every row has one)."""
    weights = sum(r * c for r, c in (layer.shape for layer in graph.matrix_layers()))
    adders = sum(row.adders for row in rows)
    known = all(row.est_luts is not None and row.est_ffs is not None for row in rows)
    matrix = [row for row in rows if row.csd_baseline_adders is not None]
    best = [row.csd_best_adders for row in matrix]
    best_luts = [row.csd_best_luts for row in matrix]
    others = sum(row.est_luts or 0 for row in rows if row.csd_baseline_adders is None)
    have_best = bool(matrix) and all(isinstance(b, int) for b in best + best_luts)
    return Totals(
        adders=adders,
        const_adders=sum(row.const_adders or 0 for row in rows),
        pre_adders=sum(row.pre_adders or 0 for row in rows),
        weights=weights,
        adders_per_weight=round(adders / max(weights, 1), 4),
        csd_adders=sum(row.csd_baseline_adders or 0 for row in rows),
        csd_weight_bits=CSD_BASELINE_BITS,
        # nnlcc's best CSD design of every matrix layer at the layer's error (the other
        # layers as built): the "vs CSD" of the reports; None when a layer has none
        csd_best_adders=sum(b for b in best if isinstance(b, int)) if have_best else None,
        csd_best_luts=sum(b for b in best_luts if isinstance(b, int)) + others
        if have_best and known
        else None,
        adder_bits=sum(row.adder_bits or 0 for row in rows),
        est_family=family.name if family is not None else None,
        est_luts=sum(row.est_luts or 0 for row in rows) if known and family else None,
        est_ffs=sum(row.est_ffs or 0 for row in rows) if known and family else None,
        est_error=family.cost.margin if known and family else None,
    )


def implemented_accuracy(graph: MatrixGraph, x: np.ndarray, name: str) -> Accuracy:
    """Float network vs the same network with the coded matrices (no activation rounding)."""
    ref = graph.forward_float(x, batch=2)
    got = graph.forward_float(x, batch=2, implemented=True)
    return Accuracy(
        dataset=name,
        samples=len(x),
        sqnr_db=round(sqnr_db(ref, got), 2),
        argmax_agreement=round(float(np.mean(ref.argmax(1) == got.argmax(1))), 4),
        skipped="golden integer model not evaluated (network too big to lower in"
        " --report-only); sqnr_db compares the float network with its coded matrices",
    )


def csd_baseline_layer(layer: MatrixLayer, bits: int = CSD_BASELINE_BITS) -> int:
    """Plain CSD additions (no sharing) of one layer at ``bits``-bit weights."""
    return csd_adders(quantize_weights(layer.weight, bits)[0])


def csd_baseline(graph: MatrixGraph, bits: int = CSD_BASELINE_BITS) -> int:
    """Plain CSD additions (no sharing) at ``bits``-bit weights: the field's baseline."""
    return sum(csd_baseline_layer(layer, bits) for layer in graph.matrix_layers())
