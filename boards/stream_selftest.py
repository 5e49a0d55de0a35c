"""The on-board self-test of a pixel-streaming CNN: test images from a ROM, pixel by pixel.

:class:`StreamSelfTest` is the CNN counterpart of :class:`~nnlcc.boards.selftest.SelfTest`:
after reset it streams every pixel of a ROM of test images through the network's
:class:`~nnlcc.hdl.stream.StreamTop`, one pixel (all channels) per clock, frames back to back,
and compares every output the network emits (one vector per image after a flatten, or one
pixel per output pixel for a network that ends in an image) with the next word of a ROM of
golden outputs from the golden model. Like ``SelfTest`` it is a
:class:`~nnlcc.boards.rom_selftest.RomSelfTest` (the same ROM feeder, output checker and
verdict ports ``done``, ``passed``, ``failed``, ``errors``, ``checked``, ``n``), so
:class:`~nnlcc.boards.selftest.BoardSelfTest` puts it on a board unchanged: LEDs for
pass/fail/done and the count on the UART.

:func:`selftest_core` is where a board build picks the self-test of a network's top.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nnlcc.hdl.network import NetworkTop
from nnlcc.hdl.stream import StreamPlan, StreamTop
from nnlcc.hdl.top import top_for
from nnlcc.ir.family import Family
from nnlcc.ir.lowered import LoweredNetwork

from .fit import DesignTooLargeError
from .profiles import BoardProfile
from .rom_selftest import RomSelfTest, SelfTestResult, run_selftest
from .selftest import MAX_VECTORS, SelfTest, selftest_vectors

__all__ = [
    "MAX_IMAGES",
    "StreamSelfTest",
    "fitting_inputs",
    "latency_bound",
    "rom_blocks",
    "rom_words",
    "roms_in_luts",
    "selftest_core",
    "selftest_inputs",
    "simulate_stream_selftest",
]

MAX_IMAGES = 16
"""Test images in the ROM: each is ``H * W`` ROM words, and a few images already exercise
every line buffer, padding position and frame boundary (frames run back to back)."""


def selftest_inputs(
    net: LoweredNetwork, x_int: npt.ArrayLike | None = None
) -> npt.NDArray[np.int64]:
    """The self-test's inputs for ``net``'s top: up to :data:`MAX_VECTORS` vectors or
    :data:`MAX_IMAGES` images (from ``x_int``, else random in the input format)."""
    n = MAX_IMAGES if top_for(net).kind == "stream" else MAX_VECTORS
    return selftest_vectors(net, x_int, n)


def rom_words(net: LoweredNetwork) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(words, bits per word)`` per test input of the self-test's input ROM and of its
    golden ROM: a vector per word, or a pixel (all channels) per word for a CNN."""
    if top_for(net).kind == "stream":
        plan = StreamPlan(net)
        c, h, w = net.input_shape
        image = plan.out_images[-1]
        outputs = image[1] * image[2] if image else 1
        y_bits = plan.out_shapes[-1].width * max(plan.out_counts[-1], 1)
        return (h * w, plan.x_shape.width * c), (outputs, y_bits)
    meta = NetworkTop(net).port_metadata("t")
    x, y = meta["x"], meta["y"]
    return (1, x["width"] * x["count"]), (1, y["width"] * max(y["count"], 1))


def rom_blocks(net: LoweredNetwork, family: Family, n: int, in_luts: bool = False) -> int:
    """Block RAMs of ``family`` the self-test's two ROMs take for ``n`` test inputs (at most:
    yosys may put a small ROM in LUTs; none when they are in LUTs)."""
    if in_luts:
        return 0
    (xw, xb), (yw, yb) = rom_words(net)
    return family.bram.blocks(n * xw, xb) + family.bram.blocks(n * yw, yb)


