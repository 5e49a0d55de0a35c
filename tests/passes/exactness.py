"""The exactness check of a coded matrix layer, shared by the property tests and
benchmarks/fuzz.py: random matrices (shapes, dynamic range, sparsity, zero rows and columns,
powers of two), coded by a pipeline, must lower to an adder graph that computes the code's
exact rational product, with node ranges holding the interval bounds and widths holding the
ranges."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.typing as npt

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.family import ECP5
from nnlcc.ir.fixed_point import bits_for_range
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.passes import PassContext, resolve_pipeline

#: The matrix pipelines under test: every matrix pass, alone and after share.
PIPELINES = (
    "quantize,csd{{weight_bits={bits}}}",
    "quantize,csd{{weight_bits={bits},cse=false}}",
    "quantize,lcc{{sqnr_db={sqnr}}}",
    "quantize,lcc{{sqnr_db={sqnr},objective=adders}}",
    "quantize,lowrank{{sqnr_db={sqnr},rank=1,coders=csd+lcc}}",
    "quantize,share{{clusters={k}}},csd{{weight_bits={bits}}}",
    "quantize,share{{clusters={k}}},lcc{{sqnr_db={sqnr}}}",
)


def random_matrix(rng: np.random.Generator, rows: int, cols: int, decades: float) -> np.ndarray:
    """Entries over ``decades`` orders of magnitude (1e-6..1e6 at most), some exact powers of
    two, some zero, with a zero row and a zero column when the shape allows."""
    lo = rng.uniform(-6, 6 - decades)
    w = rng.choice([-1.0, 1.0], size=(rows, cols)) * 10.0 ** rng.uniform(
        lo, lo + decades, (rows, cols)
    )
    pow2 = rng.random((rows, cols)) < 0.2
    w[pow2] = np.sign(w[pow2]) * 2.0 ** np.round(np.log2(np.abs(w[pow2])))
    w[rng.random((rows, cols)) < rng.uniform(0, 0.6)] = 0.0
    if rows > 1 and rng.random() < 0.5:
        w[rng.integers(rows)] = 0.0
    if cols > 1 and rng.random() < 0.5:
        w[:, rng.integers(cols)] = 0.0
    return w


def coded_graph(w: np.ndarray, pipeline: str, seed: int = 0) -> MatrixGraph:
    rows, cols = w.shape
    g = MatrixGraph("prop", "x", cols, "y", [DenseLayer("fc", w, np.zeros(rows))])
    x = np.random.default_rng(seed).uniform(-1, 1, size=(64, cols))
    for p in resolve_pipeline(pipeline):
        p.apply(g, PassContext(x, ECP5))
    return g


def _vectors(w: npt.NDArray[np.float64], lo: int, hi: int, rng: np.random.Generator) -> np.ndarray:
    """Random in-range inputs, the two constant extremes and, per row, the input reaching
    that row's largest and smallest value (the interval bounds)."""
    rows, cols = w.shape
    rand = rng.integers(lo, hi, size=(16, cols), endpoint=True)
    corners = [np.full(cols, lo), np.full(cols, hi)]
    for r in range(min(rows, 16)):
        corners.append(np.where(w[r] > 0, hi, lo))
        corners.append(np.where(w[r] > 0, lo, hi))
    return np.concatenate([rand, np.array(corners)]).astype(np.int64)


def check_exact(g: MatrixGraph, seed: int = 0) -> AdderGraph:
    """Lower the code of ``g``'s one layer and check it (AssertionError names the problem)."""
    layer = g.layers[0]
    assert isinstance(layer, DenseLayer) and layer.code is not None and layer.in_fmt is not None
    fmt = layer.in_fmt
    rows, cols = layer.shape
    graph = AdderGraph.with_inputs([(fmt.lo, fmt.hi)] * cols)
    terms = code_terms = layer.code.lower(graph, list(range(cols)))
    assert len(code_terms) == rows
    graph.outputs = [t.node for t in terms if t.node is not None]
    w = layer.code.implemented()
    fr = [[Fraction(float(v)) for v in row] for row in w]
    scale = max((f.denominator for row in fr for f in row), default=1)
    wi = np.array([[int(f * scale) for f in row] for row in fr], dtype=object)
    x = _vectors(np.asarray(w, dtype=np.float64), fmt.lo, fmt.hi, np.random.default_rng(seed))
    want = wi.dot(x.astype(object).T).T  # exact: Python integers
    got = graph.evaluate(x) if graph.outputs else np.zeros((len(x), 0), dtype=np.int64)
    col = 0
    for r, t in enumerate(terms):
        if t.node is None:
            assert all(v == 0 for v in want[:, r]), f"row {r} coded as zero but is not"
            continue
        vals = got[:, col]
        col += 1
        sign = -1 if t.neg else 1
        for i in range(len(x)):
            lhs = Fraction(sign * int(vals[i])) * Fraction(2) ** t.exp
            assert lhs == Fraction(want[i, r], scale), f"row {r}, vector {i}: {lhs} != exact"
    graph.check_ranges(x)  # every node's value within its [lo, hi]
    for k, n in enumerate(graph.nodes):
        width, signed = bits_for_range(n.lo, n.hi)
        assert graph.width(k) >= width, f"node {k}: width {graph.width(k)} < {width}"
        top = (1 << (width - 1 if signed else width)) - 1
        bottom = -(1 << (width - 1)) if signed else 0
        assert bottom <= n.lo <= n.hi <= top, f"node {k}: [{n.lo}, {n.hi}] not in {width} bits"
    return graph
