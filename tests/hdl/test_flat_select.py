"""MAX and MIN through the flat Verilog writer: bit-exact in Verilator against the golden model
(the Amaranth pipeline is checked in ``test_adder_tree``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nnlcc.hdl.flat_verilog import emit_flat_verilog
from nnlcc.hdl.top import top_for
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.lowered import LoweredLayer, LoweredNetwork


def _select_graph() -> AdderGraph:
    """Mixed signs and widths: signed vs unsigned operands, negative-only, a sum in front."""
    g = AdderGraph.with_inputs([(-128, 127)] * 4)
    s = g.add(0, 1, sb=2)  # 10-bit signed
    u = g.clamp(2, 0, 127)  # unsigned
    neg = g.clamp(3, -128, -1)  # negative only
    mx = g.max(s, u)
    mn = g.min(u, neg)
    both = g.max(g.min(s, 3), mn)
    g.outputs = [mx, mn, both, g.max(0, 0), g.min(neg, s)]
    return g


def test_flat_verilog_max_min_bit_exact(tmp_path: Path) -> None:
    from nnlcc.sim.runner import SIM_DIR_ENV, available_simulators, simulate_design
    from nnlcc.sim.verify import write_vectors

    if "verilator" not in available_simulators():
        pytest.skip("verilator not usable here")
    g = _select_graph()
    fmt = FixedFormat(8, 0, True)
    out = FixedFormat(12, 0, True)
    net = LoweredNetwork("sel", fmt, [LoweredLayer("l0", g, fmt, out)], (4,))
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 127, (200, 4), endpoint=True)
    x[:2] = [[-128] * 4, [127] * 4]

    def prepare(outdir: Path, verilog: Path) -> dict[str, Any]:
        write_vectors(net, x, outdir)
        return {**emit_flat_verilog(net, verilog, "sel"), **top_for(net).testbench_meta()}

    res = simulate_design(
        tmp_path, "sel", "nnlcc.sim.tb_network", prepare, SIM_DIR_ENV, simulator="verilator"
    )
    assert res.bit_exact and res.vectors == len(x)
