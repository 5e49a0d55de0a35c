"""An auto-coded network in hardware: every layer coded by ``auto`` (alkaid's rebuilt
program forced on one layer, so the peer's code reaches Verilog too), verified bit-exact
against the golden model in cocotb (Verilator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnlcc.ir.family import ECP5
from nnlcc.ir.lower import lower_network
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.passes import LayerSettings, attach_layer_settings, resolve_pipeline, run_passes
from nnlcc.passes.alkaid import available
from nnlcc.passes.auto import AutoRecord
from nnlcc.sim import available_simulators, verify_network


@pytest.mark.skipif("verilator" not in available_simulators(), reason="verilator not usable")
@pytest.mark.skipif(not available(), reason="alkaid not installed (bench extra)")
def test_auto_coded_network_is_bit_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    g = MatrixGraph(
        "auto_net",
        "x",
        10,
        "y",
        [
            DenseLayer("fc1", rng.normal(0, 0.5, (8, 10)), rng.normal(0, 0.1, 8), relu=True),
            DenseLayer("fc2", rng.normal(0, 0.5, (5, 8)), rng.normal(0, 0.1, 5)),
        ],  # type: ignore[list-item]
    )
    settings = {"fc1": LayerSettings("auto", {"auto": {"coders": "alkaid"}})}
    passes, _ = attach_layer_settings(g, resolve_pipeline(None), settings)
    run_passes(g, passes, rng.uniform(0, 1, size=(64, 10)), ECP5)
    fc1, fc2 = g.matrix_layers()
    assert fc1.code is not None and fc1.code.name == "alkaid"
    assert fc2.code is not None and fc2.notes[AutoRecord].coder
    net = lower_network(g)
    fmt = net.input_fmt
    x = rng.integers(fmt.lo, fmt.hi, size=(300, 10), endpoint=True)
    res = verify_network(net, x, tmp_path)
    assert res.bit_exact and res.vectors == 300
