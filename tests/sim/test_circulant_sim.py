"""The circulant pass end to end: the driver compiles the digits MLP with the fft form, the
Verilog matches the golden model bit for bit in cocotb (Verilator), and report.json carries
each layer's block, stored weights and form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnlcc.driver import EXAMPLE_DATA, EXAMPLE_MODEL, CompileOptions, compile_model
from nnlcc.sim import available_simulators


@pytest.mark.slow  # ~50 s of CPU (Verilator build + run)
@pytest.mark.skipif("verilator" not in available_simulators(), reason="verilator not usable")
def test_circulant_fft_is_bit_exact_in_cocotb(tmp_path: Path) -> None:
    rep = compile_model(
        CompileOptions(
            model=EXAMPLE_MODEL,
            data=EXAMPLE_DATA,
            passes="quantize,circulant{block=4,form=fft}",
            random_vectors=100,
            outdir=tmp_path / "out",
        )
    ).to_json()
    assert rep["verification"]["bit_exact"] is True
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    for row in on_disk["layers"]:
        assert row["pass"] == "circulant" and row["block"] == 4 and row["form"] == "fft"
    assert [r["stored_weights"] for r in on_disk["layers"]] == [16 * 64 // 4, 12 * 16 // 4]
