"""Max pooling of a window vector: per channel, the largest of the ``taps`` window pixels.

Max pooling is the one streaming operation that is a comparison, not an addition, so it is not
an adder graph; it is exact in any format (no rounding), which keeps it equal to the golden
model's ``max`` over the same window vector. The comparisons form a balanced tree with a
register after every level (``ceil(log2(taps))`` clocks, at least one), like the adder trees.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.wiring import In, Out

__all__ = ["MaxPoolUnit"]


class MaxPoolUnit(wiring.Component):
    """``window`` (``taps * channels`` elements, tap-major, channel-fastest) in, ``y``
    (``channels`` elements) out, ``latency`` clocks later with ``valid_out``."""

    def __init__(self, taps: int, channels: int, shape: Shape) -> None:
        self.taps = taps
        self.channels = channels
        self.shape = Shape.cast(shape)
        self.latency = max(1, (taps - 1).bit_length())
        super().__init__(
            {
                "window": In(ArrayLayout(self.shape, taps * channels)),
                "valid_in": In(1),
                "y": Out(ArrayLayout(self.shape, channels)),
                "valid_out": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        outs: list[Value] = []
        for c in range(self.channels):
            level: list[Value] = [self.window[t * self.channels + c] for t in range(self.taps)]
            for depth in range(self.latency):
                nxt: list[Value] = []
                for k in range(0, len(level), 2):
                    reg = Signal(self.shape, name=f"c{c}_l{depth}_{k // 2}", reset_less=True)
                    if k + 1 < len(level):
                        a, b = level[k], level[k + 1]
                        m.d.sync += reg.eq(Mux(a > b, a, b))
                    else:
                        m.d.sync += reg.eq(level[k])
                    nxt.append(reg)
                level = nxt
            assert len(level) == 1
            outs.append(level[0])
        m.d.comb += self.y.as_value().eq(Cat(*outs))
        valid: Value = self.valid_in
        for t in range(self.latency):
            reg = Signal(name=f"valid_s{t + 1}")
            m.d.sync += reg.eq(valid)
            valid = reg
        m.d.comb += self.valid_out.eq(valid)
        return m
