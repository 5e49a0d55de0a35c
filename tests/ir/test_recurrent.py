"""Recurrent layers: the activation tables' stated error, the cell program's exact ranges (what
the hardware's widths are built from) and the golden model against the float network."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compile_graph, recurrent_graph
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlcc.ir.activation import ActivationTable, default_table
from nnlcc.ir.cell import CellPlan, LoweredRecurrent
from nnlcc.ir.recurrent import RecurrentLayer


@settings(max_examples=40, deadline=None)
@given(
    func=st.sampled_from(["sigmoid", "tanh"]),
    bits=st.integers(4, 10),
    frac=st.integers(0, 12),
    q=st.lists(st.integers(-(1 << 14), 1 << 14), min_size=1, max_size=30),
)
def test_table_error_holds_for_every_input(func: str, bits: int, frac: int, q: list[int]) -> None:
    """The stated error bounds ``|apply(x) - f(x)|`` for inputs of any format."""
    t = default_table(func, bits)  # type: ignore[arg-type]
    x = np.asarray(q, dtype=np.float64) * 2.0**-frac
    f = 0.5 * (1 + np.tanh(x / 2)) if func == "sigmoid" else np.tanh(x)
    got = t.apply(q, frac) / t.one
    assert np.all(np.abs(got - f) <= t.max_error + 1e-12)
    # the symmetry is exact (zero aside: it reads the table's positive side)
    pos = [v for v in q if v > 0]
    mirror = t.apply([-v for v in pos], frac)
    want = t.one - t.apply(pos, frac) if func == "sigmoid" else -t.apply(pos, frac)
    assert np.array_equal(mirror, want)


def test_table_error_is_stated() -> None:
    t = ActivationTable("sigmoid", 8, 5, 8)
    assert 0 < t.max_error < 2.0**-5
    assert "max error" in t.describe()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_golden_model_tracks_the_float_network(cell: str) -> None:
    """Every value of the cell program stays in the range its register is built for, and the
    golden model's last hidden state is within a few LSBs of the float network's."""
    graph = recurrent_graph(cell)
    x = np.random.default_rng(1).uniform(0, 1, size=(64, graph.input_size))
    net = compile_graph(graph, "quantize{act_bits=8},csd{weight_bits=10}", calibration=x)
    low = net.layers[0]
    assert isinstance(low, LoweredRecurrent) and low.plan is not None
    xi = net.quantize_input(x)
    # the ranges: run every step and check every op's value against its [lo, hi]
    wx, hs, cs = low.run(xi.reshape(len(xi), graph.input_shape[0], -1))
    h = np.zeros_like(hs[:, 0])
    c = np.zeros_like(cs[:, 0]) if cell == "lstm" else None
    plan = low.plan
    for t in range(hs.shape[1]):
        rh = low.graph.evaluate(h)
        env = _trace_ops(plan, wx[:, t], rh, h, c)
        for op in plan.ops:
            assert env[op.name].min() >= op.lo and env[op.name].max() <= op.hi, op.name
        h, c = hs[:, t], (cs[:, t] if cell == "lstm" else None)
    rnn = graph.layers[0]
    assert isinstance(rnn, RecurrentLayer) and graph.input_fmt is not None
    xq = xi * 2.0**-graph.input_fmt.frac
    float_h = rnn.forward_implemented(xq.reshape(len(xi), graph.input_shape[0], -1))
    golden_h = hs[:, -1] * 2.0**-low.out_fmt.frac
    assert np.max(np.abs(golden_h - float_h)) < 0.08
    assert plan.latency >= low.graph.latency + 2
    assert plan.describe().count("max error") == 2


def _trace_ops(
    plan: CellPlan, wx: np.ndarray, rh: np.ndarray, h: np.ndarray, c: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Every operation's value of one step (the plan's own program, cut after each op)."""
    seen: dict[str, np.ndarray] = {}
    for i, op in enumerate(plan.ops, start=1):
        part = CellPlan(plan.cell, plan.hidden, plan.ops[:i], plan.inputs, {"v": op.name})
        seen[op.name] = part.step(wx, rh, h, c)["v"]
    return seen


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_ir_text_round_trips_a_coded_recurrent_layer(cell: str) -> None:
    """Printed and parsed back, the coded layer prints the same and lowers to the same
    golden model."""
    from nnlcc.ir.lower import lower_network
    from nnlcc.passes.text import parse_graph, print_graph

    graph = recurrent_graph(cell)
    x = np.random.default_rng(1).uniform(0, 1, size=(32, graph.input_size))
    net = compile_graph(graph, "quantize,lcc{sqnr_db=30}", calibration=x)
    text = print_graph(graph)
    back = parse_graph(text)
    assert print_graph(back) == text
    xi = net.quantize_input(x)
    assert np.array_equal(lower_network(back).evaluate(xi), net.evaluate(xi))
