"""Report rows: one per layer, from its lowered adder graph (:func:`layer_rows`) or, for
networks too big to lower in --report-only, straight from the matrix codes (:func:`code_rows`).

Lowering ResNet-34 would build some 20 M adder-graph nodes (gigabytes of Python objects) and
its golden integer model runs minutes per image, so ``nnlcc compile --report-only`` on a
network above :data:`LOWER_LIMIT_WEIGHTS` takes every matrix layer's adder count and depth from
its code (the count the lowered graph has, without the bias/rounding constant adders), lowers
only the small pool/add/flatten graphs, and leaves the fields only a
lowered graph knows (widths, pipeline latency) empty.  The golden integer evaluation is skipped
and the report says so; accuracy compares the float network with the implemented (coded)
matrices against the float network, which isolates what the matrix code costs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnlcc.hdl.top import top_for
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.fixed_point import FixedFormat, sqnr_db
from nnlcc.ir.lower import lower_any
from nnlcc.ir.lowered import LoweredLayer, LoweredNetwork
from nnlcc.ir.matrix import ConvLayer, MatrixCode, MatrixGraph, MatrixLayer, PoolLayer
from nnlcc.passes.share import compression_facts

__all__ = [
    "LOWER_LIMIT_WEIGHTS",
    "code_adders",
    "code_rows",
    "csd_baseline",
    "csd_baseline_layer",
    "implemented_accuracy",
    "layer_rows",
    "too_big",
]

LOWER_LIMIT_WEIGHTS = 2_000_000
"""Matrix weights above which ``--report-only`` reports from the codes instead of lowering."""


def too_big(graph: MatrixGraph) -> bool:
    return sum(layer.weight.size for layer in graph.matrix_layers()) > LOWER_LIMIT_WEIGHTS


def code_adders(code: MatrixCode, cols: int, facts: dict[str, Any] | None = None) -> int:
    """Adders of a matrix code (what its lowered graph counts): from its summary ``facts``
    when it states them (LCC), else by lowering the code alone into a scratch graph (CSD).
    (An LCC summary of a big transposed layer takes seconds: pass it if you have it.)"""
    facts = code.summary() if facts is None else facts
    if "adders" in facts:
        return int(facts["adders"])
    g = AdderGraph.with_inputs([(-1, 1)] * cols)
    code.lower(g, list(range(cols)))
    return g.adders


def geometry(layer: MatrixLayer | PoolLayer, in_fmt: FixedFormat | None) -> dict[str, Any]:
    """``kernel``, ``stride`` and ``line_buffer_bits`` (:meth:`ConvLayer.line_buffer_bits`)."""
    if not isinstance(layer, ConvLayer | PoolLayer):
        return {}
    return {
        "kernel": list(layer.window.kernel),
        "stride": list(layer.window.stride),
        "line_buffer_bits": layer.line_buffer_bits(in_fmt.bits if in_fmt else 0),
    }


def code_rows(graph: MatrixGraph) -> list[dict[str, Any]]:
    """One report row per layer, from the matrix codes (no lowering of matrix layers)."""
    rows: list[dict[str, Any]] = []
    fmts: dict[str, FixedFormat] = {}
    if graph.input_fmt is not None:
        fmts[graph.input_name] = graph.input_fmt
    for i, layer in enumerate(graph.layers):
        assert layer.out_fmt is not None and layer.in_fmt is not None, "run quantize first"
        fmts[layer.name] = layer.out_fmt
        base: dict[str, Any] = {
            "name": layer.name,
            "kind": layer.kind,
            "in_fmt": str(layer.in_fmt),
            "out_fmt": str(layer.out_fmt),
            "out_bits": layer.out_fmt.bits,
            "latency": None,
            "max_bits": None,
            "adder_bits": None,
            "relu": getattr(layer, "relu", False),
        }
        if isinstance(layer, MatrixLayer):
            code = layer.code
            assert code is not None, f"layer {layer.name} has no code: run a matrix pass"
            r, c = layer.shape
            facts = code.summary()
            adders = code_adders(code, c, facts)
            row = {
                **base,
                "shape": [r, c],
                "pass": code.name,
                "adders": adders,
                "const_adders": None,
                "adders_per_weight": round(adders / max(r * c, 1), 4),
                "depth": None,  # the lowered graph's depth is not known without lowering
                "weight_sqnr_db": round(sqnr_db(layer.weight, code.implemented()), 2),
                "csd_baseline_adders": csd_baseline_layer(layer),
                **geometry(layer, layer.in_fmt),
            }
            row.update({k: v for k, v in facts.items() if k not in row})
        else:
            low = lower_any(layer, [fmts[t] for t in graph.inputs_of(i)])
            g = low.graph
            row = {
                **base,
                "shape": [len(g.outputs), g.n_inputs],
                "pass": low.op or layer.kind,
                "adders": g.adders,
                "const_adders": g.const_adders,
                "adders_per_weight": None,
                "depth": g.depth,
                "latency": g.latency,
                "max_bits": g.max_bits,
                "adder_bits": g.adder_bits,
                **(geometry(layer, layer.in_fmt) if isinstance(layer, PoolLayer) else {}),
            }
        rows.append(row)
    return rows


def implemented_accuracy(graph: MatrixGraph, x: np.ndarray, name: str) -> dict[str, Any]:
    """Float network vs the same network with the coded matrices (no activation rounding)."""
    ref = graph.forward_float(x, batch=2)
    got = graph.forward_float(x, batch=2, implemented=True)
    return {
        "dataset": name,
        "samples": len(x),
        "sqnr_db": round(sqnr_db(ref, got), 2),
        "argmax_agreement": round(float(np.mean(ref.argmax(1) == got.argmax(1))), 4),
        "float": None,
        "golden": None,
        "skipped": "golden integer model not evaluated (network too big to lower in"
        " --report-only); sqnr_db compares the float network with its coded matrices",
    }


def layer_rows(graph: MatrixGraph, net: LoweredNetwork) -> list[dict[str, Any]]:
    stream = top_for(net).layer_facts()  # kernel, stride, line_buffer_bits of window layers
    rows = []
    for layer, low in zip(graph.layers, net.layers, strict=True):
        g = low.graph
        if not isinstance(layer, MatrixLayer):  # pool, add, flatten: an adder graph, no matrix
            rows.append(_plain_row(layer.name, layer.kind, low, stream.get(layer.name, {})))
            continue
        r, c = layer.shape
        code = layer.code
        assert code is not None
        implemented = code.implemented()
        row: dict[str, Any] = {
            "name": layer.name,
            "kind": layer.kind,
            "shape": [r, c],
            "pass": code.name,
            "adders": g.adders,
            "const_adders": g.const_adders,
            "adders_per_weight": round(g.adders / max(r * c, 1), 4),
            "depth": g.depth,
            "latency": g.latency,
            "in_fmt": str(low.in_fmt),
            "out_fmt": str(low.out_fmt),
            "out_bits": low.out_fmt.bits,
            "max_bits": g.max_bits,
            "adder_bits": g.adder_bits,
            "weight_sqnr_db": round(sqnr_db(layer.weight, implemented), 2),
            "relu": layer.relu,
        }
        row["csd_baseline_adders"] = csd_baseline_layer(layer)
        row.update(compression_facts(layer))  # kept/shared columns, pre-adders
        row.update({k: v for k, v in code.summary().items() if k not in row})
        row.update(stream.get(layer.name, {}))
        rows.append(row)
    return rows


def _plain_row(name: str, kind: str, low: LoweredLayer, facts: dict[str, Any]) -> dict[str, Any]:
    """Report row of a layer without weights; ``shape`` is its graph's outputs x inputs."""
    g = low.graph
    return {
        "name": name,
        "kind": kind,
        "shape": [len(g.outputs), g.n_inputs],
        "pass": low.op or kind,
        "adders": g.adders,
        "const_adders": g.const_adders,
        "adders_per_weight": None,
        "depth": g.depth,
        "latency": g.latency,
        "in_fmt": str(low.in_fmt),
        "out_fmt": str(low.out_fmt),
        "out_bits": low.out_fmt.bits,
        "max_bits": g.max_bits,
        "adder_bits": g.adder_bits,
        **facts,
    }


def csd_baseline_layer(layer: MatrixLayer, bits: int = 8) -> int:
    """Plain CSD additions (no sharing) of one layer at ``bits``-bit weights."""
    from nnlcc.csd import csd_adders
    from nnlcc.fixed_point import quantize_weights

    return csd_adders(quantize_weights(layer.weight, bits)[0])


def csd_baseline(graph: MatrixGraph, bits: int = 8) -> int:
    """Plain CSD additions (no sharing) at ``bits``-bit weights: the field's baseline."""
    return sum(csd_baseline_layer(layer, bits) for layer in graph.matrix_layers())
