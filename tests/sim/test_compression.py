"""The compression target, end to end: the group-lasso pruned digits MLP with shared columns
and LCC, compiled by the driver and verified bit-exact in cocotb (Verilator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnlcc.driver import EXAMPLE_DATA, EXAMPLE_MODEL, CompileOptions, compile_model
from nnlcc.sim import available_simulators

PRUNED = EXAMPLE_MODEL.parent / "digits_mlp_pruned.onnx"
# dense CSD (quantize,csd) on digits_mlp.onnx: 968 adders, golden accuracy 0.9667
DENSE_CSD_ADDERS = 968
DENSE_CSD_ACCURACY = 0.9667
# 32 dB: LCC's cost-driven search (issue 20) lands on designs whose accuracy at 30 dB varies by
# about half a point around the target (0.9511 today); 32 dB keeps it (0.9644) at 318 adders
POINT = "quantize,share{clusters=31,layers=fc1},lcc{sqnr_db=32}"


@pytest.mark.slow
@pytest.mark.skipif("verilator" not in available_simulators(), reason="verilator not usable")
def test_pruned_shared_lcc_point_is_bit_exact_and_meets_the_target(tmp_path: Path) -> None:
    r = compile_model(
        CompileOptions(
            model=PRUNED,
            data=EXAMPLE_DATA,
            passes=POINT,
            random_vectors=200,
            outdir=tmp_path / "out",
        )
    ).to_json()
    ver = r["verification"]
    assert ver["bit_exact"] and ver["simulator"] == "verilator"
    assert ver["vectors"] == 450 + 200
    fc1, fc2 = r["layers"]
    assert fc1["pass"] == "share+lcc" and fc1["shared_columns"] == 31
    assert fc1["kept_columns"] == 41 and fc1["pre_adders"] == 10
    assert fc2["pass"] == "lcc" and fc2["shape"] == [10, 7] and fc2["pre_adders"] == 0
    assert r["totals"]["adders"] * 3 <= DENSE_CSD_ADDERS
    assert r["accuracy"]["golden"] >= DENSE_CSD_ACCURACY - 0.01
