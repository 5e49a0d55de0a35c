"""An :class:`~nnlcc.ir.adder_graph.AdderGraph` as a pipelined Amaranth component.

The component copies the graph: one adder per ADD node, one comparator pair per CLAMP, one
comparator and a multiplexer per MAX/MIN, wiring for SHR and constants for CONST. Registers sit
exactly where :meth:`AdderGraph.schedule` puts them (by default after every ADD, CLAMP, MAX and
MIN; ``schedule{every=k}`` leaves some combinational) and every width comes from the node's
exact range, so the
hardware cannot drift from the golden model :meth:`AdderGraph.evaluate`.

Timing model: the pipeline always advances (one vector per clock, no enable, no backpressure).
A vector presented on ``x`` with ``valid_in`` high appears on ``y`` with ``valid_out`` high
``latency`` clocks later. Streams that need to stall must buffer around the pipeline; keeping
the datapath free of enables keeps it as small and as fast as the adders allow.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.wiring import In, Out

from nnlcc.ir.adder_graph import AdderGraph, Op
from nnlcc.ir.fixed_point import bits_for_range

__all__ = [
    "KEEP",
    "KEEP_COPIES",
    "AdderGraphPipeline",
    "bound_bits",
    "range_shape",
    "shape_covering",
]

KEEP = {"keep": 1}
"""The attribute of the copies of a duplicated register (:mod:`nnlcc.ir.fanout`): synthesis
must keep each copy, which drives its own group of readers, rather than merge equal registers.
On a register's signal it reaches yosys as a wire attribute; :data:`KEEP_COPIES` moves it to
the flip-flop cells."""

KEEP_COPIES = "setattr -set keep 1 a:keep %ci1:+$dff[Q] t:$dff %i"
"""The yosys command (after reading the design and ``proc``, before synthesis) that keeps the
flip-flops driving wires marked :data:`KEEP`: yosys's ``opt_merge`` honours ``keep`` on cells
only, and a Verilog ``reg``'s attribute stays on the wire."""


def bound_bits(bound: int, above: bool) -> int | None:
    """The bit from which a clamp's comparison with ``bound`` is a test of high bits only
    (no carry chain): ``x > 2**j - 1`` is "non-negative and some bit from ``j`` up set",
    ``x < -2**j`` is "negative and not all bits from ``j`` up set", ``x < 0`` the sign bit
    (``j`` is then returned as -1). None: a general comparison is needed. Requantization
    clamps to a fixed-point format's limits, which are all of this form."""
    if above:
        j = (bound + 1).bit_length() - 1
        return j if bound >= 0 and bound + 1 == 1 << j else None
    if bound == 0:
        return -1
    j = (-bound).bit_length() - 1
    return j if bound < 0 and -bound == 1 << j else None


def range_shape(lo: int, hi: int) -> Shape:
    """The narrowest Amaranth shape holding every integer of ``[lo, hi]``."""
    width, is_signed = bits_for_range(lo, hi)
    return signed(width) if is_signed else unsigned(width)


def shape_covering(ranges: list[tuple[int, int]]) -> Shape:
    """One element shape for a packed port carrying values of all ``ranges``.

    Ports are flat buses of equal-width elements (element ``i`` at bits ``[i*w, (i+1)*w)``), so
    the element shape must hold the union of the ranges.
    """
    if not ranges:
        return unsigned(1)
    return range_shape(min(lo for lo, _ in ranges), max(hi for _, hi in ranges))


def _shape_holds(shape: Shape, lo: int, hi: int) -> bool:
    if shape.signed:
        return -(1 << (shape.width - 1)) <= lo and hi < (1 << (shape.width - 1))
    return lo >= 0 and hi < (1 << shape.width)


