"""Board profiles: the one place board facts live (device, family, capacity, clock, LEDs).

A profile names an amaranth-boards platform class and adds what the compiler needs to judge a
design against the board: its FPGA family (:mod:`nnlcc.ir.family`: cost model, cell names,
block RAM, toolchain), device capacity (LUTs, FFs, block RAMs, DSPs, from the vendor data
sheets), the board clock the self-test runs at (and which nextpnr is asked to meet) and the
LEDs the self-test drives.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amaranth.build import Platform
from amaranth_boards.arty_a7 import ArtyA7_35Platform, ArtyA7_100Platform
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import (
    ULX3S_12F_Platform,
    ULX3S_25F_Platform,
    ULX3S_45F_Platform,
    ULX3S_85F_Platform,
)

from nnlcc.errors import BadInputError
from nnlcc.ir.family import ECP5, ICE40, XC7, Family

__all__ = ["BoardProfile", "get_board", "list_boards"]


@dataclass(frozen=True)
class BoardProfile:
    """One board. ``luts`` counts the device's basic LUTs (LUT6 on xc7, LUT4 on iCE40/ECP5),
    ``bram`` its block RAMs (RAMB36 / EBR 4 kbit / DP16KD), ``dsp`` its hard multipliers.

    ``leds`` maps the self-test roles ``pass``/``fail``/``done``/``alive`` to amaranth-boards
    resources ``(name, number)``; a role a board lacks LEDs for is simply absent. ``uart`` is
    the USB serial port the self-test prints its verdict on (``uart_baud``, 8N1).
    """

    name: str
    device: str
    family: Family
    luts: int
    ffs: int
    bram: int
    dsp: int
    clock_hz: float
    platform: type[Platform]
    description: str
    leds: dict[str, tuple[str, int]] = field(default_factory=dict)
    uart: tuple[str, int] | None = ("uart", 0)
    uart_baud: int = 115200
    aliases: tuple[str, ...] = ()

    @property
    def clock_mhz(self) -> float:
        return self.clock_hz / 1e6

    @property
    def lut_kind(self) -> str:
        return self.family.lut_kind

    @property
    def open_pnr(self) -> bool:
        """Whether an open place-and-route flow exists for the board's family."""
        return self.family.open_pnr

    def summary(self) -> dict[str, object]:
        """Plain data for reports and ``nnlcc boards``."""
        return {
            "name": self.name,
            "device": self.device,
            "family": self.family.name,
            "luts": self.luts,
            "lut_kind": self.lut_kind,
            "ffs": self.ffs,
            "bram": self.bram,
            "dsp": self.dsp,
            "clock_mhz": self.clock_mhz,
            "open_pnr": self.open_pnr,
            "description": self.description,
            "aliases": list(self.aliases),
        }


_ARTY_LEDS = {"pass": ("led", 0), "fail": ("led", 1), "done": ("led", 2), "alive": ("led", 3)}
_ULX3S_LEDS = {"pass": ("led", 0), "fail": ("led", 1), "done": ("led", 2), "alive": ("led", 7)}
# iCEBreaker has two user LEDs on the main board: green for pass, red for fail (blinking while
# the test runs, so a loaded bitstream is visible before it finishes).
_ICEBREAKER_LEDS = {"pass": ("led_g", 0), "fail": ("led_r", 0)}


def _ulx3s(
    size: str, platform: type[Platform], luts: int, bram: int, dsp: int, *, default: bool = False
) -> BoardProfile:
    # `ulx3s` alone is the 85F: the board most people own, and the one that holds the digits MLP.
    full = f"ulx3s-{size.lower()}"
    aliases = (full, full.removesuffix("f")) if default else (full.removesuffix("f"),)
    return BoardProfile(
        name="ulx3s" if default else full,
        device=f"LFE5U-{size.upper()}",
        family=ECP5,
        luts=luts,
        ffs=luts,
        bram=bram,
        dsp=dsp,
        clock_hz=25e6,
        platform=platform,
        description=f"Radiona ULX3S, Lattice ECP5 LFE5U-{size.upper()} (yosys + nextpnr-ecp5)",
        leds=_ULX3S_LEDS,
        aliases=aliases,
    )


# ECP5 LUT counts are nextpnr's TRELLIS_COMB totals (two LUT4 per slice); the 12F is the 25F die
# licensed to half its logic. iCE40UP5K: 5280 logic cells. Artix-7: DS180 table 2.
_PROFILES: list[BoardProfile] = [
    BoardProfile(
        name="arty-a7",
        device="xc7a35ticsg324-1L",
        family=XC7,
        luts=20800,
        ffs=41600,
        bram=50,
        dsp=90,
        clock_hz=100e6,
        platform=ArtyA7_35Platform,
        description="Digilent Arty A7-35T, Xilinx Artix-7 (Vivado build tree + yosys estimate)",
        leds=_ARTY_LEDS,
        aliases=("arty-a7-35", "arty-a7-35t", "arty"),
    ),
    BoardProfile(
        name="arty-a7-100",
        device="xc7a100ticsg324-1L",
        family=XC7,
        luts=63400,
        ffs=126800,
        bram=135,
        dsp=240,
        clock_hz=100e6,
        platform=ArtyA7_100Platform,
        description="Digilent Arty A7-100T, Xilinx Artix-7 (Vivado build tree + yosys estimate)",
        leds=_ARTY_LEDS,
        aliases=("arty-a7-100t",),
    ),
    BoardProfile(
        name="icebreaker",
        device="iCE40UP5K",
        family=ICE40,
        luts=5280,
        ffs=5280,
        bram=30,
        dsp=8,
        clock_hz=12e6,
        platform=ICEBreakerPlatform,
        description="1BitSquared iCEBreaker, Lattice iCE40UP5K-SG48 (yosys + nextpnr-ice40)",
        leds=_ICEBREAKER_LEDS,
    ),
    _ulx3s("85F", ULX3S_85F_Platform, 83640, 208, 156, default=True),
    _ulx3s("12F", ULX3S_12F_Platform, 12144, 32, 28),
    _ulx3s("25F", ULX3S_25F_Platform, 24288, 56, 28),
    _ulx3s("45F", ULX3S_45F_Platform, 43848, 108, 72),
]
_BY_NAME: dict[str, BoardProfile] = {}
for _p in _PROFILES:
    for _n in (_p.name, *_p.aliases):
        _BY_NAME[_n] = _p


def list_boards() -> list[BoardProfile]:
    """Every known board, one profile each (aliases are listed on the profile)."""
    return list(_PROFILES)


def get_board(name: str | BoardProfile) -> BoardProfile:
    """The profile for ``name`` (case and ``_``/``-`` insensitive, aliases accepted)."""
    if isinstance(name, BoardProfile):
        return name
    key = name.strip().lower().replace("_", "-")
    if key in _BY_NAME:
        return _BY_NAME[key]
    known = ", ".join(p.name for p in _PROFILES)
    raise BadInputError(f"unknown board {name!r}; known boards: {known}")
