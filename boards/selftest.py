"""The on-board self-test: the compiled network fed from a ROM of test vectors, its outputs
checked against a ROM of golden outputs, the verdict on LEDs.

Why a self-test and not a host link: it needs nothing but the board (no UART driver, no host
script), and a green LED is proof that the bitstream computes exactly what the golden model
:meth:`~nnlcc.ir.lowered.LoweredNetwork.evaluate` computes, at the board clock.

:class:`SelfTest` is board-independent (simulated in tests); :class:`BoardSelfTest` wraps it for
an amaranth-boards platform and drives the profile's LEDs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from amaranth.hdl import Elaboratable, Module, Signal, signed
from amaranth.lib import io, wiring

from nnlcc.errors import BadInputError
from nnlcc.hdl.top import top_for
from nnlcc.ir.lowered import LoweredNetwork

from .profiles import BoardProfile
from .rom_selftest import RomSelfTest, SelfTestResult, run_selftest

__all__ = [
    "MAX_VECTORS",
    "BoardSelfTest",
    "SelfTest",
    "selftest_vectors",
    "simulate_selftest",
]

MAX_VECTORS = 64
"""More vectors cost block RAM (one ROM word holds a whole input vector) and add little: the
network has no state, so a handful of vectors already exercises every adder's carry chain."""


def selftest_vectors(
    net: LoweredNetwork, x_int: npt.ArrayLike | None = None, n: int = MAX_VECTORS, seed: int = 0
) -> npt.NDArray[np.int64]:
    """Up to ``n`` integer input vectors: the first rows of ``x_int``, or uniformly random
    integers of the input format (with its two extremes first) when no data is given."""
    if x_int is not None:
        x = np.asarray(x_int, dtype=np.int64).reshape(-1, net.n_inputs)[:n]
        if len(x):
            return x
    rng = np.random.default_rng(seed)
    lo, hi = net.input_fmt.lo, net.input_fmt.hi
    x = rng.integers(lo, hi + 1, size=(max(n, 2), net.n_inputs), dtype=np.int64)
    x[0, :] = lo
    x[1, :] = hi
    return x[:n]


class SelfTest(RomSelfTest):
    """Streams every ROM vector through the network once after reset, one per clock, and
    compares each output vector with its golden ROM word (the ports of
    :class:`~nnlcc.boards.rom_selftest.RomSelfTest`; ``errors`` counts mismatching vectors).
    """

    def __init__(
        self,
        net: LoweredNetwork,
        x_int: npt.ArrayLike,
        y_golden: npt.ArrayLike | None = None,
        *,
        network: wiring.Component | None = None,
        rom_in_luts: bool = False,
    ) -> None:
        self._MustUse__silence = True  # a refused configuration is not an unused design
        top = top_for(net)
        if network is None and top.selftest_refusal is not None:
            raise BadInputError(top.selftest_refusal)
        if network is None and top.kind != "vector":  # images: boards.stream_selftest
            raise ValueError("SelfTest drives vectors; a pixel-streaming top has StreamSelfTest")
        x = np.asarray(x_int, dtype=np.int64).reshape(-1, net.n_inputs)
        if not 1 <= len(x) <= 4096:
            raise ValueError(f"self-test needs 1..4096 vectors, got {len(x)}")
        y = net.evaluate(x) if y_golden is None else np.asarray(y_golden)
        if y.shape != (len(x), net.n_outputs):
            raise ValueError(
                f"golden outputs of shape {y.shape}, expected {(len(x), net.n_outputs)}"
            )
        self._MustUse__silence = False
        self.net = net
        # the network's own top, fed one ROM word (one input) per clock
        network = network if network is not None else top.component()
        latency = int(getattr(network, "latency", net.latency))
        super().__init__(network, x, y, latency, rom_in_luts=rom_in_luts)


class BoardSelfTest(Elaboratable):
    """:class:`SelfTest` (or a CNN's :class:`~nnlcc.boards.stream_selftest.StreamSelfTest`:
    any :class:`~nnlcc.boards.rom_selftest.RomSelfTest`) on a board: LEDs ``pass``/``fail``/``done`` show the verdict and
    ``alive`` blinks at about 1 Hz (on boards with only pass/fail LEDs, ``fail`` blinks while
    the test runs), so a loaded bitstream is visible at a glance; the UART repeats the verdict
    with the error count (:mod:`nnlcc.boards.uart`)."""

    def __init__(self, selftest: RomSelfTest, board: BoardProfile) -> None:
        self.selftest = selftest
        self.board = board

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.selftest = st = self.selftest
        ticks = max(int(self.board.clock_hz // 2), 2)
        # a down-counter that flips ``blink`` when it passes below zero: its sign bit is the
        # whole comparison (a 24-bit ``div == ticks - 1`` would be a path of its own)
        div = Signal(signed(ticks.bit_length() + 1), init=ticks - 2)
        blink = Signal()
        with m.If(div[-1]):
            m.d.sync += [div.eq(ticks - 2), blink.eq(~blink)]
        with m.Else():
            m.d.sync += div.eq(div - 1)
        if platform is None:
            return m
        drive = {
            "pass": st.passed,
            "fail": st.failed if "done" in self.board.leds else st.failed | (~st.done & blink),
            "done": st.done,
            "alive": blink,
        }
        if self.board.uart is not None:
            from .uart import StatusReporter

            m.submodules.report = rep = StatusReporter(
                st.done,
                st.passed,
                st.errors,
                st.n,
                divisor=round(self.board.clock_hz / self.board.uart_baud),
                period=int(self.board.clock_hz),
            )
            uart = platform.request(*self.board.uart, dir="-")
            m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
            m.d.comb += tx.o.eq(rep.tx)
        for role, (res, num) in self.board.leds.items():
            pin = platform.request(res, num, dir="-")
            m.submodules[f"led_{role}"] = buf = io.Buffer("o", pin)
            m.d.comb += buf.o.eq(drive[role])
        return m


def simulate_selftest(
    net: LoweredNetwork,
    x_int: npt.ArrayLike,
    y_golden: npt.ArrayLike | None = None,
    *,
    network: wiring.Component | None = None,
    vcd: str | None = None,
    rom_in_luts: bool = False,
) -> SelfTestResult:
    """Run the self-test in the Amaranth simulator until ``done`` (or a bound of cycles)."""
    dut = SelfTest(net, x_int, y_golden, network=network, rom_in_luts=rom_in_luts)
    return run_selftest(dut, 4 * dut.cycles + 16, vcd)
