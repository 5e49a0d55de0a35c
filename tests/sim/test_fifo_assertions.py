"""The streaming top's FIFO assertions run in the cocotb Verilog too: the Verilog the bit-exact
check simulates carries them (``emit(checks=True)``, Verilator ``--assert``), and a join FIFO
one entry too shallow stops the simulation with the assertion's own message."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from amaranth.back.verilog import convert

from nnlcc.errors import VerificationError
from nnlcc.hdl.stream import StreamPlan, StreamTop
from nnlcc.hdl.top import StreamStrategy, top_for
from nnlcc.sim import available_simulators
from nnlcc.sim.runner import SIM_DIR_ENV, simulate_design
from nnlcc.sim.verify import write_vectors

sys.path.insert(0, str(Path(__file__).parents[1] / "hdl"))
from test_stream_top import cnn_residual

pytestmark = pytest.mark.skipif("verilator" not in available_simulators(), reason="no verilator")


def test_emitted_verilog_carries_the_assertions(tmp_path: Path) -> None:
    net = cnn_residual()
    top_for(net).emit(tmp_path / "checked.v", "t", checks=True)
    top_for(net).emit(tmp_path / "synth.v", "t")
    checked = (tmp_path / "checked.v").read_text()
    assert "assert (" in checked and "layer add: FIFO a (depth" in checked
    assert "assert (" not in (tmp_path / "synth.v").read_text()  # yosys reads this one


def test_too_shallow_fifo_stops_the_verilog_simulation(tmp_path: Path) -> None:
    net = cnn_residual()
    strategy = top_for(net)
    assert isinstance(strategy, StreamStrategy)
    exact = StreamPlan(net).fifo_depths()
    shallow = {i: (a, b - 1) for i, (a, b) in exact.items()}  # the skip branch waits longest
    x = np.random.default_rng(0).integers(
        net.input_fmt.lo, net.input_fmt.hi + 1, size=(2, net.n_inputs)
    )

    def prepare(out: Path, verilog: Path) -> dict[str, Any]:
        write_vectors(net, x, out)
        top = StreamTop(net, assertions=True, fifo_depths=shallow)
        verilog.write_text(convert(top, name="t", emit_src=False))
        meta = {**top.port_metadata("t"), **strategy.testbench_meta()}
        return {**meta, "frame_pixels": strategy.frame_pixels}

    with pytest.raises(VerificationError) as e:
        simulate_design(tmp_path, "t", strategy.testbench, prepare, SIM_DIR_ENV)
    msg = str(e.value)
    ((_, depth),) = shallow.values()
    assert f"layer add: FIFO b (depth {depth}) overflows (assertion at t.v:" in msg, msg
    assert "\n" not in msg
