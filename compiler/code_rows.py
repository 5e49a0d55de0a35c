"""Report rows straight from the matrix codes, for networks too big to lower in --report-only.

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

from nnlcc.adder_graph import AdderGraph
from nnlcc.fixed_point import FixedFormat, sqnr_db
from nnlcc.lower import lower_any
from nnlcc.matrix_ir import ConvLayer, DenseLayer, MatrixCode, MatrixGraph, PoolLayer

__all__ = ["LOWER_LIMIT_WEIGHTS", "code_adders", "code_rows", "implemented_accuracy", "too_big"]

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


def geometry(layer: DenseLayer | PoolLayer, in_fmt: FixedFormat | None) -> dict[str, Any]:
    """``kernel``, ``stride`` and ``line_buffer_bits`` (:meth:`ConvLayer.line_buffer_bits`)."""
    if not isinstance(layer, ConvLayer | PoolLayer):
        return {}
    return {
        "kernel": list(layer.window.kernel),
        "stride": list(layer.window.stride),
        "line_buffer_bits": layer.line_buffer_bits(in_fmt.bits if in_fmt else 0),
    }


def code_rows(graph: MatrixGraph, csd_baseline: Any) -> list[dict[str, Any]]:
    """One report row per layer; ``csd_baseline(layer)`` gives a matrix layer's CSD adders."""
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
        if isinstance(layer, DenseLayer):
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
                "csd_baseline_adders": csd_baseline(layer),
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
