"""Truncated partial sums (``truncate=auto``) against exact ones (``truncate=off``).

Usage::

    .venv/bin/python benchmarks/truncation.py [--quick] [--json FILE]

Rows, each coded once with ``truncate=off`` and once with ``truncate=auto``:

* Gaussian layers (128x128 and 256x256; ``--quick``: 128x128 only) at ``lcc{sqnr_db=40}`` and
  ``csd{weight_bits=8}``: adders, ``adder_bits`` (sum of adder widths, the LUT proxy until the
  calibrated cost model lands), mean and max width, and the layer SQNR before the output
  rounding, measured on 2000 white Gaussian inputs of the calibration power against the exact
  float product ``W x`` (the SQNR the truncation budget is defined on, see
  :mod:`nnlcc.ir.truncate`), next to the plan's modelled figure;
* the shipped digits MLP (``quantize,lcc`` and ``quantize,csd``): the same costs summed over
  the layers and the golden model's test accuracy.

Prints a table and writes the rows as JSON (default ``benchmarks/results/<date>/truncation.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from nnlcc.driver import (
    EXAMPLE_DATA,
    EXAMPLE_MODEL,
    accuracy_report,
    load_data,
    load_model,
    resolve_pipeline,
    run_passes,
)
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.family import ECP5
from nnlcc.ir.lower import lower_layer, lower_network
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.ir.truncate import InputPower, TruncationBudget, truncate
from nnlcc.passes import PassContext


def costs(graphs: list[AdderGraph]) -> dict[str, Any]:
    adders = sum(g.adders + g.const_adders for g in graphs)
    bits = sum(g.adder_bits for g in graphs)
    return {
        "adders": sum(g.adders for g in graphs),
        "adder_bits": bits,
        "mean_width": round(bits / max(adders, 1), 2),
        "max_width": max(g.max_bits for g in graphs),
    }


def layer_sqnr(layer: DenseLayer, n: int = 2000) -> float:
    """SQNR of the layer's accumulator before the output rounding on white Gaussian inputs
    of its calibration power, against the exact float product."""
    fmt = layer.in_fmt
    assert fmt is not None and layer.code is not None
    cols = layer.shape[1]
    graph = AdderGraph.with_inputs([(fmt.lo, fmt.hi)] * cols)
    terms = layer.code.lower(graph, list(range(cols)))
    comp = [0] * len(terms)
    facts = lower_layer(layer, fmt).truncation  # the LSB lowering chose within the budget
    if facts:
        cut = truncate(graph, terms, int(facts["lsb"]) + fmt.frac)
        graph, terms, comp = cut.graph, cut.terms, cut.comp
    rms = float(np.sqrt(layer.notes[InputPower].mean_square))
    x = fmt.quantize(np.random.default_rng(1).standard_normal((n, cols)) * rms)
    graph.outputs = [t.node for t in terms if t.node is not None]
    vals = graph.evaluate(x).astype(np.float64)
    acc = np.zeros((n, len(terms)))
    col = 0
    for r, t in enumerate(terms):
        if t.node is not None:
            acc[:, r] = ((-1.0 if t.neg else 1.0) * vals[:, col] + comp[r]) * 2.0**t.exp
            col += 1
    ref = x.astype(np.float64) @ layer.weight.T
    return round(float(10 * np.log10(np.sum(ref**2) / np.sum((acc - ref) ** 2))), 2)


def gaussian_row(n: int, pipeline: str) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, n)) / np.sqrt(n)
    g = MatrixGraph("g", "x", n, "y", [DenseLayer("fc", w, np.zeros(n))])
    t0 = time.perf_counter()
    for p in resolve_pipeline(pipeline):
        p.apply(g, PassContext(rng.standard_normal((512, n)), ECP5))
    layer = g.layers[0]
    assert isinstance(layer, DenseLayer) and layer.in_fmt is not None
    low = lower_layer(layer, layer.in_fmt)
    seconds = round(time.perf_counter() - t0, 2)
    budget = layer.notes.get(TruncationBudget)
    plan = {**(budget.to_json() if budget else {}), **(low.truncation or {})}
    return {
        "case": f"gaussian {n}x{n}",
        "pipeline": pipeline,
        **costs([low.graph]),
        "sqnr_db": layer_sqnr(layer),
        "plan": plan,
        "seconds": seconds,
    }


def digits_row(pipeline: str) -> dict[str, Any]:
    graph = load_model(EXAMPLE_MODEL)
    data = load_data(graph, EXAMPLE_MODEL, EXAMPLE_DATA, 0)
    t0 = time.perf_counter()
    run_passes(graph, resolve_pipeline(pipeline), data)
    net = lower_network(graph)
    seconds = round(time.perf_counter() - t0, 2)
    acc = accuracy_report(graph, net, data)
    plans = {low.name: low.truncation for low in net.layers if low.kind in ("dense", "conv")}
    return {
        "case": "digits MLP",
        "pipeline": pipeline,
        **costs([la.graph for la in net.layers]),
        "golden_accuracy": acc.golden,
        "output_sqnr_db": acc.sqnr_db,
        "plan": plans,
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="128x128 only")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    sizes = [128] if args.quick else [128, 256]
    codings = ["lcc{{sqnr_db=40,truncate={t}}}", "csd{{weight_bits=8,truncate={t}}}"]
    head = f"{'case':16} {'pipeline':44} {'adders':>7} {'bits':>8} {'mean':>6} {'max':>4} {'quality':>9}"
    print(head)
    for case in [*(("g", n) for n in sizes), ("digits", 0)]:
        for coding in codings:
            for t in ("off", "auto"):
                pipe = "quantize," + coding.format(t=t)
                row = gaussian_row(case[1], pipe) if case[0] == "g" else digits_row(pipe)
                rows.append(row)
                quality = (
                    f"{row['sqnr_db']:.2f}dB"
                    if "sqnr_db" in row
                    else f"{row['golden_accuracy']:.4f}"
                )
                print(
                    f"{row['case']:16} {pipe:44} {row['adders']:7} {row['adder_bits']:8}"
                    f" {row['mean_width']:6} {row['max_width']:4} {quality:>9}",
                    flush=True,
                )
    out = (
        args.json
        or Path(__file__).parent / "results" / str(datetime.date.today()) / "truncation.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
