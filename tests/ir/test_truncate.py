"""Truncated partial sums (nnlcc.ir.truncate): on random matrices
coded by every matrix pipeline, the truncated graph stays within its error bounds of the exact
product, its ranges hold its values, its modelled noise matches the measured one, and the
plans the passes make keep the SQNR they promise."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "passes"))
from exactness import PIPELINES, coded_graph, random_matrix

from nnlcc.errors import BadInputError, NnlccError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.family import ECP5
from nnlcc.ir.lower import lower_layer
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.ir.truncate import TruncationBudget, output_weights, truncate
from nnlcc.passes import PassContext, resolve_pipeline


def _lowered(g: MatrixGraph) -> tuple[AdderGraph, list, DenseLayer]:
    layer = g.layers[0]
    assert isinstance(layer, DenseLayer) and layer.code is not None and layer.in_fmt is not None
    graph = AdderGraph.with_inputs([(layer.in_fmt.lo, layer.in_fmt.hi)] * layer.shape[1])
    return graph, layer.code.lower(graph, list(range(layer.shape[1]))), layer


def _accumulators(graph: AdderGraph, terms: list, x: np.ndarray, comp: list[int]) -> np.ndarray:
    """Each row's accumulator in input-LSB units (float64: exact for these sizes)."""
    live = [t.node for t in terms if t.node is not None]
    graph.outputs = live
    vals = graph.evaluate(x).astype(np.float64) if live else np.zeros((len(x), 0))
    out = np.zeros((len(x), len(terms)))
    col = 0
    for r, t in enumerate(terms):
        if t.node is None:
            continue
        sign = -1.0 if t.neg else 1.0
        out[:, r] = (sign * vals[:, col] + comp[r]) * 2.0**t.exp
        col += 1
    return out


def check_truncation(g: MatrixGraph, shift: int, seed: int = 0) -> None:
    """Truncate ``g``'s one layer at ``shift`` above its finest output weight and check
    bounds, ranges and the noise model on random in-range inputs."""
    graph, terms, layer = _lowered(g)
    fmt = layer.in_fmt
    assert fmt is not None
    tw = [t for t in output_weights(graph, terms) if np.isfinite(t)]
    if not tw:
        return
    lsb = int(min(tw)) + shift
    cut = truncate(graph, terms, lsb)
    rng = np.random.default_rng(seed)
    x = rng.integers(fmt.lo, fmt.hi, size=(400, layer.shape[1]), endpoint=True)
    exact = _accumulators(graph, terms, x, [0] * len(terms))
    got = _accumulators(cut.graph, cut.terms, x, cut.comp)
    err = got - exact
    lo, hi = np.array(cut.err_lo), np.array(cut.err_hi)
    tol = 1e-9 * (1.0 + np.abs(exact))
    assert np.all(err >= lo - tol) and np.all(err <= hi + tol), "error outside its bounds"
    cut.graph.check_ranges(x)  # widths come from the truncated ranges
    # uniform inputs have uniform low bits: the measured noise follows the model
    measured = float(np.mean(np.sum(err**2, axis=1)))
    model = cut.noise
    if model > 0:
        assert measured <= 2.0 * model + 1e-9, (measured, model)
    else:
        assert measured == 0.0
    assert cut.graph.adder_bits <= graph.adder_bits + 2 * graph.adders  # floors never widen


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    decades=st.floats(0.0, 8.0),
    template=st.sampled_from(PIPELINES),
    bits=st.integers(3, 12),
    sqnr=st.integers(15, 50),
    shift=st.integers(0, 12),
)
def test_truncated_graph_within_bounds(
    seed: int,
    rows: int,
    cols: int,
    decades: float,
    template: str,
    bits: int,
    sqnr: int,
    shift: int,
) -> None:
    w = random_matrix(np.random.default_rng(seed), rows, cols, decades)
    pipeline = template.format(bits=bits, sqnr=sqnr, k=max(1, cols // 2))
    try:
        g = coded_graph(w, pipeline, seed=seed % 1000)
    except NnlccError:
        reject()
    check_truncation(g, shift, seed)


def _gaussian(rows: int, cols: int, pipeline: str, seed: int = 0) -> MatrixGraph:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)) / np.sqrt(cols)
    g = MatrixGraph("g", "x", cols, "y", [DenseLayer("fc", w, np.zeros(rows))])
    x = rng.standard_normal((256, cols))
    for p in resolve_pipeline(pipeline):
        p.apply(g, PassContext(x, ECP5))
    return g


