"""``schedule{every=2}`` in generated Verilog against the golden model, through cocotb: the
Amaranth writer on a two-layer network, the flat writer on one ``--layer``."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cocotb_network import random_network, random_vectors

import nnlcc.compile_layer as lv
from nnlcc.driver import CompileOptions
from nnlcc.ir.timing import StageBudget
from nnlcc.sim import available_simulators, verify_network

EXAMPLES = Path(__file__).parents[2] / "examples"
needs_sim = pytest.mark.skipif(not available_simulators(), reason="no HDL simulator")


@needs_sim
def test_every_2_network_bit_exact(tmp_path: Path) -> None:
    net = random_network(seed=7)
    before = [la.graph.latency for la in net.layers]
    for layer in net.layers:
        layer.graph.set_stage_budget(StageBudget.every(2))
    assert [la.graph.latency for la in net.layers] == [-(-lat // 2) for lat in before]
    res = verify_network(net, random_vectors(net, 300, seed=4), tmp_path)
    assert res.bit_exact and res.vectors == 300 and res.summary["latency"] == net.latency


@needs_sim
def test_every_2_flat_layer_bit_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lv, "FLAT_NODES", 0)
    opts = CompileOptions(
        model=EXAMPLES / "digits_cnn.onnx",
        outdir=tmp_path,
        random_vectors=150,
        passes="quantize,lcc,schedule{every=2}",
    )
    r = lv.compile_layer(opts, "conv2", lambda _: None)
    assert r["verilog_writer"] == "flat" and r["verification"]["bit_exact"]
    assert r["verification"]["vectors"] == 150


@needs_sim
def test_fanout_copies_network_bit_exact(tmp_path: Path) -> None:
    """Every register that more than one reader reads duplicated (fanout 1), in the Amaranth
    writer's Verilog with its keep attributes: bit-exact, the same latency."""
    net = random_network(seed=7)
    before = [la.graph.latency for la in net.layers]
    for layer in net.layers:
        layer.graph.set_stage_budget(StageBudget.every(1, fanout=1))
    assert any(la.graph.copies.copies for la in net.layers)
    assert [la.graph.latency for la in net.layers] == before
    res = verify_network(net, random_vectors(net, 200, seed=5), tmp_path)
    assert res.bit_exact and res.vectors == 200
    assert "(* keep" in (tmp_path / "nnlcc_top.v").read_text()


@needs_sim
def test_fanout_copies_flat_layer_bit_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lv, "FLAT_NODES", 0)
    opts = CompileOptions(
        model=EXAMPLES / "digits_mlp.onnx",
        outdir=tmp_path,
        random_vectors=150,
        passes="quantize,lcc,schedule{every=1,fanout=2}",
    )
    r = lv.compile_layer(opts, "fc2", lambda _: None)
    assert r["verilog_writer"] == "flat" and r["verification"]["bit_exact"]
    assert "(* keep *) reg" in next(tmp_path.glob("*.v")).read_text()
