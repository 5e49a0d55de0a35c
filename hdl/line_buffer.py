"""Line buffer and window generator: a raster pixel stream in, one kernel window per clock out.

Stream convention (every streaming unit of :mod:`nnlcc.hdl`): one pixel per clock, all ``C``
channels in parallel, in raster order, qualified by ``valid``; a frame is ``H * W`` valid
pixels and the first valid pixel after reset starts frame 0. Valid pixels may come on every
clock or with gaps (after a stride or a pool the stream is sparse); frames may follow each
other back to back.

How windows are formed (no padded stream, no stalls). Every *tick* shifts the last input
pixels through a delay line; a tick is a clock with a valid input pixel, or, after a frame's
last pixel, one of the ``flush`` clocks the generator adds by itself to finish that frame. The
window of stride-1 position ``(R, C)`` (top-left tap at input ``(R - pad_top, C - pad_left)``)
is read at tick ``d + R * W + C`` of its frame, ``d = (kh - 1 - pad_top) * W + kw - 1 -
pad_left``: then tap ``(i, j)`` of the window is the pixel ``(kh - 1 - i) * W + kw - 1 - j``
ticks old, i.e. the pixel ``(R - pad_top + i, C - pad_left + j)`` in linear raster order. Taps
outside the image (padding; the linear order wraps them into the neighbouring row) are replaced
by ``fill`` by a position controller that follows ``(R, C)``; strided positions that are not
outputs are skipped. Since each row of positions takes exactly ``W`` ticks, the generator emits
at most one window per tick and never needs to stop the input: frame ``f + 1``'s pixels may
even serve as frame ``f``'s flush ticks. The delay line is ``(kh - 1) * W + kw - 1`` pixels
(the classical ``kh - 1`` line buffers plus the window registers, minus the current pixel).

Window vectors follow :mod:`nnlcc.ir.window`: tap-major, channel-fastest,
``index(i, j, c) = (i * kw + j) * C + c``.

Where the delay line lives. Between the taps of window row ``i + 1`` (ages ``r * W .. r * W +
kw - 1``, ``r = kh - 1 - i``) and those of row ``i`` lies a run of ``G = W - kw + 1`` pixels
no tap reads: the line buffer proper. A run of at least ``ram_bits`` bits
(:meth:`StreamWindow.ram_runs`) is a :class:`RamDelay`, an inferred simple dual-port memory
of ``G`` words written and read once per tick (block RAM on ECP5/xc7/iCE40 as yosys infers
it); shorter runs, the window taps and the frame-start markers stay in flip-flops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from nnlcc.errors import BadInputError
from nnlcc.ir.window import Window

__all__ = ["LINE_RAM_BITS", "RamDelay", "StreamWindow", "WindowGenerator"]

LINE_RAM_BITS = 4096
"""Smallest line-buffer run (bits) put in a memory: below a quarter of an ECP5 DP16KD
(18 kbit) or a xc7 RAMB18, flip-flops (or LUT RAM) are cheaper than a block RAM."""


@dataclass(frozen=True)
class StreamWindow:
    """The tick schedule of a :class:`~nnlcc.ir.window.Window` over an ``h x w`` stream."""

    window: Window
    h: int
    w: int

    def __post_init__(self) -> None:
        (kh, kw), (pt, pl, _, _) = self.window.kernel, self.window.pads
        ho, wo = self.window.out_hw(self.h, self.w)
        sh, sw = self.window.stride
        why = None
        if pt > kh - 1 or pl > kw - 1:
            why = "a padding as large as the kernel"
        elif (ho - 1) * sh > self.h - 1 or (wo - 1) * sw > self.w - 1:
            why = "more output positions than input pixels per row/column (pads too large)"
        elif self.delay >= self.h * self.w:
            why = "a kernel taller than the image"
        if why is not None:
            raise BadInputError(
                f"streaming window {self.window.to_text()} on {self.h}x{self.w}: {why} "
                "is not supported in hardware"
            )

    @property
    def out_hw(self) -> tuple[int, int]:
        return self.window.out_hw(self.h, self.w)

    @property
    def delay(self) -> int:
        """Ticks from a frame's first pixel to its first window (``d``)."""
        (kh, kw), (pt, pl, _, _) = self.window.kernel, self.window.pads
        return (kh - 1 - pt) * self.w + (kw - 1 - pl)

    @property
    def depth(self) -> int:
        """Pixels held in the delay line (line buffers plus window registers)."""
        return self.window.line_buffer_pixels(self.w)

    @property
    def last_position(self) -> tuple[int, int]:
        """Stride-1 position ``(R, C)`` of a frame's last output window."""
        ho, wo = self.out_hw
        sh, sw = self.window.stride
        return (ho - 1) * sh, (wo - 1) * sw

    @property
    def flush(self) -> int:
        """Ticks the generator adds after a frame's last pixel to emit its last window."""
        r, c = self.last_position
        return max(0, self.delay + r * self.w + c - (self.h * self.w - 1))

    @property
    def gap(self) -> int:
        """Pixels between two window rows' taps that no tap reads, plus one (``G``)."""
        return self.w - self.window.kernel[1] + 1

    def ram_runs(self, pixel_bits: int, ram_bits: int | None) -> list[int]:
        """Row groups ``r`` (``0 .. kh - 2``) whose line buffer is a :class:`RamDelay`: those
        of ``gap * pixel_bits >= ram_bits`` (none when ``ram_bits`` is None)."""
        kh = self.window.kernel[0]
        if ram_bits is None or self.gap < 3 or self.gap * pixel_bits < ram_bits:
            return []
        return list(range(kh - 1))

    def tap_age(self, i: int, j: int) -> int:
        """How many ticks old tap ``(i, j)``'s pixel is when its window is read."""
        kh, kw = self.window.kernel
        return (kh - 1 - i) * self.w + (kw - 1 - j)