class AdderGraphPipeline(wiring.Component):
    """Pipelined hardware for one adder graph.

    Ports (besides the implicit ``clk``/``rst`` of the ``sync`` domain):

    * ``x``: ``In(ArrayLayout(x_shape, n_inputs))``, input ``i`` is element ``i``;
    * ``valid_in``: marks ``x`` as carrying a vector this clock;
    * ``y``: ``Out(ArrayLayout(y_shape, n_outputs))``, output ``j`` is element ``j``;
    * ``valid_out``: ``valid_in`` delayed by :attr:`latency` clocks.

    ``x_shape``/``y_shape`` default to the narrowest shape covering the input/output node
    ranges; a caller that needs a fixed interface width (a network top using its fixed-point
    formats) may pass a wider one. Narrower shapes are refused: they would lose values.
    """

    def __init__(
        self,
        graph: AdderGraph,
        *,
        x_shape: Shape | None = None,
        y_shape: Shape | None = None,
    ) -> None:
        self.graph = graph
        self.stages = list(graph.schedule())
        self.latency = graph.latency
        in_ranges = [(n.lo, n.hi) for n in graph.nodes if n.op is Op.INPUT]
        out_ranges = [(graph.nodes[o].lo, graph.nodes[o].hi) for o in graph.outputs]
        self.x_shape = Shape.cast(x_shape) if x_shape is not None else shape_covering(in_ranges)
        self.y_shape = Shape.cast(y_shape) if y_shape is not None else shape_covering(out_ranges)
        for what, shape, ranges in (
            ("x", self.x_shape, in_ranges),
            ("y", self.y_shape, out_ranges),
        ):
            for lo, hi in ranges:
                if not _shape_holds(shape, lo, hi):
                    raise ValueError(f"port {what} shape {shape} cannot hold range [{lo}, {hi}]")
        super().__init__(
            {
                "x": In(ArrayLayout(self.x_shape, max(graph.n_inputs, 1))),
                "valid_in": In(1),
                "y": Out(ArrayLayout(self.y_shape, max(len(graph.outputs), 1))),
                "valid_out": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        g = self.graph
        st = self.stages
        rd = g.reads
        cp = g.copies
        # value of node k as seen at pipeline stage t in register copy c; (k, stage[k], 0) is
        # the node itself
        at: dict[tuple[int, int, int], Value] = {}

        def node_shape(k: int) -> Shape:
            n = g.nodes[k]
            return range_shape(n.lo, n.hi)

        def register(k: int, t: int, c: int) -> Signal:
            """Copy ``c`` of node ``k``'s register at stage ``t``; the copies of a duplicated
            register carry ``keep`` (a synthesizer would merge them back otherwise)."""
            name = f"v{k}" if t == st[k] else f"v{k}_s{t}"
            return Signal(
                node_shape(k),
                name=f"{name}_c{c}" if c else name,
                reset_less=True,
                attrs=KEEP if cp.kept(k, t) else {},
            )

        def value_at(k: int, t: int, c: int = 0) -> Value:
            """Node ``k`` delayed to stage ``t``, copy ``c``; each delayed copy is made once
            and shared by the readers the schedule gives it (:attr:`AdderGraph.copies`)."""
            n = g.nodes[k]
            if n.op is Op.CONST:
                return Const(n.c0, node_shape(k))
            if t < st[k]:
                raise AssertionError(f"v{k} (stage {st[k]}) read at earlier stage {t}")
            key = (k, t, c)
            if key not in at:
                if t == st[k]:  # a copy of an SHR's root register: the same wiring on it
                    assert n.op is Op.SHR, f"v{k}: copy {c} of a wire"
                    at[key] = shifted(k, value_at(n.a, t, c), f"v{k}_c{c}")
                    return at[key]
                prev = value_at(k, t - 1, cp.tap.get(key, 0))
                reg = register(k, t, c)
                m.d.sync += reg.eq(prev)
                at[key] = reg
            return at[key]

        def shifted(k: int, a: Value, name: str) -> Signal:
            n = g.nodes[k]
            # ``>>`` on a signed value is arithmetic: floor division, as in the golden model
            sig = Signal(node_shape(k), name=name)
            m.d.comb += sig.eq(a >> n.sa if n.sa >= 0 else a << -n.sa)
            return sig

        def operand(k: int, slot: int) -> Value:
            n = g.nodes[k]
            return value_at(n.b if slot else n.a, rd[k], cp.operand.get((k, slot), 0))

        def drive(k: int, value: Value) -> None:
            """Node ``k``: its register (one per copy) or, unregistered, a wire."""
            s = st[k]
            if not g.registered(k):
                sig = Signal(node_shape(k), name=f"v{k}", reset_less=True)
                m.d.comb += sig.eq(value)
                at[(k, s, 0)] = sig
                return
            copies = cp.count(k, s)
            if copies > 1:  # one adder, its sum registered once per copy
                comb = Signal(node_shape(k), name=f"v{k}_sum")
                m.d.comb += comb.eq(value)
                value = comb
            for c in range(copies):
                reg = register(k, s, c)
                m.d.sync += reg.eq(value)
                at[(k, s, c)] = reg

        for k, n in enumerate(g.nodes):
            s = st[k]
            if n.op is Op.INPUT:
                sig = Signal(node_shape(k), name=f"v{k}")
                m.d.comb += sig.eq(self.x[n.a])
                at[(k, s, 0)] = sig
            elif n.op is Op.CONST:
                continue
            elif n.op is Op.ADD:
                # Amaranth arithmetic is value-exact (results widen), so the sum is computed
                # without overflow and then truncated to the node width, which holds it exactly.
                a = operand(k, 0) << n.sa
                b = operand(k, 1) << n.sb
                drive(k, a - b if n.nb else a + b)
            elif n.op in (Op.MAX, Op.MIN):
                # Amaranth compares signed and unsigned operands by value (both widened)
                a = operand(k, 0)
                b = operand(k, 1)
                pick_a = a > b if n.op is Op.MAX else a < b
                drive(k, Mux(pick_a, a, b))
            elif n.op is Op.SHR:
                at[(k, s, 0)] = shifted(k, value_at(n.a, s), f"v{k}")
            else:  # CLAMP
                src = g.nodes[n.a]
                a = operand(k, 0)
                v: Value = a
                # a bound the operand can never cross needs no comparator; a format limit
                # is a test of the high bits (bound_bits)
                w = len(a)
                sa = a.shape().signed
                if src.hi > n.c1:
                    j = bound_bits(n.c1, above=True)
                    if j is None:
                        over: Value = a > n.c1
                    elif sa:
                        over = ~a[w - 1] & a[j : w - 1].any()
                    else:
                        over = a[j:w].any()
                    v = Mux(over, n.c1, v)
                if src.lo < n.c0:
                    j = bound_bits(n.c0, above=False)
                    if j is None or not sa:
                        under: Value = a < n.c0
                    elif j < 0:
                        under = a[w - 1]
                    else:
                        under = a[w - 1] & ~a[j : w - 1].all()
                    v = Mux(under, n.c0, v)
                drive(k, v)

        # y is driven by one concatenation rather than one part-select per output: Icarus
        # re-evaluates the whole bus for every driver, quadratic in the number of outputs.
        outs = []
        for j, o in enumerate(g.outputs):
            out = Signal(self.y_shape, name=f"y{j}")
            # sign/zero-extends to the port
            m.d.comb += out.eq(value_at(o, self.latency, cp.output.get(j, 0)))
            outs.append(out)
        if outs:
            m.d.comb += self.y.as_value().eq(Cat(*outs))

        valid: Value = self.valid_in
        for t in range(1, self.latency + 1):
            reg = Signal(name=f"valid_s{t}")
            m.d.sync += reg.eq(valid)
            valid = reg
        m.d.comb += self.valid_out.eq(valid)
        return m
