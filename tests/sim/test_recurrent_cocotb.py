"""The sequence top (a recurrent layer, then a dense layer) in Verilator through cocotb: the
hidden and cell states of every time step of every sequence, and the network outputs, bit-exact
with the golden model; the measured clocks per step are the strategy's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import compile_graph, recurrent_graph

from nnlcc.hdl.top import SequenceStrategy, top_for
from nnlcc.sim import available_simulators, verify_network

needs_verilator = pytest.mark.skipif(
    "verilator" not in available_simulators(), reason="verilator not usable here"
)


@needs_verilator
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_every_step_is_bit_exact(cell: str, tmp_path: Path) -> None:
    graph = recurrent_graph(cell, steps=3, inputs=3, hidden=4, seed=2)
    x = np.random.default_rng(3).uniform(0, 1, size=(40, graph.input_size))
    net = compile_graph(graph, "quantize{act_bits=7},csd", calibration=x)
    top = top_for(net)
    assert isinstance(top, SequenceStrategy)
    res = verify_network(net, net.quantize_input(x[:12]), tmp_path)
    assert res.bit_exact, res.first_mismatch
    s = res.summary
    assert s["sequences"] == 12 and s["steps"] == 36
    assert s["step_clocks_measured"] == top.step_clocks
    # a sequence: its steps, then the dense layer's pipeline
    assert s["sequence_latency"] >= 3 * top.step_clocks
