"""The self-test verdict as a line of text on the board's UART (8N1), repeated about once a
second so a terminal opened late still sees it::

    nnlcc selftest PASS 64 vectors errors=0x0000

LEDs say pass/fail; the line adds how many vectors were checked and how many failed, which
tells a timing problem (a few errors) from a wiring or ROM problem (all of them). The error
count is printed in hex: the vector count is a constant known at elaboration and printed in
decimal, but a run-time binary-to-decimal converter would cost more than the rest of the
reporter.

Timing: the reporter is built to run at the network's clock, not the UART's. Its inputs are
registered, the byte to send is registered (a 40-way choice), and the once-a-second wait is a
down-counter whose sign bit says "expired", so no wide comparison lies on any path (a 25-bit
``wait != 0`` feeding the transmitter's load held the ECP5 self-test to 134 MHz).
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal, Value, signed

__all__ = ["StatusReporter", "UartTx", "message_template"]

_HEX = "0123456789ABCDEF"


class UartTx(Elaboratable):
    """8N1 transmitter: ``start`` with ``data`` while not ``busy`` sends one byte on ``tx``."""

    def __init__(self, divisor: int) -> None:
        if divisor < 1:
            self._MustUse__silence = True  # refused, not unused
            raise ValueError("UART divisor must be at least 1")
        self.divisor = divisor
        self.data = Signal(8)
        self.start = Signal()
        self.busy = Signal()
        self.tx = Signal(init=1)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        shift = Signal(10, init=0x3FF)
        left = Signal(range(11))
        cnt = Signal(range(self.divisor))
        m.d.comb += [self.busy.eq(left != 0), self.tx.eq(shift[0])]
        with m.If(left == 0), m.If(self.start):
            m.d.sync += [
                shift.eq(Cat(Const(0, 1), self.data, Const(1, 1))),
                left.eq(10),
                cnt.eq(self.divisor - 1),
            ]
        with m.Elif(cnt == 0):
            m.d.sync += [shift.eq(Cat(shift[1:], Const(1, 1))), left.eq(left - 1)]
            m.d.sync += cnt.eq(self.divisor - 1)
        with m.Else():
            m.d.sync += cnt.eq(cnt - 1)
        return m


def message_template(vectors: int) -> list[str | int]:
    """The line as a list of bytes; strings are run-time fields (``v0..v3`` verdict letters,
    ``e3..e0`` hex digits of the error count)."""
    head = "nnlcc selftest "
    mid = f" {vectors} vectors errors=0x"
    out: list[str | int] = [ord(c) for c in head]
    out += [f"v{i}" for i in range(4)]
    out += [ord(c) for c in mid]
    out += [f"e{i}" for i in (3, 2, 1, 0)]
    out += [ord("\r"), ord("\n")]
    return out


class StatusReporter(Elaboratable):
    """Sends :func:`message_template` once ``done`` rises, then every ``period`` clocks."""

    def __init__(
        self, done: Value, passed: Value, errors: Value, vectors: int, divisor: int, period: int
    ) -> None:
        self.done, self.passed, self.errors = done, passed, errors
        self.template = message_template(vectors)
        self.uart = UartTx(divisor)
        self.period = max(period, len(self.template) * 10 * divisor + 1)
        self.tx = Signal(init=1)

    def _byte(self, m: Module, field: str, passed: Value, errors: Value) -> Value:
        if field.startswith("v"):
            i = int(field[1:])
            return Mux(passed, ord("PASS"[i]), ord("FAIL"[i]))
        i = int(field[1:])
        nib = Signal(4, name=f"nib{i}")
        m.d.comb += nib.eq(errors.as_unsigned() >> (4 * i))
        # 0-9 -> '0'..'9', 10-15 -> 'A'..'F'
        return Mux(nib < 10, nib + ord("0"), nib + (ord("A") - 10))

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.uart = uart = self.uart
        n = len(self.template)
        # the verdict, registered where it enters (it is static once ``done`` is)
        done = Signal()
        passed = Signal()
        errors = Signal(len(self.errors))
        m.d.sync += [done.eq(self.done), passed.eq(self.passed), errors.eq(self.errors)]
        pos = Signal(range(n + 1))
        # expires when it counts below zero: its sign bit is the whole comparison
        wait = Signal(signed(max(self.period, 2).bit_length() + 1), init=-1)
        expired = wait[-1]
        chosen = Signal(8)
        byte = Signal(8)  # template[pos], one clock behind pos (pos never changes two clocks
        # in a row: a start makes the transmitter busy for 10 bits, a wrap starts the wait)
        with m.Switch(pos):
            for i, item in enumerate(self.template):
                with m.Case(i):
                    val = item if isinstance(item, int) else self._byte(m, item, passed, errors)
                    m.d.comb += chosen.eq(val)
        m.d.sync += byte.eq(chosen)
        m.d.comb += [uart.data.eq(byte), self.tx.eq(uart.tx)]
        start = Signal()
        m.d.sync += start.eq(0)
        with m.If(done):
            with m.If(~expired):
                m.d.sync += wait.eq(wait - 1)
            with m.Elif(pos < n), m.If(~uart.busy & ~start):
                m.d.sync += [start.eq(1), pos.eq(pos + 1)]
            with m.Elif(pos == n):
                m.d.sync += [pos.eq(0), wait.eq(self.period - 2)]
        m.d.comb += uart.start.eq(start)
        return m
