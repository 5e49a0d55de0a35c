"""The card's command end to end: ``nnlcc compile`` of the shipped example for the Arty A7,
with the default pipeline, the cocotb check, the Vivado tree and the cost-model estimate (no
yosys); then
``nnlcc sim`` re-runs the check on the written directory."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nnlcc.sim import available_simulators

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("verilator" not in available_simulators(), reason="no verilator"),
]

NNLCC = [sys.executable, "-m", "nnlcc.cli"]


def test_card_command_on_the_example(tmp_path: Path) -> None:
    out = tmp_path / "digits"
    run = subprocess.run(
        [*NNLCC, "compile", "--board", "arty-a7", "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr
    r = json.loads((out / "report.json").read_text())
    for key in ("model", "board", "passes", "layers", "totals", "accuracy"):
        assert key in r
    assert re.search(r",auto(\{[^{}]*\})?$", r["passes"])  # auto is the default matrix pass
    assert all("auto_coder" in layer for layer in r["layers"])
    for layer in r["layers"]:
        assert {"name", "shape", "adders", "depth", "out_bits"} <= set(layer)
    t = r["totals"]
    assert {"adders", "weights", "adders_per_weight", "csd_adders"} <= set(t)
    assert t["adders"] < t["csd_adders"]
    acc = r["accuracy"]
    assert acc["dataset"] and acc["golden"] >= acc["float"] - 0.01  # within 1 point
    ver = r["verification"]
    assert ver["bit_exact"] is True and ver["simulator"] == "verilator"
    assert ver["vectors"] >= 1000 + acc["samples"]
    res = r["resources"]
    assert res["estimate"] is True and res["device"].startswith("xc7a35t")
    assert "cost model" in res["tool"] and res["luts"] == t["est_luts"]
    assert all(layer["est_luts"] > 0 for layer in r["layers"])
    assert res["fits"] is True and 0 < res["luts"] <= res["device_luts"]  # the card's board
    assert (out / "report.md").read_text().strip()
    assert list(out.glob("**/*.v")) and (out / "board" / "vivado" / "build.sh").exists()

    rerun = subprocess.run([*NNLCC, "sim", str(out)], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "bit-exact" in rerun.stdout
