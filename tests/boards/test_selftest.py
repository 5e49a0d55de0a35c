"""The self-test top in the Amaranth simulator: right ROMs light the pass LED, a corrupted ROM
fails it; and it elaborates on every board platform."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned

from nnlcc.boards import BoardProfile, BoardSelfTest, SelfTest, list_boards, simulate_selftest
from nnlcc.boards.rom_selftest import pack_vectors
from nnlcc.boards.selftest import MAX_VECTORS, selftest_vectors
from nnlcc.ir.lowered import LoweredNetwork


@pytest.mark.parametrize(("n", "luts"), [(24, False), (24, True), (150, True)])
def test_pass_with_golden_roms(tiny_net: LoweredNetwork, n: int, luts: bool) -> None:
    """Block RAM or LUT ROMs (150 vectors in LUTs: 3 to a 64-deep ROM word)."""
    x = selftest_vectors(tiny_net, None, n)
    r = simulate_selftest(tiny_net, x, rom_in_luts=luts)
    assert (r.passed, r.failed, r.errors, r.checked) == (True, False, 0, n)
    # two ROM registers, the input register, the compare registers
    assert 0 < r.cycles <= len(x) + tiny_net.latency + 6


@pytest.mark.parametrize(("n", "luts"), [(24, False), (150, True)])
def test_corrupted_golden_rom_fails(tiny_net: LoweredNetwork, n: int, luts: bool) -> None:
    x = selftest_vectors(tiny_net, None, n)
    y = tiny_net.evaluate(x).copy()
    y[3, 0] ^= 1
    y[n - 7, 2] ^= 1
    r = simulate_selftest(tiny_net, x, y, rom_in_luts=luts)
    assert (r.passed, r.failed, r.errors, r.checked) == (False, True, 2, n)


def test_corrupted_input_rom_fails(tiny_net: LoweredNetwork) -> None:
    x = selftest_vectors(tiny_net, None, 16)
    y = tiny_net.evaluate(x)
    bad = x.copy()
    bad[:, :] = tiny_net.input_fmt.hi  # every vector replaced: at least one output must differ
    assert not np.array_equal(tiny_net.evaluate(bad), y)
    r = simulate_selftest(tiny_net, bad, y)
    assert r.failed and not r.passed and r.errors >= 1


def test_single_vector(tiny_net: LoweredNetwork) -> None:
    x = selftest_vectors(tiny_net, None, 1)
    assert simulate_selftest(tiny_net, x).passed


def test_vectors_from_data_and_random(tiny_net: LoweredNetwork) -> None:
    fmt = tiny_net.input_fmt
    rnd = selftest_vectors(tiny_net, None, MAX_VECTORS)
    assert rnd.shape == (MAX_VECTORS, tiny_net.n_inputs)
    assert (rnd[0] == fmt.lo).all() and (rnd[1] == fmt.hi).all()
    assert rnd.min() >= fmt.lo and rnd.max() <= fmt.hi
    data = np.arange(100 * tiny_net.n_inputs).reshape(100, -1) % (fmt.hi + 1)
    assert np.array_equal(selftest_vectors(tiny_net, data, 8), data[:8])


def test_pack_vectors_twos_complement() -> None:
    assert pack_vectors([[1, -1, -4]], signed(3)) == [0b100_111_001]
    assert pack_vectors([[5, 0]], unsigned(4)) == [5]
    with pytest.raises(ValueError, match="does not fit"):
        pack_vectors([[8]], signed(4))


def test_golden_shape_checked(tiny_net: LoweredNetwork) -> None:
    x = selftest_vectors(tiny_net, None, 4)
    with pytest.raises(ValueError, match="golden outputs"):
        SelfTest(tiny_net, x, np.zeros((4, tiny_net.n_outputs + 1), dtype=np.int64))


@pytest.mark.parametrize(
    "board",
    [b for b in list_boards() if b.name in ("arty-a7", "icebreaker", "ulx3s")],
    ids=lambda b: b.name,
)
def test_board_top_elaborates(board: BoardProfile, tiny_net: LoweredNetwork) -> None:
    top = BoardSelfTest(SelfTest(tiny_net, selftest_vectors(tiny_net, None, 8)), board)
    plan = board.platform().build(top, name="t", do_build=False)
    files = plan.files
    constraints = next(v for k, v in files.items() if k.endswith((".pcf", ".lpf", ".xdc")))
    assert isinstance(constraints, str)
    for res, num in board.leds.values():
        assert f"{res}_{num}" in constraints
    assert "uart_0__tx" in constraints
