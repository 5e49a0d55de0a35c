"""The LCC-family codes in hardware: a network whose layers are coded by the cost-driven LCC
(both orientations) and by the low-rank coder (split and joint second stages), lowered with
truncated partial sums, is bit-exact against the golden model in cocotb (Verilator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnlcc.ir.family import ECP5
from nnlcc.ir.lower import lower_network
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.passes import parse_pipeline, run_passes
from nnlcc.passes.lcc import LccCode
from nnlcc.passes.lowrank import LowRankCode
from nnlcc.sim import available_simulators, verify_network


def _low_rank(rng: np.random.Generator, rows: int, cols: int, rank: int) -> np.ndarray:
    w = rng.normal(size=(rows, rank)) @ rng.normal(size=(rank, cols))
    return (w + 0.05 * float(np.std(w)) * rng.normal(size=(rows, cols))) / np.sqrt(cols)


@pytest.mark.skipif("verilator" not in available_simulators(), reason="verilator not usable")
@pytest.mark.parametrize(
    ("matrix_pass", "want"),
    [
        ("lcc{sqnr_db=35,transpose=no}", "lcc"),
        ("lcc{sqnr_db=35,transpose=yes}", "lcc"),
        ("lowrank{sqnr_db=35,rank=2,coders=lcc}", "lowrank"),
        ("lowrank{sqnr_db=35,rank=2,coders=csd}", "lowrank"),
    ],
)
def test_lcc_family_network_is_bit_exact(tmp_path: Path, matrix_pass: str, want: str) -> None:
    rng = np.random.default_rng(21)
    g = MatrixGraph(
        "lcc_family",
        "x",
        12,
        "y",
        [
            DenseLayer("fc1", _low_rank(rng, 10, 12, 2), rng.normal(0, 0.1, 10), relu=True),
            DenseLayer("fc2", _low_rank(rng, 6, 10, 2), rng.normal(0, 0.1, 6)),
        ],  # type: ignore[list-item]
    )
    run_passes(g, parse_pipeline(f"quantize,{matrix_pass}"), rng.uniform(-1, 1, (64, 12)), ECP5)
    for layer in g.matrix_layers():
        assert layer.code is not None and layer.code.name == want
        if isinstance(layer.code, LccCode):
            assert layer.code.options["objective"] == "luts"
        if isinstance(layer.code, LowRankCode):
            assert layer.code.rank == 2
    net = lower_network(g)
    assert any(low.truncation for low in net.layers)  # the truncated graphs are simulated
    fmt = net.input_fmt
    x = rng.integers(fmt.lo, fmt.hi, size=(200, 12), endpoint=True)
    res = verify_network(net, x, tmp_path)
    assert res.bit_exact and res.vectors == 200
