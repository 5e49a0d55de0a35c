"""Hardware follows the schedule for every register placement: ``schedule{every=k}`` and the
delay-model budget, bit-exact and cycle-exact in Amaranth's simulator, and clamps to
fixed-point format limits (tested on high bits, no comparator) against the golden model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import shared_graph
from hypothesis import given, settings
from hypothesis import strategies as st
from test_adder_tree import _random_inputs, random_graph, run_pipeline

from nnlcc.hdl.adder_tree import bound_bits
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.family import ECP5
from nnlcc.ir.timing import StageBudget, clock_stage_budget, delay_model


def test_bound_bits() -> None:
    assert bound_bits(127, above=True) == 7
    assert bound_bits(0, above=True) == 0
    assert bound_bits(100, above=True) is None
    assert bound_bits(-128, above=False) == 7
    assert bound_bits(-1, above=False) == 0
    assert bound_bits(0, above=False) == -1
    assert bound_bits(5, above=False) is None
    assert bound_bits(-100, above=False) is None


def _format_clamps(rng: np.random.Generator) -> AdderGraph:
    """Sums of mixed-sign inputs clamped to format limits that they cross on both sides."""
    g = AdderGraph.with_inputs([(-300, 200), (-50, 400), (0, 255)])
    s = g.add(0, 1, sa=int(rng.integers(0, 3)))
    t = g.add(s, 2, nb=True)
    u = g.add(t, g.const(int(rng.integers(-40, 40))))
    q = g.shr(u, int(rng.integers(0, 3)))
    outs = []
    for bits in (1, 4, 8):
        outs.append(g.clamp(q, -(1 << (bits - 1)), (1 << (bits - 1)) - 1))
        outs.append(g.clamp(q, 0, (1 << bits) - 1))
        outs.append(g.clamp(s, -(1 << bits), (1 << bits) - 1))
    outs.append(g.clamp(2, 0, 127))  # unsigned operand
    g.outputs = outs
    return g


@pytest.mark.parametrize("every", [1, 2, 3])
def test_format_clamps_exact(every: int) -> None:
    rng = np.random.default_rng(every)
    g = _format_clamps(rng)
    g.set_stage_budget(StageBudget.every(every))
    run_pipeline(g, _random_inputs(g, 40, rng))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), every=st.integers(2, 4))
def test_random_graphs_every_k(seed: int, every: int) -> None:
    rng = np.random.default_rng(seed)
    g = random_graph(rng)
    g.set_stage_budget(StageBudget.every(every))
    x = _random_inputs(g, 16, rng)
    run_pipeline(g, x, gaps=(2, 9))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mhz=st.sampled_from([150.0, 250.0, 400.0]))
def test_random_graphs_delay_budget(seed: int, mhz: float) -> None:
    rng = np.random.default_rng(seed)
    g = random_graph(rng)
    adder, route = delay_model(ECP5)
    g.set_stage_budget(clock_stage_budget(adder, route, mhz, fanout=int(rng.integers(0, 3))))
    run_pipeline(g, _random_inputs(g, 16, rng), gaps=(3,))


@pytest.mark.parametrize("every", [2, 3])
def test_streaming_residual_cnn_every_k(every: int) -> None:
    """A pixel-streaming top (line buffers, a residual add that aligns two paths) follows
    any schedule: the lags come from the layers' latencies."""
    from test_stream_top import check, cnn_residual

    net = cnn_residual()
    for layer in net.layers:
        layer.graph.set_stage_budget(StageBudget.every(every))
    check(net, 2, 1)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), bound=st.integers(1, 3), every=st.integers(1, 2))
def test_fanout_copies_bit_exact(seed: int, bound: int, every: int) -> None:
    """Registers duplicated to bound their fanout (and the readers spread over the copies)
    compute the golden model's outputs at the same clocks."""
    rng = np.random.default_rng(seed)
    g = shared_graph(rng, n_in=3, n_nodes=30)
    g.set_stage_budget(replace(StageBudget.every(every), fanout=bound))
    run_pipeline(g, _random_inputs(g, 12, rng), gaps=(2,))
