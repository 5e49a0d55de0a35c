"""What both self-test tops are: a network between two ROMs, its verdict on five ports.

:class:`RomSelfTest` feeds the words of an input ROM into the network's ``x`` port, one per
clock after reset, and checks every output the network emits (``valid_out``) against the next
word of a ROM of golden outputs.  :class:`~nnlcc.boards.selftest.SelfTest` fills the ROMs with
input vectors and :class:`~nnlcc.boards.stream_selftest.StreamSelfTest` with the pixels of
test images; both inherit the feeder, the checker and the verdict ports
(``done``, ``passed``, ``failed``, ``errors``, ``checked``), so
:class:`~nnlcc.boards.selftest.BoardSelfTest` and :func:`run_selftest` take either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from amaranth.hdl import Array, Cat, Module, Shape, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

__all__ = [
    "LUT_ROM_WORDS",
    "RomSelfTest",
    "SelfTestResult",
    "pack_vectors",
    "port_elements",
    "run_selftest",
]

LUT_ROM_WORDS = 64
"""Deepest ROM put in LUTs: each bit one function of six address bits (four LUT4s and a
slice's muxes on ECP5); more inputs share a word."""


def port_elements(layout: Any) -> tuple[Shape, int]:
    """The element shape and count of a network port (an ``ArrayLayout``)."""
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


class RomSelfTest(wiring.Component):
    """``network`` fed the rows of ``x_rows`` from a ROM, one per clock after reset, every
    output it emits compared with the next row of ``y_rows`` (the golden outputs, in the order
    the network emits them); ``latency`` bounds the clocks from the last input to the last
    output.

    Ports: ``done`` (all ``n`` outputs seen), ``passed``/``failed`` (valid with ``done``),
    ``errors`` (mismatching outputs; at most ``n``: each output is checked once),
    ``checked`` (outputs compared so far).
    """

    def __init__(
        self,
        network: wiring.Component,
        x_rows: npt.ArrayLike,
        y_rows: npt.ArrayLike,
        latency: int,
        *,
        rom_in_luts: bool = False,
    ) -> None:
        self.network = network
        sig = network.signature.members
        self.x_elem, self.x_count = port_elements(sig["x"].shape)
        self.y_elem, self.y_count = port_elements(sig["y"].shape)
        self.x_words = pack_vectors(x_rows, self.x_elem)
        self.y_words = pack_vectors(y_rows, self.y_elem)
        self.n = len(self.y_words)
        self.latency = latency
        self.rom_in_luts = rom_in_luts
        # inputs per ROM word: a LUT ROM at most LUT_ROM_WORDS deep (one function of the
        # address per bit: a slice's LUTs and muxes), several inputs to a word if need be
        self.pack = -(-len(self.x_words) // LUT_ROM_WORDS) if rom_in_luts else 1
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
        """Clocks from reset release to ``done`` (a bound when ``latency`` is one)."""
        return len(self.x_words) + self.latency + 6

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.network = self.network
        self._feed(m)
        self._check(m)
        return m

    def _rom(self, words: list[int], width: int, depth: int) -> Memory:
        """A ROM of ``words``: block RAM, or LUTs (``rom_in_luts``: yosys's ``rom_style``)."""
        attrs = {"rom_style": "logic"} if self.rom_in_luts else None
        return Memory(shape=unsigned(width), depth=depth, init=words, attrs=attrs)

    def _feed(self, m: Module) -> None:
        """The input ROM, ``pack`` inputs to a word: the word address advances every
        ``pack`` clocks, the word is registered after the synchronous read (``dq``: two
        clocks from address to data), and one input a clock is taken from it, the first two
        clocks after reset, until all are out; then a register between the ROM and the
        network (a block RAM's clock-to-output time, 5.8 ns on ECP5, in front of the first
        adder set Fmax to about 100 MHz)."""
        net, n, k = self.network, len(self.x_words), self.pack
        xw = self.x_elem.width * self.x_count
        words = [
            sum(w << (j * xw) for j, w in enumerate(self.x_words[i : i + k]))
            for i in range(0, n, k)
        ]
        m.submodules.rom_x = rom = self._rom(words, xw * k, len(words))
        rd = rom.read_port()
        word = Signal(range(len(words) + 1))
        phase = Signal(range(k))
        m.d.comb += rd.addr.eq(word)
        with m.If(phase == k - 1):
            m.d.sync += [phase.eq(0), word.eq(word + (word < len(words)))]
        with m.Else():
            m.d.sync += phase.eq(phase + 1)
        dq = Signal(xw * k)
        started = Signal(2)  # shifts in ones: data is in dq from the third clock on
        emitted = Signal(range(n + 1))
        m.d.sync += [dq.eq(rd.data), started.eq(Cat(1, started[0]))]
        valid = Signal()
        m.d.comb += valid.eq(started[1] & (emitted != n))
        with m.If(valid):
            m.d.sync += emitted.eq(emitted + 1)
        # the input at phase p is element (p - 2) mod k of dq (the previous word's last
        # two at phases 0 and 1)
        pick = Array(dq[j * xw : (j + 1) * xw] for j in range(k))
        elem = pick[(phase + k - 2) % k] if k > 1 else dq
        x_q = Signal(xw)
        v_q = Signal()
        m.d.sync += [x_q.eq(elem), v_q.eq(valid)]
        m.d.comb += [net.x.as_value().eq(x_q), net.valid_in.eq(v_q)]

    def _check(self, m: Module) -> None:
        """The golden ROM and the verdict.  The golden word for output ``checked`` is
        prefetched (the address moves on in the clock an output is consumed), so a plain
        synchronous ROM suffices.  The output, its golden word and "consumed" are registered,
        compared in the next clock, and the mismatch counted in the one after (no RAM output
        feeds logic).  ``more`` (outputs left to check) and ``checked + 1`` are registers of
        their own, so the ROM address is one mux behind ``valid_out``: a comparison and an
        increment in series with the address held the ECP5 self-test at 134 MHz."""
        net, n = self.network, self.n
        yw = self.y_elem.width * self.y_count
        m.submodules.rom_y = rom = self._rom(self.y_words, yw, n)
        rd = rom.read_port()
        checked, errors = self.checked, self.errors
        consume = Signal()
        more = Signal(init=1)
        after = Signal(range(n + 2), init=1)  # checked + 1
        y_q = Signal(yw)
        g_q = Signal(yw)
        c_q = Signal()
        bad = Signal()
        m.d.comb += [consume.eq(net.valid_out & more), rd.addr.eq(checked)]
        with m.If(consume):
            m.d.comb += rd.addr.eq(after)
            m.d.sync += [checked.eq(after), after.eq(after + 1), more.eq(after != n)]
        m.d.sync += [
            y_q.eq(net.y.as_value()),
            g_q.eq(rd.data),
            c_q.eq(consume),
            bad.eq(c_q & (y_q != g_q)),
        ]
        with m.If(bad):
            m.d.sync += errors.eq(errors + 1)
        done = (checked == n) & ~c_q & ~bad
        m.d.comb += [
            self.done.eq(done),
            self.passed.eq(done & (errors == 0)),
            self.failed.eq(done & (errors != 0)),
        ]


@dataclass
class SelfTestResult:
    passed: bool
    failed: bool
    errors: int
    checked: int
    cycles: int


def run_selftest(dut: RomSelfTest, max_cycles: int, vcd: str | None = None) -> SelfTestResult:
    """Clock a self-test top in the Amaranth simulator until ``done`` or ``max_cycles``."""
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
