"""Recurrent networks in Verilator through cocotb: the hidden (and cell) state of every time
step of every sequence, and the network outputs, bit-exact with the golden model; the measured
clocks per step are the strategy's; the report has a row per gate matrix and the cell, the
step clocks and the steps per second."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import compile_graph, recurrent_graph

from nnlcc.driver import CompileOptions, compile_model
from nnlcc.hdl.top import SequenceStrategy, top_for
from nnlcc.sim import available_simulators, verify_network

needs_verilator = pytest.mark.skipif(
    "verilator" not in available_simulators(), reason="verilator not usable here"
)


@needs_verilator
def test_every_gru_step_is_bit_exact(tmp_path: Path) -> None:
    graph = recurrent_graph("gru", steps=3, inputs=3, hidden=4, seed=2)
    x = np.random.default_rng(3).uniform(0, 1, size=(40, graph.input_size))
    net = compile_graph(graph, "quantize{act_bits=7},csd", calibration=x)
    top = top_for(net)
    assert isinstance(top, SequenceStrategy)
    res = verify_network(net, net.quantize_input(x[:12]), tmp_path)
    assert res.bit_exact, res.first_mismatch
    s = res.summary
    assert s["sequences"] == 12 and s["steps"] == 36
    assert s["step_clocks_measured"] == top.step_clocks
    assert s["sequence_latency"] >= 3 * top.step_clocks  # its steps, then the dense layer


@needs_verilator
def test_compiled_lstm_is_verified_and_reported(tmp_path: Path) -> None:
    """A torch LSTM (4 steps of 3 inputs, hidden 5) and a dense layer, compiled by the
    driver with LCC on the gate matrices."""
    torch = pytest.importorskip("torch")
    from nnlcc.examples.onnx_export import export_onnx

    class Seq(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = torch.nn.LSTM(3, 5, batch_first=True)
            self.fc = torch.nn.Linear(5, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.rnn(x)[1][0][-1])

    torch.manual_seed(0)
    model = export_onnx(Seq().eval(), (4, 3), tmp_path / "seq.onnx", batch_axis="batch")
    r = compile_model(
        CompileOptions(
            model=model,
            passes="quantize{act_bits=7},lcc{sqnr_db=30}",
            random_vectors=10,
            outdir=tmp_path / "out",
        )
    )
    assert r.verification is not None and r.verification.bit_exact
    assert r.verification.steps == 4 * r.verification.vectors
    rows = {row.name: row for row in r.layers}
    assert [rows[n].pass_name for n in ("rnn_W", "rnn_R", "rnn")] == ["lcc", "lcc", "lstm cell"]
    assert all(rows[n].est_luts for n in ("rnn_W", "rnn_R", "rnn"))
    step = rows["rnn"].latency
    assert r.verification.step_clocks_measured == step
    assert r.steps_per_second == round(100e6 / step)  # arty-a7's clock: estimate only
    assert r.latency_cycles is not None and r.latency_cycles >= 4 * step
