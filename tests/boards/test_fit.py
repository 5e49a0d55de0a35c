"""Board resources from the calibrated cost model (no tool runs by default), ``--synth`` for
yosys, and the fit check that stops a too-big ``--build`` before any tool with one line."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

import nnlcc.boards.build as build
from nnlcc.boards import DesignTooLargeError, board_build, get_board
from nnlcc.boards.fit import (
    PRUNE_LUT_FACTOR,
    SQNR_LUT_FACTOR,
    fit_advice,
    fits,
    model_resources,
)
from nnlcc.cli import app
from nnlcc.driver import CompileOptions, compile_model
from nnlcc.ir.cost import estimate_network
from nnlcc.ir.family import ECP5, FAMILIES, ICE40, XC7, Family
from nnlcc.ir.lowered import LoweredNetwork

sys.path.insert(0, str(Path(__file__).parents[1] / "corpus"))
from generate import mlp


def _no_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every tool lookup and run fail the test: the default flow must not need one."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a tool was used: {args}")

    for name in ("find_tool", "run_tool", "synth_network"):
        monkeypatch.setattr(build, name, refuse)


def _fake_yosys(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """yosys stand-in: records the family and returns fixed counts."""
    calls: list[str] = []

    def fake(family: Family, bdir: Path, **_: Any) -> tuple[dict[str, int | None], float]:
        calls.append(family.name)
        return {"luts": 123, "ffs": 45, "carry": 6, "bram": 0, "dsp": 0}, 0.5

    monkeypatch.setattr(build, "find_tool", lambda tool: [tool])
    monkeypatch.setattr(build, "synth_network", fake)
    return calls


def test_default_resources_come_from_the_cost_model(
    monkeypatch: pytest.MonkeyPatch, tiny_net: LoweredNetwork, tmp_path: Path
) -> None:
    _no_tools(monkeypatch)
    res = board_build("icebreaker", tiny_net, tmp_path)
    total = estimate_network(tiny_net, ICE40).total
    assert total is not None
    assert res["estimate"] is True and "cost model" in res["tool"] and "ice40" in res["tool"]
    assert res["calibration"] == ICE40.cost.calibration and "max" in res["model_error"]
    assert res["model_error"] == ICE40.cost.error
    assert (res["luts"], res["ffs"], res["bram"]) == (total.luts, total.ffs_synth, 0)
    assert res["fits"] is True and "fit_advice" not in res
    assert res["utilization_pct"] == pytest.approx(100 * total.luts / 5280, abs=0.01)
    assert "model" in res["timings_s"] and res["timings_s"]["model"] < 5
    assert "board/network.v" in res["files"] and not any("synth" in f for f in res["files"])
    assert json.loads((tmp_path / "board" / "resources.json").read_text()) == res


def test_xc7_default_still_writes_the_vivado_tree(
    monkeypatch: pytest.MonkeyPatch, tiny_net: LoweredNetwork, tmp_path: Path
) -> None:
    _no_tools(monkeypatch)
    res = board_build("arty-a7", tiny_net, tmp_path)
    assert "board/vivado/build.sh" in res["files"] and res["family"] == "xc7"
    assert res["luts"] == model_resources(tiny_net, XC7)["luts"]
    assert res["vivado"]["note"] == XC7.toolchain.vendor_note


def test_synth_runs_yosys_and_keeps_the_model_figures(
    monkeypatch: pytest.MonkeyPatch, tiny_net: LoweredNetwork, tmp_path: Path
) -> None:
    calls = _fake_yosys(monkeypatch)
    res = board_build("ulx3s", tiny_net, tmp_path, synth=True)
    assert calls == ["ecp5"]
    assert res["tool"].startswith("yosys synth_ecp5") and (res["luts"], res["ffs"]) == (123, 45)
    model = res["model_estimate"]
    assert model["luts"] == model_resources(tiny_net, ECP5)["luts"]
    assert model["calibration"] == ECP5.cost.calibration and "cost model" in model["tool"]


def test_synth_without_yosys_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tiny_net: LoweredNetwork, tmp_path: Path
) -> None:
    from nnlcc.boards.toolchain import find_tool
    from nnlcc.errors import ToolchainError

    monkeypatch.setattr(build, "find_tool", lambda tool: find_tool(tool, environ={"PATH": ""}))
    with pytest.raises(ToolchainError, match=r"^yosys not found"):
        board_build("icebreaker", tiny_net, tmp_path, synth=True)
    assert board_build("icebreaker", tiny_net, tmp_path / "plain")["estimate"] is True


def test_too_big_build_stops_before_any_tool_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    make_tiny_network: Callable[..., LoweredNetwork],
    tmp_path: Path,
) -> None:
    _no_tools(monkeypatch)
    net = make_tiny_network((16, 32, 8))  # ~6.6k LUT4, ~8k FFs: over the UP5K
    with pytest.raises(DesignTooLargeError) as e:
        board_build("icebreaker", net, tmp_path, run_pnr=True)
    msg = str(e.value)
    model = model_resources(net, ICE40)
    assert msg.startswith(
        f"design does not fit iCE40UP5K (icebreaker): {model['luts']:,} LUT4s of 5,280"
    )
    assert "\n" not in msg and "[cost model]" in msg
    layers = estimate_network(net, ICE40).layers
    big = max(layers, key=lambda n: layers[n].luts)
    assert f"biggest layers: {big} {layers[big].luts:,} LUTs" in msg
    assert f"about {round(model['luts'] * SQNR_LUT_FACTOR):,} LUTs" in msg  # lower SQNR
    assert f"about {round(model['luts'] * PRUNE_LUT_FACTOR):,} LUTs" in msg  # pruning
    assert "prune{sparsity=0.25}" in msg and "a bigger board: " in msg
    assert not (tmp_path / "board" / "selftest").exists()
    # without --build the report carries the same line, and no error
    res = board_build("icebreaker", net, tmp_path / "report")
    assert res["fits"] is False and res["fit_advice"]["message"] == msg
    assert [lv["lever"].split(":")[0] for lv in res["fit_advice"]["levers"]] == [
        "lower SQNR by 6 dB (one weight bit; lcc{sqnr_db=...} or csd{weight_bits=...})",
        "pruning",
        "a bigger board",
    ]


def test_fit_advice_on_a_tiny_board(tiny_net: LoweredNetwork) -> None:
    tiny = dataclasses.replace(get_board("icebreaker"), name="tiny", luts=40, ffs=40)
    counts = model_resources(tiny_net, ICE40)
    assert (
        not fits(tiny, counts)
        and fit_advice(get_board("icebreaker"), tiny_net, counts, "x") is None
    )
    advice = fit_advice(tiny, tiny_net, counts, "cost model")
    assert advice is not None
    # the smallest real board holds the tiny network with room to spare
    assert advice["levers"][-1]["lever"] == "a bigger board: icebreaker"
    assert len(advice["biggest_layers"]) == len(tiny_net.layers) <= 3
    assert sum(x["luts"] for x in advice["biggest_layers"]) == counts["luts"]


def test_levers_say_when_scaling_is_enough(tiny_net: LoweredNetwork) -> None:
    counts = model_resources(tiny_net, ICE40)
    just_over = dataclasses.replace(
        get_board("icebreaker"), name="edge", luts=counts["luts"] - 1, ffs=10**6
    )
    advice = fit_advice(just_over, tiny_net, counts, "cost model")
    assert advice is not None and "(fits)" in advice["levers"][0]["effect"]


# ----------------------------------------------------------------------- the compile driver


def _model(tmp_path: Path, rows: int = 3, cols: int = 4) -> Path:
    p = tmp_path / "m.onnx"
    w1 = np.random.default_rng(3).standard_normal((rows, cols))
    onnx.save(mlp(w1=w1), p)
    return p


def test_default_compile_does_not_run_yosys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_tools(monkeypatch)
    opts = CompileOptions(
        model=_model(tmp_path), board="ulx3s", passes="quantize,csd", verify=False,
        outdir=tmp_path / "out",
    )  # fmt: skip
    r = compile_model(opts).to_json()
    for row in r["layers"]:
        assert isinstance(row["est_luts"], int) and isinstance(row["est_ffs"], int)
    t = r["totals"]
    assert t["est_family"] == "ecp5" and t["est_luts"] == sum(x["est_luts"] for x in r["layers"])
    res = r["resources"]
    assert "cost model" in res["tool"] and res["luts"] == t["est_luts"]
    assert res["ffs"] == t["est_ffs"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| est. LUTs | est. FFs |" in md and "est. LUTs (ecp5, ±" in md
    assert ECP5.cost.calibration in md


def test_compile_synth_flag_runs_yosys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _fake_yosys(monkeypatch)
    args = [str(_model(tmp_path)), "--board", "icebreaker", "--passes", "quantize,csd",
            "--no-verify", "--synth", "-o", str(tmp_path / "out"), "--json"]  # fmt: skip
    res = CliRunner().invoke(app, ["compile", *args])
    assert res.exit_code == 0, res.output
    assert calls == ["ice40"]
    r = json.loads((tmp_path / "out" / "report.json").read_text())
    assert r["resources"]["luts"] == 123 and "model_estimate" in r["resources"]


def test_compile_build_of_a_too_big_model_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_tools(monkeypatch)
    args = [str(_model(tmp_path, 48, 32)), "--board", "icebreaker", "--passes", "quantize,csd",
            "--no-verify", "--build", "-o", str(tmp_path / "out"), "-q"]  # fmt: skip
    res = CliRunner().invoke(app, ["compile", *args])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: design does not fit iCE40UP5K")
    assert "levers: lower SQNR" in lines[0] and not (tmp_path / "out").exists()


def test_wide_image_line_buffers_are_block_ram() -> None:
    """A 160-pixel-wide image: each 3x3 conv line buffer (158 pixels x 4 channels x 8 bits) is
    over LINE_RAM_BITS, so it is a memory: block RAMs in the model, not flip-flops."""
    from conftest import build_conv
    from conftest import compile_graph as golden_model

    from nnlcc.boards.fit import model_resources
    from nnlcc.hdl.line_buffer import LINE_RAM_BITS
    from nnlcc.hdl.stream import StreamPlan
    from nnlcc.ir.matrix import MatrixGraph
    from nnlcc.ir.window import Window

    rng = np.random.default_rng(0)
    pad = Window((3, 3), (1, 1), (1, 1, 1, 1))
    c1 = build_conv("c1", (4, 5, 160), 2, rng, window=pad, weight_std=0.5, bias_std=0.2)
    g = MatrixGraph("wide", "x", 4 * 5 * 160, "c1", [c1], input_shape=(4, 5, 160))
    net = golden_model(g, "quantize,csd", rng.uniform(0, 1, size=(8, g.input_size)))
    rams = StreamPlan(net).line_rams()
    words, width = rams["c1"][0]
    assert len(rams["c1"]) == 2 and words == 158 and words * width >= LINE_RAM_BITS
    assert ECP5.bram.blocks(words, width) == -(-width // 36)
    assert ICE40.bram.blocks(600, 20) == 2 * 3  # two blocks wide, three deep (256 words)
    for family in FAMILIES.values():
        res = model_resources(net, family)
        assert res["line_buffer_ram_bits"] == 2 * words * width
        assert res["bram"] == 2 * family.bram.blocks(words, width)
        total = StreamPlan(net).line_buffer_bits()["c1"]
        assert res.get("line_buffer_ffs", 0) == total - 2 * words * width
