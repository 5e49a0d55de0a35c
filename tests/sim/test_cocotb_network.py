"""Generated Verilog against the golden model, through cocotb (Verilator, and Icarus if present).

The network is random but shaped like a lowered one: shift-and-add accumulators sharing
sub-sums, then per output a constant adder (bias + rounding), an arithmetic shift and a clamp
(requantization), two layers chained.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from nnlcc.errors import ToolchainError, VerificationError
from nnlcc.hdl.top import VectorStrategy
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.lowered import LoweredLayer, LoweredNetwork
from nnlcc.sim import SimResult, available_simulators, run_cocotb, verify_network
from nnlcc.sim.tb_core import pack, unpack

SIMS = available_simulators()
needs_verilator = pytest.mark.skipif("verilator" not in SIMS, reason="verilator not usable here")
needs_icarus = pytest.mark.skipif("icarus" not in SIMS, reason="iverilog not installed")


def random_layer(
    name: str, n_in: int, n_out: int, in_fmt: FixedFormat, out_fmt: FixedFormat, seed: int
) -> LoweredLayer:
    rng = np.random.default_rng(seed)
    g = AdderGraph.with_inputs([(in_fmt.lo, in_fmt.hi)] * n_in)
    outputs = []
    for j in range(n_out):
        terms = rng.choice(n_in, size=int(rng.integers(2, n_in + 1)), replace=False)
        acc = int(terms[0])
        for t in terms[1:]:
            # reuse an earlier node now and then, as common-subexpression sharing does
            share = len(g.nodes) > n_in and rng.random() < 0.2
            b = int(rng.integers(n_in, len(g.nodes))) if share else int(t)
            sa, sb = int(rng.integers(0, 3)), int(rng.integers(0, 4))
            acc = g.add(acc, b, sa, sb, nb=bool(rng.random() < 0.4))
        shift = int(rng.integers(1, 5)) if j % 5 else -1  # one left shift among the outputs
        const = int(rng.integers(-200, 200)) + (1 << (shift - 1) if shift > 0 else 0)
        q = g.shr(g.add(acc, g.const(const)), shift)
        lo = 0 if j % 2 else out_fmt.lo  # ReLU on every other output
        outputs.append(g.clamp(q, lo, out_fmt.hi))
    g.outputs = outputs
    return LoweredLayer(name=name, graph=g, in_fmt=in_fmt, out_fmt=out_fmt)


def random_network(seed: int = 1) -> LoweredNetwork:
    fin = FixedFormat(8, 6, True)
    fmid = FixedFormat(7, 4, True)
    fout = FixedFormat(10, 4, True)
    return LoweredNetwork(
        "rand",
        fin,
        [
            random_layer("dense0", 6, 5, fin, fmid, seed),
            random_layer("dense1", 5, 3, fmid, fout, seed + 1),
        ],
    )


def random_vectors(net: LoweredNetwork, n: int, seed: int = 2) -> np.ndarray:
    f = net.input_fmt
    x = np.random.default_rng(seed).integers(f.lo, f.hi + 1, size=(n, net.n_inputs))
    x[0], x[1] = f.lo, f.hi  # extremes first: they exercise saturation on both sides
    return x


@pytest.fixture(scope="module")
def verilator_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimResult, Path]:
    if "verilator" not in SIMS:
        pytest.skip("verilator not usable here")
    net = random_network()
    out = tmp_path_factory.mktemp("verilator_net")
    res = verify_network(net, random_vectors(net, 1200), out)  # default choice: Verilator
    return res, out


def test_pack_unpack_signed_roundtrip() -> None:
    row = [-128, 127, -1, 0, 5]
    assert unpack(pack(row, 8), 8, 5, True) == row
    assert unpack(pack([0, 255, 7], 8), 8, 3, False) == [0, 255, 7]
    assert pack([-1, 0], 4) == 0x0F  # element 0 in the low bits


def test_network_shape_is_realistic() -> None:
    net = random_network()
    for layer in net.layers:
        assert layer.graph.adders > 0 and layer.graph.const_adders > 0
        assert layer.graph.latency >= 3
    y = net.evaluate(random_vectors(net, 500))
    assert (y == net.output_fmt.hi).any() or (y == net.output_fmt.lo).any()  # saturation seen


@needs_verilator
def test_verilator_bit_exact(verilator_run: tuple[SimResult, Path]) -> None:
    res, out = verilator_run
    assert res.simulator == "verilator"
    assert res.bit_exact and res.vectors == 1200 and res.mismatches == 0
    assert res.summary["latency"] == random_network().latency
    assert (out / "summary.json").is_file() and (out / "nnlcc_top.v").is_file()


@needs_verilator
def test_corrupted_golden_names_vector_and_layer(
    verilator_run: tuple[SimResult, Path], tmp_path: Path
) -> None:
    _, out = verilator_run
    bad = tmp_path / "bad"
    shutil.copytree(out, bad, symlinks=True)  # the cached build is reused: no recompile
    data = dict(np.load(bad / "vectors.npz"))
    data["layer1"][417, 2] += 1  # the first difference: vector 417, last layer
    data["layer0"][900, 0] ^= 1  # a later one in the first layer must not be reported first
    np.savez(bad / "vectors.npz", **data)
    with pytest.raises(VerificationError, match=r"vector 417, layer 1 \(dense1\): output 2") as e:
        run_cocotb(
            bad / "nnlcc_top.v",
            "nnlcc_top",
            VectorStrategy.testbench,
            bad,
            simulator="verilator",
            extra_env={"NNLCC_SIM_DIR": str(bad)},
        )
    assert "\n" not in str(e.value)
    assert e.value.result.mismatches == 2  # type: ignore[attr-defined]
    assert e.value.result.build_seconds == 0.0  # type: ignore[attr-defined]


@needs_icarus
def test_icarus_bit_exact(tmp_path: Path) -> None:
    net = random_network(seed=5)
    res = verify_network(net, random_vectors(net, 400, seed=3), tmp_path, simulator="icarus")
    assert res.simulator == "icarus" and res.bit_exact and res.vectors == 400


def test_unknown_simulator_is_a_toolchain_error(tmp_path: Path) -> None:
    net = random_network()
    with pytest.raises(ToolchainError, match="unknown simulator"):
        verify_network(net, random_vectors(net, 4), tmp_path, simulator="modelsim")
