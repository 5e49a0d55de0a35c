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
        (kh, kw), (sh, sw), (pt, pl, _, _) = g.window.kernel, g.window.stride, g.window.pads
        r_last, c_last = g.last_position

        # ---- input position and flush ticks -------------------------------------------------
        in_pos = Signal(range(h * w), name="in_pos")
        with m.If(self.valid):
            m.d.sync += in_pos.eq(Mux(in_pos == h * w - 1, 0, in_pos + 1))
        owed = Signal(range(g.flush + 1), name="flush_owed")
        tick = Signal(name="tick")
        # idle flush ticks only until the next frame's first pixel: after it, they would shift
        # the delay line between that frame's pixels, so its own pixels finish the flush
        m.d.comb += tick.eq(self.valid | ((owed != 0) & (in_pos == 0)))
        with m.If(self.valid & (in_pos == h * w - 1)):
            m.d.sync += owed.eq(g.flush)
        with m.Elif(tick & (owed != 0)):
            m.d.sync += owed.eq(owed - 1)

        # ---- delay line: pixel and a frame-start marker, shifted on ticks ----------------------
        first = Signal(name="first")
        m.d.comb += first.eq(self.valid & (in_pos == 0))
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

        # ---- position controller: stride-1 position (R, C) of the window read this tick -------
        start = Signal(name="start")
        m.d.comb += start.eq(tick & marks[g.delay])
        active = Signal(name="active")
        rows = Signal(range(r_last + 1), name="R")
        cols = Signal(range(w), name="C")
        rph = Signal(range(sh), name="R_phase")
        cph = Signal(range(sw), name="C_phase")
        cur_r, cur_c, cur_rph, cur_cph = (Mux(start, 0, v) for v in (rows, cols, rph, cph))
        live = Signal(name="live")
        m.d.comb += live.eq(tick & (start | active))
        with m.If(live):
            at_end = (cur_r == r_last) & (cur_c == c_last)
            m.d.sync += active.eq(~at_end)
            with m.If(cur_c == w - 1):
                m.d.sync += [
                    cols.eq(0),
                    cph.eq(0),
                    rows.eq(cur_r + 1),
                    rph.eq(Mux(cur_rph == sh - 1, 0, cur_rph + 1)),
                ]
            with m.Else():
                m.d.sync += [
                    cols.eq(cur_c + 1),
                    cph.eq(Mux(cur_cph == sw - 1, 0, cur_cph + 1)),
                    rows.eq(cur_r),
                    rph.eq(cur_rph),
                ]
        m.d.comb += self.valid_out.eq(live & (cur_rph == 0) & (cur_cph == 0) & (cur_c <= c_last))

        # ---- window taps with padding ----------------------------------------------------------
        fill = Const(self.fill, self.shape)
        elems: list[Value] = []
        for i in range(kh):
            # tap row R - pt + i inside [0, h)
            row_ok = (cur_r + i >= pt) & (cur_r + i < h + pt)
            for j in range(kw):
                col_ok = (cur_c + j >= pl) & (cur_c + j < w + pl)
                src = pixels[g.tap_age(i, j)]
                width = self.shape.width
                for c in range(self.channels):
                    e = Signal(self.shape, name=f"t{i}_{j}_{c}")
                    raw = src[c * width : (c + 1) * width]
                    m.d.comb += e.eq(Mux(row_ok & col_ok, raw, fill))
                    elems.append(e)
        m.d.comb += self.window.as_value().eq(Cat(*elems))
        return m


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