class WindowGenerator(wiring.Component):
    """Pixels (``x``: ``C`` channels of ``shape``, ``valid``) in, windows out.

    ``window`` (``kh * kw * C`` elements of ``shape``) and ``valid_out`` are combinational:
    a window is valid during the clock of the tick that completes it, so a pipeline behind the
    generator registers it on that clock's edge. ``fill`` is the value of padding taps.
    """

    def __init__(
        self,
        geometry: StreamWindow,
        channels: int,
        shape: Shape,
        fill: int = 0,
        ram_bits: int | None = LINE_RAM_BITS,
    ) -> None:
        self.geometry = geometry
        self.channels = channels
        self.shape = Shape.cast(shape)
        self.fill = fill
        self.ram_rows = geometry.ram_runs(self.shape.width * channels, ram_bits)
        taps = geometry.window.taps
        super().__init__(
            {
                "x": In(ArrayLayout(self.shape, channels)),
                "valid": In(1),
                "window": Out(ArrayLayout(self.shape, taps * channels)),
                "valid_out": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        g = self.geometry
        h, w = g.h, g.w
        (kh, kw), (sh, sw) = g.window.kernel, g.window.stride
        r_last = g.last_position[0]

        # ---- input position and flush ticks -------------------------------------------------
        # decodes of the counters are registers of their own (pos0: in_pos == 0, plast: the
        # frame's last pixel, owing: flush ticks owed), so ticks are one LUT from registers
        hw = h * w
        in_pos = Signal(range(hw), name="in_pos")
        pos0 = Signal(init=1, name="pos0")
        plast = Signal(init=int(hw == 1), name="plast")
        with m.If(self.valid):
            m.d.sync += [
                in_pos.eq(Mux(plast, 0, in_pos + 1)),
                pos0.eq(plast),
                plast.eq(in_pos == hw - 2 if hw >= 2 else 1),
            ]
        owed = Signal(range(g.flush + 1), name="flush_owed")
        owing = Signal(name="owing")
        tick = Signal(name="tick")
        # idle flush ticks only until the next frame's first pixel: after it, they would shift
        # the delay line between that frame's pixels, so its own pixels finish the flush
        m.d.comb += tick.eq(self.valid | (owing & pos0))
        with m.If(self.valid & plast):
            m.d.sync += [owed.eq(g.flush), owing.eq(g.flush != 0)]
        with m.Elif(tick & owing):
            m.d.sync += [owed.eq(owed - 1), owing.eq(owed != 1)]

        # ---- delay line: pixel and a frame-start marker, shifted on ticks ----------------------
        first = Signal(name="first")
        m.d.comb += first.eq(self.valid & pos0)
        marks: list[Value] = [first]
        for k in range(1, g.delay + 1):
            f = Signal(name=f"mark{k}")
            with m.If(tick):
                m.d.sync += f.eq(marks[-1])
            marks.append(f)
        # pixel of every age a tap reads; a RAM run replaces the untapped registers of a row gap
        pixels: dict[int, Value] = {0: self.x.as_value()}
        width = len(self.x.as_value())
        for k in range(1, g.depth + 1):
            r, j = divmod(k, w)
            if j == 0 and r - 1 in self.ram_rows:
                ram = RamDelay(width, g.gap)
                m.submodules[f"line{r - 1}"] = ram
                m.d.comb += [ram.d.eq(pixels[k - g.gap]), ram.tick.eq(tick)]
                pixels[k] = ram.q
                continue
            if r in self.ram_rows and j >= kw:  # inside a RAM run: no register
                continue
            p = Signal(width, name=f"lb{k}", reset_less=True)
            with m.If(tick):
                m.d.sync += p.eq(pixels[k - 1])
            pixels[k] = p

        # ---- position controller ---------------------------------------------------------------
        # The stride-1 position (R, C) of the window a tick reads is 0 at a frame's start tick
        # (marks[delay]) and the registered state S otherwise; S and the facts the window needs
        # of it (which taps are inside the image, whether the window is emitted, whether it is
        # the frame's last, whether C ends a row) are registers, and the next state's facts
        # are worked out from the current ones, so the window path is a LUT from registers.
        start = marks[g.delay]
        pos = _Position(g)
        rows = Signal(range(r_last + 2), name="R")
        cols = Signal(range(w + 1), name="C")
        rph = Signal(range(sh), name="R_phase")
        cph = Signal(range(sw), name="C_phase")
        okr = Signal(kh, name="row_ok")
        okc = Signal(kw, name="col_ok")
        emit = Signal(name="emit")
        at_end = Signal(name="at_end")
        row_end = Signal(name="row_end")
        active = Signal(name="active")
        live = Signal(name="live")
        m.d.comb += live.eq(tick & (start | active))

        def pick(const: int | bool, reg: Value) -> Value:
            """The fact of the tick's position: the start position's constant or the state's."""
            return Mux(start, int(const), reg)

        zero, adv0 = pos.facts(0, 0, 0, 0), pos.facts(*pos.advance(0, 0, 0, 0))
        with m.If(live):
            m.d.sync += active.eq(~pick(zero.end, at_end))
            with m.If(start):  # the state after the start position: constants
                r1, c1, rp1, cp1 = pos.advance(0, 0, 0, 0)
                m.d.sync += [
                    rows.eq(r1),
                    cols.eq(c1),
                    rph.eq(rp1),
                    cph.eq(cp1),
                    okr.eq(adv0.okr),
                    okc.eq(adv0.okc),
                    emit.eq(adv0.emit),
                    at_end.eq(adv0.end),
                    row_end.eq(adv0.row_end),
                ]
            with m.Else():  # one step on from the state, its facts from the current ones
                m.d.sync += pos.step(rows, cols, rph, cph, okr, okc, emit, at_end, row_end)
        m.d.comb += self.valid_out.eq(live & pick(zero.emit, emit))

        # ---- window taps with padding ----------------------------------------------------------
        fill = Const(self.fill, self.shape)
        elems: list[Value] = []
        for i in range(kh):
            for j in range(kw):
                inside = pick(zero.okr >> i & zero.okc >> j & 1, okr[i] & okc[j])
                src = pixels[g.tap_age(i, j)]
                width = self.shape.width
                for c in range(self.channels):
                    e = Signal(self.shape, name=f"t{i}_{j}_{c}")
                    raw = src[c * width : (c + 1) * width]
                    m.d.comb += e.eq(Mux(inside, raw, fill))
                    elems.append(e)
        m.d.comb += self.window.as_value().eq(Cat(*elems))
        return m


@dataclass(frozen=True)
class _Facts:
    """What the window of a position needs to know: taps inside the image (bit ``i`` of
    ``okr``: row ``i``; bit ``j`` of ``okc``: column ``j``), emitted, the frame's last, C at
    a row's end."""

    okr: int
    okc: int
    emit: bool
    end: bool
    row_end: bool


class _Position:
    """The position controller's arithmetic, for constants (Python) and for the state
    registers (Amaranth): the step from one stride-1 position to the next, and the facts of
    the next position from the current position and its facts (comparisons of the current
    counters with constants, and shifts of the tap flags: no adder in front of a
    comparator)."""

    def __init__(self, g: StreamWindow) -> None:
        self.g = g
        (self.kh, self.kw), (self.sh, self.sw) = g.window.kernel, g.window.stride
        self.pt, self.pl = g.window.pads[0], g.window.pads[1]
        self.r_last, self.c_last = g.last_position

    def advance(self, r: int, c: int, rph: int, cph: int) -> tuple[int, int, int, int]:
        g = self.g
        if c == g.w - 1:
            return r + 1, 0, 0 if rph == self.sh - 1 else rph + 1, 0
        return r, c + 1, rph, 0 if cph == self.sw - 1 else cph + 1

    def facts(self, r: int, c: int, rph: int, cph: int) -> _Facts:
        g = self.g
        okr = sum(1 << i for i in range(self.kh) if self.pt <= r + i < g.h + self.pt)
        okc = sum(1 << j for j in range(self.kw) if self.pl <= c + j < g.w + self.pl)
        emit = rph == 0 and cph == 0 and c <= self.c_last
        end = r == self.r_last and c == self.c_last
        return _Facts(okr, okc, emit, end, c == g.w - 1)

    def step(
        self,
        r: Signal,
        c: Signal,
        rph: Signal,
        cph: Signal,
        okr: Signal,
        okc: Signal,
        emit: Signal,
        end: Signal,
        row_end: Signal,
    ) -> list[Any]:
        """Assignments moving the state one position on (``row_end``: C is a row's last)."""
        g, kh, kw = self.g, self.kh, self.kw

        def inside(v: Value, lo: int, hi: int) -> Value:  # lo <= v < hi, v non-negative
            return (v >= max(lo, 0)) & (v < hi) if hi > 0 else Const(0, 1)

        # tap flags one column (row) on: the next tap's, the last one's a comparison
        col_next = Cat(okc[1:], inside(c, self.pl - kw, g.w + self.pl - kw))
        row_next = Cat(okr[1:], inside(r, self.pt - kh, g.h + self.pt - kh))
        wrap_c = self.facts(0, 0, 0, 0).okc
        sh1 = self.sh - 1
        rph_next = Mux(rph == sh1, 0, rph + 1) if self.sh > 1 else Const(0, 1)
        cph_next = Mux(cph == self.sw - 1, 0, cph + 1) if self.sw > 1 else Const(0, 1)
        return [
            c.eq(Mux(row_end, 0, c + 1)),
            cph.eq(Mux(row_end, 0, cph_next)),
            r.eq(Mux(row_end, r + 1, r)),
            rph.eq(Mux(row_end, rph_next, rph)),
            okc.eq(Mux(row_end, wrap_c, col_next)),
            okr.eq(Mux(row_end, row_next, okr)),
            emit.eq(
                Mux(row_end, rph == sh1 if self.sh > 1 else 1, rph == 0)
                & (row_end | (cph == self.sw - 1))
                & (row_end | (c < self.c_last))
            ),
            end.eq(
                Mux(row_end, r == self.r_last - 1, r == self.r_last)
                & Mux(row_end, self.c_last == 0, c == self.c_last - 1)
            ),
            row_end.eq(~row_end & (c == g.w - 2) if g.w >= 2 else 1),
        ]


class RamDelay(wiring.Component):
    """``d`` delayed by ``length`` ticks in a memory of ``length`` words: each tick writes ``d``
    at the pointer and reads the next word (the oldest), so ``q`` holds, from the clock after
    a tick until the next, the ``d`` of ``length - 1`` ticks before it: exactly what the last
    of ``length`` shift-register stages would hold. Reading and writing different addresses
    keeps the memory free of read-during-write rules, so every family's block RAM fits it."""

    def __init__(self, width: int, length: int) -> None:
        if length < 2:
            raise ValueError("a RAM delay needs at least two words")
        self.width = width
        self.length = length
        super().__init__({"d": In(width), "tick": In(1), "q": Out(width)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        # a line buffer this long is block RAM (LINE_RAM_BITS), not LUT RAM: say so to yosys
        m.submodules.mem = mem = Memory(
            shape=unsigned(self.width), depth=self.length, init=[], attrs={"ram_style": "block"}
        )
        wr = mem.write_port()
        rd = mem.read_port()
        ptr = Signal(range(self.length), name="ptr")
        nxt = Mux(ptr == self.length - 1, 0, ptr + 1)
        with m.If(self.tick):
            m.d.sync += ptr.eq(nxt)
        m.d.comb += [
            wr.addr.eq(ptr),
            wr.data.eq(self.d),
            wr.en.eq(self.tick),
            rd.addr.eq(nxt),
            rd.en.eq(self.tick),
            self.q.eq(rd.data),
        ]
        return m