def fitting_inputs(
    net: LoweredNetwork,
    board: BoardProfile,
    x: npt.NDArray[np.int64],
    network_bram: int,
    in_luts: bool = False,
) -> npt.NDArray[np.int64]:
    """The first of the test inputs ``x`` whose ROMs fit ``board``'s block RAM beside the
    network's own ``network_bram`` blocks (all of them when they fit); a
    :class:`~nnlcc.boards.fit.DesignTooLargeError` in one line when not even one does."""
    family, cap = board.family, board.bram
    n = len(x)
    while n and network_bram + rom_blocks(net, family, n, in_luts) > cap:
        n -= 1
    if n == 0:
        (xw, xb), _ = rom_words(net)
        what = (
            f"one {'x'.join(map(str, net.input_shape))} image ({xw:,} pixels of {xb} bits)"
            if top_for(net).kind == "stream"
            else f"one input vector ({xb} bits)"
        )
        need = rom_blocks(net, family, 1)
        raise DesignTooLargeError(
            f"the self-test does not fit {board.device} ({board.name}): its ROMs need {need} "
            f"{family.bram.primitive} for {what}, the network {network_bram}, the board has "
            f"{cap}"
        )
    return x[:n]


def selftest_core(
    net: LoweredNetwork, x_int: npt.ArrayLike, *, rom_in_luts: bool = False
) -> SelfTest | StreamSelfTest:
    """The self-test of ``net``'s top (:func:`~nnlcc.hdl.top.top_for` decides which);
    ``rom_in_luts``: its ROMs in LUTs (:func:`roms_in_luts`), not block RAM."""
    if top_for(net).kind == "stream":
        return StreamSelfTest(net, x_int, rom_in_luts=rom_in_luts)
    return SelfTest(net, x_int, rom_in_luts=rom_in_luts)


def roms_in_luts(board: BoardProfile, mhz: float) -> bool:
    """Whether the self-test's ROMs go into LUTs on ``board`` for a ``mhz`` clock: where a
    block RAM read, as yosys maps it, takes longer than the clock period (ECP5's DP16KD
    without its output register, :attr:`~nnlcc.ir.family.BlockRam.read_ns`)."""
    read = board.family.bram.read_ns
    return isinstance(read, float) and read > 1000.0 / mhz


class StreamSelfTest(RomSelfTest):
    """Streams the ROM's images through the CNN once after reset and checks every output
    (the ports of :class:`~nnlcc.boards.rom_selftest.RomSelfTest`; ``cycles`` is a bound).
    ``y_golden`` replaces the golden outputs (rows in the order the network emits them), for
    tests that corrupt the ROM.
    """

    def __init__(
        self,
        net: LoweredNetwork,
        x_int: npt.ArrayLike,
        y_golden: npt.ArrayLike | None = None,
        *,
        rom_in_luts: bool = False,
    ) -> None:
        self._MustUse__silence = True  # a refused configuration is not an unused design
        top = top_for(net)
        if top.kind != "stream":
            raise ValueError("StreamSelfTest needs a pixel-streaming network (an image input)")
        x = np.asarray(x_int, dtype=np.int64).reshape(-1, net.n_inputs)
        stimuli = top.stimuli(x)
        pixels = stimuli[top.input_key]
        y = stimuli[f"layer{len(net.layers) - 1}"] if y_golden is None else np.asarray(y_golden)
        if not len(pixels):
            raise ValueError("self-test needs at least one image")
        self._MustUse__silence = False
        self.net = net
        self.images = len(x)
        self.pixels = len(pixels)
        network = StreamTop(net)
        outputs = network.signature.members["y"].shape.length
        if y.ndim != 2 or y.shape[1] != outputs:
            raise ValueError(f"golden outputs of shape {y.shape}, expected (n, {outputs})")
        super().__init__(network, pixels, y, latency_bound(net), rom_in_luts=rom_in_luts)


def latency_bound(net: LoweredNetwork) -> int:
    """Clocks a frame's last output can trail its last pixel, at most: every layer's pipeline
    plus every window generator's delay line and flush ticks, plus a frame for a flatten."""
    plan = StreamPlan(net)
    _, h, w = net.input_shape
    windows = sum(g.depth + g.flush + 1 for g in plan.windows.values())
    joins = sum(1 for layer in net.layers if layer.kind == "add")
    return sum(layer.graph.latency for layer in net.layers) + windows + h * w * joins + 8


def simulate_stream_selftest(
    net: LoweredNetwork,
    x_int: npt.ArrayLike,
    y_golden: npt.ArrayLike | None = None,
    *,
    vcd: str | None = None,
    rom_in_luts: bool = False,
) -> SelfTestResult:
    """Run :class:`StreamSelfTest` in the Amaranth simulator until ``done`` (or twice its
    cycle bound)."""
    dut = StreamSelfTest(net, x_int, y_golden, rom_in_luts=rom_in_luts)
    return run_selftest(dut, 2 * dut.cycles + 16, vcd)