def _measured_sqnr(g: MatrixGraph, seed: int = 1) -> float:
    """Layer SQNR before the output rounding on white Gaussian inputs of the calibration
    power: the truncated accumulator against the exact float product."""
    graph, terms, layer = _lowered(g)
    fmt = layer.in_fmt
    assert fmt is not None
    plan = lower_layer(layer, fmt).truncation
    cut = truncate(graph, terms, int(plan["lsb"]) + fmt.frac) if plan else None
    x = fmt.quantize(np.random.default_rng(seed).standard_normal((2000, layer.shape[1])))
    acc = (
        _accumulators(cut.graph, cut.terms, x, cut.comp)
        if cut
        else _accumulators(graph, terms, x, [0] * len(terms))
    )
    ref = x.astype(np.float64) @ layer.weight.T
    return float(10 * np.log10(np.sum(ref**2) / np.sum((acc - ref) ** 2)))


@pytest.mark.parametrize(
    "pipeline",
    [
        "quantize,csd{weight_bits=8}",
        "quantize,lcc{sqnr_db=35}",
        "quantize,share{clusters=20},csd{weight_bits=8}",
        "quantize,share{clusters=20},lcc{sqnr_db=35}",
    ],
)
def test_auto_plan_saves_bits_and_keeps_its_sqnr(pipeline: str) -> None:
    g = _gaussian(32, 40, pipeline)
    off = _gaussian(
        32,
        40,
        pipeline.replace("}", ",truncate=off}", 1)
        if "share" not in pipeline
        else pipeline[: pipeline.rindex("}")] + ",truncate=off}",
    )
    layer = g.layers[0]
    assert isinstance(layer, DenseLayer) and layer.in_fmt is not None
    plan = lower_layer(layer, layer.in_fmt).truncation
    assert plan is not None
    assert plan["sqnr_db"] >= plan["target_db"] - 1e-9
    if "lcc" in pipeline and "share" not in pipeline:
        assert plan["target_db"] >= 35.0  # the coding's reserve pays for the truncation
    bits_on = lower_layer(layer, layer.in_fmt).graph.adder_bits
    off_layer = off.layers[0]
    assert isinstance(off_layer, DenseLayer) and off_layer.in_fmt is not None
    assert TruncationBudget not in off_layer.notes
    assert bits_on < lower_layer(off_layer, off_layer.in_fmt).graph.adder_bits
    # measured on white inputs, within a quarter dB of what the plan promises
    assert _measured_sqnr(g) >= plan["target_db"] - 0.25


def test_off_lowers_the_exact_graph() -> None:
    g = _gaussian(16, 20, "quantize,csd{weight_bits=8,truncate=off}")
    layer = g.layers[0]
    assert isinstance(layer, DenseLayer) and layer.in_fmt is not None
    assert TruncationBudget not in layer.notes
    graph, _, _ = _lowered(g)
    low = lower_layer(layer, layer.in_fmt).graph
    assert all(n.op.value != "shr" or n.sa <= 0 for n in low.nodes[: len(graph.nodes)])
    assert low.nodes[: len(graph.nodes)] == graph.nodes


def test_unreachable_sqnr_names_the_layer() -> None:
    with pytest.raises(BadInputError, match=r"layer fc: truncate=60 dB cannot be reached: .* dB"):
        _gaussian(16, 20, "quantize,csd{weight_bits=6,truncate=60}")


def test_explicit_sqnr_is_kept() -> None:
    g = _gaussian(32, 40, "quantize,csd{weight_bits=10,truncate=40}")
    layer = g.layers[0]
    assert isinstance(layer, DenseLayer) and layer.in_fmt is not None
    plan = lower_layer(layer, layer.in_fmt).truncation
    assert plan is not None
    assert plan["target_db"] == pytest.approx(40.0) and plan["sqnr_db"] >= 40.0
    assert _measured_sqnr(g) >= 39.75


def test_bad_option_is_refused() -> None:
    with pytest.raises(NnlccError, match="truncate must be auto, off or an SQNR"):
        resolve_pipeline("quantize,lcc{truncate=maybe}")


@pytest.mark.slow
def test_truncated_lcc_layer_is_bit_exact_in_verilator(tmp_path: Path) -> None:
    """A truncated LCC layer (floors, narrowed adders, compensated constant) simulates
    bit-exactly against the golden model."""
    from nnlcc.ir.lower import lower_network
    from nnlcc.sim.runner import available_simulators
    from nnlcc.sim.verify import verify_network

    if "verilator" not in available_simulators():
        pytest.skip("verilator not usable here")
    g = _gaussian(12, 16, "quantize,lcc{sqnr_db=30}")
    plan = g.layers[0].notes[TruncationBudget]
    net = lower_network(g)
    graph = net.layers[0].graph
    floors = sum(1 for n in graph.nodes if n.op.value == "shr" and n.sa > 0)
    assert floors > len(graph.outputs), plan  # more than the requantization's shifts
    rng = np.random.default_rng(5)
    fmt = net.input_fmt
    vectors = rng.integers(fmt.lo, fmt.hi, (300, 16), endpoint=True)
    res = verify_network(net, vectors, tmp_path, simulator="verilator")
    assert res.bit_exact and res.vectors == len(vectors)
