"""The on-board self-test of a pixel-streaming CNN: test images from a ROM, pixel by pixel.

:class:`StreamSelfTest` is the CNN counterpart of :class:`~nnlcc.boards.selftest.SelfTest`:
after reset it streams every pixel of a ROM of test images through the network's
:class:`~nnlcc.hdl.stream.StreamTop`, one pixel (all channels) per clock, frames back to back,
and compares every output the network emits (one vector per image after a flatten, or one
pixel per output pixel for a network that ends in an image) with the next word of a ROM of
golden outputs from the golden model. It has the same verdict ports as ``SelfTest``
(``done``, ``passed``, ``failed``, ``errors``, ``checked``, ``n``), so
:class:`~nnlcc.boards.selftest.BoardSelfTest` puts it on a board unchanged: LEDs for
pass/fail/done and the count on the UART.

:func:`selftest_core` is where a board build picks the self-test of a network's top.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from nnlcc.hdl.stream import StreamPlan, StreamTop
from nnlcc.hdl.top import top_for
from nnlcc.ir.lowered import LoweredNetwork

from .selftest import (
    MAX_VECTORS,
    SelfTest,
    SelfTestResult,
    _elem,
    pack_vectors,
    run_selftest,
    selftest_vectors,
)

__all__ = [
    "MAX_IMAGES",
    "StreamSelfTest",
    "latency_bound",
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


def selftest_core(net: LoweredNetwork, x_int: npt.ArrayLike) -> SelfTest | StreamSelfTest:
    """The self-test of ``net``'s top (:func:`~nnlcc.hdl.top.top_for` decides which)."""
    return StreamSelfTest(net, x_int) if top_for(net).kind == "stream" else SelfTest(net, x_int)


class StreamSelfTest(wiring.Component):
    """Streams the ROM's images through the CNN once after reset and checks every output.

    Ports: ``done`` (all expected outputs seen), ``passed``/``failed`` (valid with ``done``),
    ``errors`` (mismatching outputs, saturating at ``n``), ``checked`` (outputs compared).
    ``y_golden`` replaces the golden outputs (rows in the order the network emits them), for
    tests that corrupt the ROM.
    """

    def __init__(
        self,
        net: LoweredNetwork,
        x_int: npt.ArrayLike,
        y_golden: npt.ArrayLike | None = None,
    ) -> None:
        self._MustUse__silence = True  # a refused configuration is not an unused design
        top = top_for(net)
        if top.kind != "stream":
            raise ValueError("StreamSelfTest needs a pixel-streaming network (an image input)")
        x = np.asarray(x_int, dtype=np.int64).reshape(-1, net.n_inputs)
        stimuli = top.stimuli(x)
        pixels = stimuli[top.input_key]
        y = stimuli[f"layer{len(net.layers) - 1}"] if y_golden is None else np.asarray(y_golden)
        if not 1 <= len(pixels) <= 1 << 16:
            raise ValueError(f"self-test needs 1..65536 pixels, got {len(pixels)}")
        self._MustUse__silence = False
        self.net = net
        self.images = len(x)
        self.network = StreamTop(net)
        sig = self.network.signature.members
        self.x_elem, self.channels = _elem(sig["x"].shape)
        self.y_elem, self.y_count = _elem(sig["y"].shape)
        if y.ndim != 2 or y.shape[1] != self.y_count:
            raise ValueError(f"golden outputs of shape {y.shape}, expected (n, {self.y_count})")
        self.pixels = len(pixels)
        self.n = len(y)
        self.x_words = pack_vectors(pixels, self.x_elem)
        self.y_words = pack_vectors(y, self.y_elem)
        self.latency = latency_bound(net)
        super().__init__(
            {
                "done": Out(1),
                "passed": Out(1),
                "failed": Out(1),
                "errors": Out(range(self.n + 1)),
                "checked": Out(range(self.n + 1)),
            }
        )

    @property
    def cycles(self) -> int:
        """A bound on the clocks from reset release to ``done``."""
        return self.pixels + self.latency + 5

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.network = net = self.network
        xw = self.x_elem.width * self.channels
        yw = self.y_elem.width * self.y_count
        m.submodules.rom_x = rom_x = Memory(
            shape=unsigned(xw), depth=self.pixels, init=self.x_words
        )
        m.submodules.rom_y = rom_y = Memory(shape=unsigned(yw), depth=self.n, init=self.y_words)
        rd_x = rom_x.read_port()
        rd_y = rom_y.read_port()

        # Input side, as SelfTest: a pixel per clock from the ROM, registered after the RAM.
        in_addr = Signal(range(self.pixels + 1))
        feeding = Signal()
        m.d.comb += rd_x.addr.eq(in_addr)
        with m.If(in_addr < self.pixels):
            m.d.sync += in_addr.eq(in_addr + 1)
        m.d.sync += feeding.eq(in_addr < self.pixels)
        x_q = Signal(xw)
        v_q = Signal()
        m.d.sync += [x_q.eq(rd_x.data), v_q.eq(feeding)]
        m.d.comb += [net.x.as_value().eq(x_q), net.valid_in.eq(v_q)]

        # Output side, as SelfTest: golden word prefetched, output and golden registered,
        # compared a clock later, counted in the one after.
        checked, errors = self.checked, self.errors
        consume = Signal()
        y_q = Signal(yw)
        g_q = Signal(yw)
        c_q = Signal()
        bad = Signal()
        m.d.comb += [consume.eq(net.valid_out & (checked < self.n)), rd_y.addr.eq(checked)]
        with m.If(consume):
            m.d.comb += rd_y.addr.eq(checked + 1)
            m.d.sync += checked.eq(checked + 1)
        m.d.sync += [
            y_q.eq(net.y.as_value()),
            g_q.eq(rd_y.data),
            c_q.eq(consume),
            bad.eq(c_q & (y_q != g_q)),
        ]
        with m.If(bad & (errors != self.n)):
            m.d.sync += errors.eq(errors + 1)
        done = (checked == self.n) & ~c_q & ~bad
        m.d.comb += [
            self.done.eq(done),
            self.passed.eq(done & (errors == 0)),
            self.failed.eq(done & (errors != 0)),
        ]
        return m


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
) -> SelfTestResult:
    """Run :class:`StreamSelfTest` in the Amaranth simulator until ``done`` (or twice its
    cycle bound)."""
    dut = StreamSelfTest(net, x_int, y_golden)
    return run_selftest(dut, 2 * dut.cycles + 16, vcd)
