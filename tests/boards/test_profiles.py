"""Board profiles: names, aliases, device facts that agree with the amaranth-boards platforms."""

from __future__ import annotations

import pytest

from nnlcc.boards import BoardProfile, get_board, list_boards
from nnlcc.errors import BadInputError
from nnlcc.ir.family import FAMILIES


def test_known_boards_and_defaults() -> None:
    names = [b.name for b in list_boards()]
    assert names == [
        "arty-a7",
        "arty-a7-100",
        "icebreaker",
        "ulx3s",
        "ulx3s-12f",
        "ulx3s-25f",
        "ulx3s-45f",
    ]
    assert get_board("arty-a7").device.startswith("xc7a35t")
    assert get_board("arty-a7-100").device.startswith("xc7a100t")
    assert get_board("ulx3s").device == "LFE5U-85F"
    assert get_board("icebreaker").device == "iCE40UP5K"


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("ARTY-A7-35", "arty-a7"),
        ("arty_a7_100", "arty-a7-100"),
        ("ulx3s-85f", "ulx3s"),
        ("ULX3S-12F", "ulx3s-12f"),
        ("ulx3s-45", "ulx3s-45f"),
        (" icebreaker ", "icebreaker"),
    ],
)
def test_aliases(alias: str, name: str) -> None:
    assert get_board(alias).name == name


def test_profile_passes_through() -> None:
    b = get_board("ulx3s-25f")
    assert get_board(b) is b


def test_unknown_board_lists_known_ones() -> None:
    with pytest.raises(BadInputError) as e:
        get_board("de10-nano")
    msg = str(e.value)
    assert "\n" not in msg
    assert "'de10-nano'" in msg
    for b in list_boards():
        assert b.name in msg


@pytest.mark.parametrize("board", list_boards(), ids=lambda b: b.name)
def test_profile_matches_platform(board: BoardProfile) -> None:
    plat = board.platform()
    assert board.device.lower().startswith(plat.device.lower().removesuffix("i"))
    assert board.family is FAMILIES[board.family.name]
    assert board.family.platform_family == plat.family  # the family Amaranth builds for
    assert board.lut_kind == board.family.lut_kind
    # an open flow where Amaranth has nextpnr's tables for the platform
    assert board.open_pnr == hasattr(plat, "_nextpnr_device_options")
    assert board.luts > 0 and board.ffs > 0 and board.clock_hz > 0
    clk = plat.lookup(plat.default_clk)
    assert clk.clock.frequency == board.clock_hz
    assert "pass" in board.leds and "fail" in board.leds
    for res, num in board.leds.values():
        plat.lookup(res, num)  # raises if the board has no such LED
    s = board.summary()
    assert s["name"] == board.name and s["luts"] == board.luts
