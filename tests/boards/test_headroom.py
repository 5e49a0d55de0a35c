"""The fit verdict with headroom (nnlcc.boards.headroom): it counts the self-test wrapper (its
ROMs by block-RAM geometry), applies the family's measured error as a margin, and says
"fits", "tight" or "does not fit" with the biggest layers and, unless it fits, the levers."""

from __future__ import annotations

import dataclasses

from conftest import build_tiny_mlp, small_stream_cnn

from nnlcc.boards import get_board
from nnlcc.boards.fit import model_resources
from nnlcc.boards.headroom import FITS, NO_FIT, TIGHT, fit_verdict, rom_shape, wrapper_resources
from nnlcc.ir.family import ErrorFigure, WrapperCost
from nnlcc.ir.lowered import LoweredNetwork


def _verdict(net: LoweredNetwork, luts: int, margin: float) -> dict:
    board = get_board("ulx3s")
    err = ErrorFigure("LUTs", "test", margin / 2, margin)
    fam = dataclasses.replace(
        board.family, cost=dataclasses.replace(board.family.cost, luts_error=err)
    )
    board = dataclasses.replace(board, family=fam)
    need = model_resources(net, fam)
    wrap = wrapper_resources(net, fam)
    # the device sized so that the whole design needs exactly ``luts`` of it
    total = need["luts"] + (wrap["luts"] or 0)
    board = dataclasses.replace(board, luts=max(1, round(total * 100 / luts)))
    return fit_verdict(board, net, need)


def test_the_margin_decides_between_fits_and_tight() -> None:
    net = build_tiny_mlp()
    assert _verdict(net, 50, 10.0)["verdict"] == FITS  # 50 % used, 55 % with the margin
    tight = _verdict(net, 95, 10.0)  # 95 % used: 104.5 % with the margin
    assert tight["verdict"] == TIGHT and tight["levers"]  # tight names what would shrink it
    gone = _verdict(net, 120, 10.0)
    assert gone["verdict"] == NO_FIT and "biggest layers: fc1" in gone["message"]


def test_the_wrapper_counts_its_roms_and_logic() -> None:
    net = build_tiny_mlp()
    board = get_board("ulx3s")
    logic = WrapperCost(10, 20, "a test")
    fam = dataclasses.replace(
        board.family, cost=dataclasses.replace(board.family.cost, wrapper=logic)
    )
    board = dataclasses.replace(board, family=fam)
    roms = rom_shape(net)
    assert (roms.x_width, roms.y_width) == (
        net.n_inputs * net.input_fmt.bits,
        net.n_outputs * net.output_fmt.bits,
    )
    wrap = wrapper_resources(net, fam)
    assert wrap["bram"] == fam.bram.blocks(roms.x_words, roms.x_width) + fam.bram.blocks(
        roms.y_words, roms.y_width
    )
    assert (wrap["luts"], wrap["ffs"]) == (10, 20)
    verdict = fit_verdict(board, net, model_resources(net, fam))
    alone = fit_verdict(board, net, model_resources(net, fam), wrapper=False)
    for k in ("luts", "ffs", "bram"):
        assert verdict[k] == alone[k] + wrap[k]


def test_a_cnn_self_test_rom_holds_pixels() -> None:
    net = small_stream_cnn()
    roms = rom_shape(net)
    c, h, w = net.input_shape
    assert roms.x_width == c * net.input_fmt.bits and roms.x_words % (h * w) == 0
