"""Line buffer window generator against numpy, in Amaranth's simulator.

The reference is :meth:`nnlcc.ir.window.Window.windows` (the golden model's im2col). Frames are
fed contiguous and back to back, with gaps between frames, and sparse (as after a stride or a
pool); every window must come out once, in raster order, with padding taps equal to ``fill``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.hdl import signed
from amaranth.sim import Simulator

from nnlcc.errors import BadInputError
from nnlcc.hdl.line_buffer import StreamWindow, WindowGenerator
from nnlcc.ir.window import Window


def feed_pattern(n_pixels: int, frames: int, mode: str, rng: np.random.Generator) -> list[bool]:
    """Valid per clock: ``n_pixels * frames`` ones laid out according to ``mode``."""
    pattern: list[bool] = []
    for _ in range(frames):
        for _ in range(n_pixels):
            if mode == "sparse":
                pattern.extend([False] * int(rng.integers(0, 3)))
            pattern.append(True)
        if mode == "gaps":
            pattern.extend([False] * int(rng.integers(0, 7)))
    return pattern


def run_window(
    geom: StreamWindow, x: np.ndarray, mode: str, fill: int = 0, seed: int = 0
) -> list[tuple[int, list[int]]]:
    """Feed frames ``x`` (frames, H, W, C) and return (clock, window) for each valid window."""
    frames, h, w, c = x.shape
    shape = signed(8)
    dut = WindowGenerator(geom, c, shape, fill=fill)
    pixels = x.reshape(frames * h * w, c)
    pattern = feed_pattern(h * w, frames, mode, np.random.default_rng(seed))
    pattern.extend([False] * (geom.flush + 3))
    out: list[tuple[int, list[int]]] = []

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        k = 0
        for cycle, valid in enumerate(pattern):
            if valid:
                ctx.set(dut.x, [int(v) for v in pixels[k]])
                k += 1
            else:
                ctx.set(dut.x, [int(v) for v in np.full(c, 99)])  # garbage must never leak
            ctx.set(dut.valid, int(valid))
            if ctx.get(dut.valid_out):
                win = ctx.get(dut.window)
                out.append((cycle, [int(win[e]) for e in range(geom.window.taps * c)]))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


GEOMETRIES = [
    (Window((3, 3), (1, 1), (1, 1, 1, 1)), 5, 6),  # "same" conv
    (Window((3, 3)), 5, 6),  # "valid" conv
    (Window((2, 2), (2, 2)), 6, 6),  # 2x2 pool
    (Window((2, 2), (2, 2)), 5, 7),  # odd sizes: floor mode drops the last row/column
    (Window((3, 3), (2, 2), (1, 1, 1, 1)), 7, 8),  # ResNet-style strided conv
    (Window((1, 1)), 3, 4),  # pointwise
    (Window((1, 1), (2, 2)), 5, 6),  # ResNet downsample branch
    (Window((5, 3), (1, 1), (2, 1, 1, 0)), 6, 5),  # asymmetric kernel and pads
    (Window((3, 2), (1, 2), (0, 1, 2, 0)), 6, 7),
]


@pytest.mark.parametrize("mode", ["back_to_back", "gaps", "sparse"])
@pytest.mark.parametrize(("window", "h", "w"), GEOMETRIES, ids=lambda v: str(v))
def test_windows_match_numpy(window: Window, h: int, w: int, mode: str) -> None:
    rng = np.random.default_rng(h * 31 + w)
    c = 2
    x = rng.integers(-128, 128, size=(3, h, w, c), dtype=np.int64)
    geom = StreamWindow(window, h, w)
    got = run_window(geom, x, mode, fill=-7 if window.taps == 4 else 0)
    fill = -7 if window.taps == 4 else 0
    ref = window.windows(x, fill=fill).reshape(-1, window.taps * c)
    assert len(got) == len(ref), f"{len(got)} windows for {len(ref)} expected"
    for k, ((_, g), r) in enumerate(zip(got, ref, strict=True)):
        assert g == r.tolist(), f"window {k}: got {g}, expected {r.tolist()}"
    cycles = [cyc for cyc, _ in got]
    assert all(b > a for a, b in itertools.pairwise(cycles))


def test_back_to_back_same_conv_is_a_constant_delay() -> None:
    """With contiguous input, output pixel k appears exactly ``delay`` clocks after pixel k:
    one window per clock, the next frame's pixels doubling as flush ticks."""
    window, h, w = Window((3, 3), (1, 1), (1, 1, 1, 1)), 4, 5
    geom = StreamWindow(window, h, w)
    x = np.arange(2 * h * w, dtype=np.int64).reshape(2, h, w, 1) % 100
    got = run_window(geom, x, "back_to_back")
    assert [cyc for cyc, _ in got] == [k + geom.delay for k in range(2 * h * w)]
    assert geom.delay == w + 1 and geom.flush == w + 1 and geom.depth == 2 * w + 2


def test_unsupported_geometry_is_a_clear_error() -> None:
    with pytest.raises(BadInputError, match="not supported in hardware"):
        StreamWindow(Window((3, 3), (1, 1), (3, 3, 3, 3)), 8, 8)
    with pytest.raises(BadInputError, match="not supported in hardware"):
        StreamWindow(Window((3, 3), (1, 1), (1, 1, 1, 1)), 1, 1)
