"""The CNN self-test top in the Amaranth simulator: test images streamed pixel by pixel from a
ROM pass against the golden ROM as built, and fail when either ROM is corrupted."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import small_stream_cnn

from nnlcc.boards import BoardProfile, BoardSelfTest, list_boards
from nnlcc.boards.stream_selftest import (
    MAX_IMAGES,
    StreamSelfTest,
    latency_bound,
    selftest_core,
    selftest_inputs,
    simulate_stream_selftest,
)
from nnlcc.ir.lowered import LoweredNetwork


@pytest.fixture(scope="module")
def cnn() -> LoweredNetwork:
    return small_stream_cnn()


def test_pass_as_built(cnn: LoweredNetwork) -> None:
    x = selftest_inputs(cnn)[:3]
    r = simulate_stream_selftest(cnn, x)
    assert (r.passed, r.failed, r.errors, r.checked) == (True, False, 0, 3)
    assert 3 * 36 < r.cycles <= 3 * 36 + latency_bound(cnn) + 5


def test_corrupted_golden_rom_fails(cnn: LoweredNetwork) -> None:
    x = selftest_inputs(cnn)[:3]
    y = cnn.evaluate(x).copy()
    y[1, 2] ^= 1
    r = simulate_stream_selftest(cnn, x, y)
    assert (r.passed, r.failed, r.errors, r.checked) == (False, True, 1, 3)


def test_corrupted_image_rom_fails(cnn: LoweredNetwork) -> None:
    x = selftest_inputs(cnn)[:2]
    y = cnn.evaluate(x)
    bad = x.copy()
    bad[1] = cnn.input_fmt.hi - bad[1] + cnn.input_fmt.lo  # the second image inverted
    assert not np.array_equal(cnn.evaluate(bad)[1], y[1])
    r = simulate_stream_selftest(cnn, bad, y)
    assert r.failed and not r.passed and r.errors == 1


def test_inputs_and_dispatch(cnn: LoweredNetwork, tiny_net: LoweredNetwork) -> None:
    assert selftest_inputs(cnn).shape == (MAX_IMAGES, cnn.n_inputs)
    assert isinstance(selftest_core(cnn, selftest_inputs(cnn)[:1]), StreamSelfTest)
    assert not isinstance(selftest_core(tiny_net, selftest_inputs(tiny_net)), StreamSelfTest)
    with pytest.raises(ValueError, match="pixel-streaming"):
        StreamSelfTest(tiny_net, selftest_inputs(tiny_net))


@pytest.mark.parametrize(
    "board", [b for b in list_boards() if b.name in ("arty-a7", "icebreaker", "ulx3s")]
)
def test_board_top_elaborates(board: BoardProfile, cnn: LoweredNetwork) -> None:
    core = StreamSelfTest(cnn, selftest_inputs(cnn)[:2])
    plan = board.platform().build(BoardSelfTest(core, board), name="t", do_build=False)
    constraints = next(v for k, v in plan.files.items() if k.endswith((".pcf", ".lpf", ".xdc")))
    assert isinstance(constraints, str)
    for res, num in board.leds.values():
        assert f"{res}_{num}" in constraints
    assert "uart_0__tx" in constraints


def test_roms_take_what_the_block_ram_leaves() -> None:
    """As many test images as the block RAM holds beside the network's own (line buffers);
    none at all is one line naming the ROMs' need, the network's and the board's."""
    from conftest import wide_line_cnn

    from nnlcc.boards import get_board
    from nnlcc.boards.fit import DesignTooLargeError
    from nnlcc.boards.stream_selftest import fitting_inputs, rom_blocks, rom_words

    net = wide_line_cnn()
    (xw, xb), (yw, _) = rom_words(net)
    assert (xw, xb) == (8 * 40, 8) and yw == 1  # a pixel a word; one vector per image out
    board = get_board("ulx3s-12f")
    x = selftest_inputs(net)
    assert len(fitting_inputs(net, board, x, 8)) == MAX_IMAGES
    tight = board.bram - rom_blocks(net, board.family, 3)
    assert len(fitting_inputs(net, board, x, tight)) == 3
    with pytest.raises(DesignTooLargeError) as e:
        fitting_inputs(net, board, x, board.bram)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("the self-test does not fit LFE5U-12F (ulx3s-12f)")
    assert "one 1x8x40 image (320 pixels of 8 bits)" in msg and f"has {board.bram}" in msg


@pytest.mark.parametrize("images", [1, 3])
def test_lut_roms_several_pixels_a_word(cnn: LoweredNetwork, images: int) -> None:
    """ROMs in LUTs (where a block RAM read misses the clock) are at most 64 words deep: 3
    images of 36 pixels share words two pixels apiece; the verdict is the block RAM one's."""
    x = selftest_inputs(cnn)[:images]
    dut = StreamSelfTest(cnn, x, rom_in_luts=True)
    assert dut.pack == (1 if images == 1 else 2)
    r = simulate_stream_selftest(cnn, x, rom_in_luts=True)
    assert (r.passed, r.errors, r.checked) == (True, 0, images)
    y = cnn.evaluate(x).copy()
    y[-1, 0] ^= 1
    bad = simulate_stream_selftest(cnn, x, y, rom_in_luts=True)
    assert (bad.failed, bad.errors) == (True, 1)


def test_roms_in_luts_where_block_ram_misses_the_clock() -> None:
    from nnlcc.boards import get_board
    from nnlcc.boards.stream_selftest import roms_in_luts

    ecp5, ice40 = get_board("ulx3s"), get_board("icebreaker")
    read = ecp5.family.bram.read_ns
    assert isinstance(read, float)
    assert roms_in_luts(ecp5, 200.0) and not roms_in_luts(ecp5, 0.9 * 1000 / read)
    assert not roms_in_luts(ice40, 200.0)  # not measured: block RAM as before
