"""The on-board self-test: the compiled network fed from a ROM of test vectors, its outputs
checked against a ROM of golden outputs, the verdict on LEDs.

Why a self-test and not a host link: it needs nothing but the board (no UART driver, no host
script), and a green LED is proof that the bitstream computes exactly what the golden model
:meth:`~nnlcc.ir.lowered.LoweredNetwork.evaluate` computes, at the board clock.

:class:`SelfTest` is board-independent (simulated in tests); :class:`BoardSelfTest` wraps it for
an amaranth-boards platform and drives the profile's LEDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from amaranth.hdl import Elaboratable, Module, Shape, Signal, signed, unsigned
from amaranth.lib import io, wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from nnlcc.errors import BadInputError
from nnlcc.hdl.top import top_for
from nnlcc.ir.lowered import LoweredNetwork

from .profiles import BoardProfile

if TYPE_CHECKING:
    from .stream_selftest import StreamSelfTest

__all__ = [
    "MAX_VECTORS",
    "BoardSelfTest",
    "SelfTest",
    "SelfTestResult",
    "pack_vectors",
    "selftest_vectors",
    "simulate_selftest",
]

MAX_VECTORS = 64
"""More vectors cost block RAM (one ROM word holds a whole input vector) and add little: the
network has no state, so a handful of vectors already exercises every adder's carry chain."""


def _elem(layout: Any) -> tuple[Shape, int]:
    if not isinstance(layout, ArrayLayout):
        raise TypeError(f"network port must be an ArrayLayout, got {layout!r}")
    return Shape.cast(layout.elem_shape), layout.length


def pack_vectors(values: npt.ArrayLike, elem: Shape) -> list[int]:
    """Pack each row into one integer, element ``i`` at bits ``[i*w, (i+1)*w)``, two's
    complement for signed elements (the network's port packing)."""
    w = elem.width
    mask = (1 << w) - 1
    rows = np.asarray(values, dtype=object)
    words = []
    for row in rows:
        word = 0
        for i, v in enumerate(row):
            iv = int(v)
            lo = -(1 << (w - 1)) if elem.signed else 0
            hi = (1 << (w - 1)) - 1 if elem.signed else (1 << w) - 1
            if not lo <= iv <= hi:
                raise ValueError(f"value {iv} does not fit the port element shape {elem}")
            word |= (iv & mask) << (i * w)
        words.append(word)
    return words


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


class SelfTest(wiring.Component):
    """Streams every ROM vector through the network once after reset, one per clock, and
    compares each output vector with its golden ROM word.

    Ports: ``done`` (all outputs seen), ``passed``/``failed`` (valid with ``done``),
    ``errors`` (mismatching vectors, saturating), ``checked`` (outputs compared so far).
    """

    def __init__(
        self,
        net: LoweredNetwork,
        x_int: npt.ArrayLike,
        y_golden: npt.ArrayLike | None = None,
        *,
        network: wiring.Component | None = None,
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
        self.network = network if network is not None else top.component()
        sig = self.network.signature.members
        self.x_elem, _ = _elem(sig["x"].shape)
        self.y_elem, _ = _elem(sig["y"].shape)
        self.n = len(x)
        self.x_words = pack_vectors(x, self.x_elem)
        self.y_words = pack_vectors(y, self.y_elem)
        self.latency: int = int(getattr(self.network, "latency", net.latency))
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
        """Clocks from reset release to ``done``."""
        return self.n + self.latency + 5

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.network = net = self.network
        xw = self.x_elem.width * self.net.n_inputs
        yw = self.y_elem.width * self.net.n_outputs
        m.submodules.rom_x = rom_x = Memory(shape=unsigned(xw), depth=self.n, init=self.x_words)
        m.submodules.rom_y = rom_y = Memory(shape=unsigned(yw), depth=self.n, init=self.y_words)
        rd_x = rom_x.read_port()
        rd_y = rom_y.read_port()

        # Input side: ROM address counts 0..n; the synchronous read delays data by a clock, so
        # the valid bit is the registered "address in range".
        in_addr = Signal(range(self.n + 1))
        feeding = Signal()
        m.d.comb += rd_x.addr.eq(in_addr)
        with m.If(in_addr < self.n):
            m.d.sync += in_addr.eq(in_addr + 1)
        m.d.sync += feeding.eq(in_addr < self.n)
        # a register between the ROM and the network: a block RAM's clock-to-output time
        # (5.8 ns on ECP5) in front of the first adder set Fmax to about 100 MHz
        x_q = Signal(xw)
        v_q = Signal()
        m.d.sync += [x_q.eq(rd_x.data), v_q.eq(feeding)]
        m.d.comb += [net.x.as_value().eq(x_q), net.valid_in.eq(v_q)]

        # Output side: the golden word for output ``checked`` is prefetched (the address moves
        # on in the clock an output is consumed), so a plain synchronous ROM suffices.
        # The output, its golden word and "consumed" are registered, compared in the next
        # clock, and the mismatch counted in the one after (no RAM output feeds logic).
        # ``more`` (outputs left to check) and ``checked + 1`` are registers of their own, so
        # the ROM address is one mux behind ``valid_out``: a comparison and an increment in
        # series with the address held the ECP5 self-test at 134 MHz.
        checked, errors = self.checked, self.errors
        consume = Signal()
        more = Signal(init=1)
        after = Signal(range(self.n + 2), init=1)  # checked + 1
        y_q = Signal(yw)
        g_q = Signal(yw)
        c_q = Signal()
        bad = Signal()
        m.d.comb += [consume.eq(net.valid_out & more), rd_y.addr.eq(checked)]
        with m.If(consume):
            m.d.comb += rd_y.addr.eq(after)
            m.d.sync += [checked.eq(after), after.eq(after + 1), more.eq(after != self.n)]
        m.d.sync += [
            y_q.eq(net.y.as_value()),
            g_q.eq(rd_y.data),
            c_q.eq(consume),
            bad.eq(c_q & (y_q != g_q)),
        ]
        with m.If(bad):
            m.d.sync += errors.eq(errors + 1)
        done = (checked == self.n) & ~c_q & ~bad
        m.d.comb += [
            self.done.eq(done),
            self.passed.eq(done & (errors == 0)),
            self.failed.eq(done & (errors != 0)),
        ]
        return m


class BoardSelfTest(Elaboratable):
    """:class:`SelfTest` (or a CNN's :class:`~nnlcc.boards.stream_selftest.StreamSelfTest`,
    which has the same verdict ports) on a board: LEDs ``pass``/``fail``/``done`` show the verdict and
    ``alive`` blinks at about 1 Hz (on boards with only pass/fail LEDs, ``fail`` blinks while
    the test runs), so a loaded bitstream is visible at a glance; the UART repeats the verdict
    with the error count (:mod:`nnlcc.boards.uart`)."""

    def __init__(self, selftest: SelfTest | StreamSelfTest, board: BoardProfile) -> None:
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


@dataclass
class SelfTestResult:
    passed: bool
    failed: bool
    errors: int
    checked: int
    cycles: int


def simulate_selftest(
    net: LoweredNetwork,
    x_int: npt.ArrayLike,
    y_golden: npt.ArrayLike | None = None,
    *,
    network: wiring.Component | None = None,
    vcd: str | None = None,
) -> SelfTestResult:
    """Run the self-test in the Amaranth simulator until ``done`` (or a bound of cycles)."""
    dut = SelfTest(net, x_int, y_golden, network=network)
    return run_selftest(dut, 4 * dut.cycles + 16, vcd)


def run_selftest(dut: Any, max_cycles: int, vcd: str | None = None) -> SelfTestResult:
    """Clock a self-test top (ports ``done``, ``passed``, ``failed``, ``errors``,
    ``checked``) in the Amaranth simulator until ``done`` or ``max_cycles``."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    out: dict[str, int] = {}

    async def bench(ctx: Any) -> None:
        for cycle in range(1, max_cycles):
            await ctx.tick()
            if ctx.get(dut.done):
                out["cycles"] = cycle
                break
        out.update(
            passed=ctx.get(dut.passed),
            failed=ctx.get(dut.failed),
            errors=ctx.get(dut.errors),
            checked=ctx.get(dut.checked),
        )

    sim.add_testbench(bench)
    if vcd is not None:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return SelfTestResult(
        passed=bool(out["passed"]),
        failed=bool(out["failed"]),
        errors=int(out["errors"]),
        checked=int(out["checked"]),
        cycles=int(out.get("cycles", -1)),
    )
