"""The fixed-point cell of a recurrent layer: one time step as a short program of element-wise
integer operations, and the lowered recurrent layer that runs it (the golden model).

A :class:`CellPlan` is a list of :class:`CellOp` s, each applied to all ``H`` lanes (hidden
units) at once.  Operands name a slice of the gate matrices' outputs (``wx0``, ``rh2``: gate
``k`` of ``wx`` or ``rh``), the state (``h``, ``c``) or an earlier operation.  The kinds:

==========  =================================================================================
``add``     ``(a << sa) + (b << sb)`` (``neg``: minus), exact
``mul``     ``a * b``, exact (a multiplier: the only one per lane and product)
``index``   the activation table's index of ``a``: ``|a|`` shifted right by ``shift`` to the
            table's grid, rounded half up, clamped to its last entry
``lookup``  the table entry at index ``a``, mirrored for a negative ``b`` (the value indexed)
``round``   ``clamp((a + 2**(shift-1)) >> shift, lo, hi)``: round half up and saturate to a
            state's format (``shift <= 0``: an exact left shift, then the clamp)
==========  =================================================================================

:func:`plan_cell` writes the program of an LSTM or GRU from the layer's formats (see
:mod:`nnlcc.ir.recurrent` for the equations); every value carries its exact integer range and
the plan its latency: every operation ends in a register, and a value is ready one clock
after the last of its operands (the cell's inputs are held for the whole step, so nothing needs
delaying).  :mod:`nnlcc.hdl.recurrent` builds exactly these operations and registers;
:meth:`CellPlan.step` executes them on numpy, and :class:`LoweredRecurrent` runs the input
gate matrix, the recurrent one and the cell over whole sequences: the golden model the
hardware is checked against, step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np

from nnlcc.ir.activation import ActivationTable, default_table
from nnlcc.ir.cost import Cost, CostFeatures, estimate
from nnlcc.ir.family import Family
from nnlcc.ir.fixed_point import FixedFormat, IntArray, bits_for_range
from nnlcc.ir.lowered import LoweredLayer

__all__ = ["CellOp", "CellPlan", "LoweredRecurrent", "plan_cell"]

OpKind = Literal["add", "mul", "index", "lookup", "round"]


@dataclass(frozen=True)
class CellOp:
    """One element-wise operation (the module docstring); ``lo``/``hi`` its exact range,
    ``frac`` the fractional bits of its value, ``ready`` the clock its register holds it."""

    name: str
    kind: OpKind
    a: str
    b: str = ""
    sa: int = 0
    sb: int = 0
    neg: bool = False
    table: ActivationTable | None = None
    frac: int = 0
    shift: int = 0
    clamp: tuple[int, int] = (0, 0)
    lo: int = 0
    hi: int = 0
    ready: int = 0

    @property
    def width(self) -> int:
        return bits_for_range(self.lo, self.hi)[0]


_CHAINS = {"add": 1, "mul": 0, "index": 3, "lookup": 1, "round": 3}


def _round(a: IntArray, shift: int) -> IntArray:
    return (a + (1 << (shift - 1))) >> shift if shift > 0 else a << -shift


@dataclass
class CellPlan:
    """The program of one cell step (the module docstring).  ``inputs`` are the ranges and
    fractional bits of the named inputs, ``state`` names the operations whose results become
    the next ``h`` (and ``c``); ``tables`` are the activation tables it reads."""

    cell: str
    hidden: int
    ops: list[CellOp]
    inputs: dict[str, tuple[int, int, int]]  # name -> (lo, hi, frac)
    state: dict[str, str]  # "h" (and "c") -> the operation computing its next value
    tables: list[ActivationTable] = field(default_factory=list)

    @property
    def latency(self) -> int:
        """Clocks from the step's inputs to its new state."""
        by = {op.name: op for op in self.ops}
        return max(by[s].ready for s in self.state.values())

    @property
    def multipliers(self) -> int:
        return sum(op.kind == "mul" for op in self.ops) * self.hidden

    @property
    def adders(self) -> int:
        """Carry chains the cell builds (:meth:`cost` counts the same): an add one, an index
        three (absolute value, rounding, clamp), a lookup one (the mirror), a round three."""
        return sum(_CHAINS[op.kind] for op in self.ops) * self.hidden

    @property
    def max_bits(self) -> int:
        return max(op.width for op in self.ops)

    def step(
        self, wx: IntArray, rh: IntArray, h: IntArray, c: IntArray | None
    ) -> dict[str, IntArray]:
        """Execute one step on a batch: ``wx``, ``rh`` ``(batch, G*H)``, the state ``h``, ``c``
        ``(batch, H)``; returns the new state by name (``h``, ``c``)."""
        hd = self.hidden
        env: dict[str, IntArray] = {"h": h}
        if c is not None:
            env["c"] = c
        for k in range(wx.shape[1] // hd):
            env[f"wx{k}"] = wx[:, k * hd : (k + 1) * hd]
            env[f"rh{k}"] = rh[:, k * hd : (k + 1) * hd]
        for op in self.ops:
            a = env[op.a]
            if op.kind == "add":
                b = env[op.b] << op.sb
                v = (a << op.sa) - b if op.neg else (a << op.sa) + b
            elif op.kind == "mul":
                v = a * env[op.b]
            elif op.kind == "index":
                assert op.table is not None
                v = op.table.index_by_shift(a, op.shift)
            elif op.kind == "lookup":
                assert op.table is not None
                t = op.table
                e = t.entries[a]
                v = np.where(env[op.b] >= 0, e, t.one - e if t.func == "sigmoid" else -e)
            else:
                v = np.clip(_round(a, op.shift), *op.clamp)
            env[op.name] = cast(IntArray, np.asarray(v, dtype=np.int64))
        return {s: env[o] for s, o in self.state.items()}

    def describe(self) -> str:
        """One line per table: the stated activation error."""
        return "; ".join(t.describe() for t in self.tables)

    # ---- cost ----------------------------------------------------------------------------
    def cost(self, family: Family) -> Cost:
        """Estimated LUTs and flip-flops of the cell on ``family``, multipliers aside (they
        are DSP blocks, :attr:`multipliers`): each adder and comparison a carry chain of its
        width, each clamp and sign a multiplexer bit per output bit, each table a ROM of
        ``2**lut_inputs``-entry LUTs per output bit with a 2:1 multiplexer tree above them,
        each operation's register and the state.  A count by this module, not calibrated
        against synthesis (the gate matrices' adder graphs are: :mod:`nnlcc.ir.cost`)."""
        k, g, hd = family.cost, family.chain_granule, self.hidden
        chain_luts = chains = mux = sel = 0
        ffs = 0
        by = {op.name: op for op in self.ops}
        for op in self.ops:
            w = op.width

            def chain(bits: int) -> None:
                nonlocal chain_luts, chains
                chain_luts += -(-bits // g) * g
                chains += 1

            if op.kind == "add":
                chain(w)
            elif op.kind == "index":
                src = by[op.a].width
                chain(src)  # |a|
                chain(src)  # rounding
                chain(src)  # clamp to the last entry
                mux += w
            elif op.kind == "lookup":
                assert op.table is not None
                leaves = -(-op.table.size // (1 << family.lut_inputs))
                out_bits = bits_for_range(*op.table.out_range)[0]
                mux += out_bits * leaves
                sel += out_bits * (leaves - 1)
                chain(w)  # the mirrored value
                mux += w
            elif op.kind == "round":
                chain(w + max(op.shift, 0))
                chain(w + max(op.shift, 0))
                chain(w + max(op.shift, 0))
                mux += w
            ffs += w * hd
        chain_luts, chains, mux, sel = chain_luts * hd, chains * hd, mux * hd, sel * hd
        adder = k.lut_per_chain_lut * chain_luts + k.lut_per_chain * chains
        clamp = k.lut_per_mux_bit * mux + k.lut_per_select_bit * sel
        state = sum(_width(self.inputs[s]) for s in self.state) * hd
        ffs += state + self.latency
        feats = CostFeatures(
            adder_chains=chains,
            adder_chain_bits=chain_luts,
            adder_chain_luts=chain_luts,
            compare_chains=0,
            compare_chain_bits=0,
            compare_chain_luts=0,
            mux_bits=mux,
            srl_luts=0,
            merged_nodes=0,
            pipeline_ffs=ffs - self.latency,
            delay_ffs=0,
            valid_ffs=self.latency,
            ffs_synth=ffs,
            select_mux_bits=sel,
        )
        return Cost(
            family=family,
            luts=round(adder) + round(clamp),
            ffs=ffs,
            adder_luts=round(adder),
            clamp_luts=round(clamp),
            srl_luts=0,
            pipeline_ffs=ffs - self.latency,
            delay_ffs=0,
            valid_ffs=self.latency,
            ffs_synth=ffs,
            features=feats,
        )


def _width(spec: tuple[int, int, int]) -> int:
    return bits_for_range(spec[0], spec[1])[0]


class _Builder:
    """Appends operations with their exact ranges and ready clocks."""

    def __init__(self, inputs: dict[str, tuple[int, int, int]], ready: dict[str, int]) -> None:
        self.ops: list[CellOp] = []
        self.range: dict[str, tuple[int, int]] = {k: (v[0], v[1]) for k, v in inputs.items()}
        self.frac: dict[str, int] = {k: v[2] for k, v in inputs.items()}
        self.ready = dict(ready)

    def _push(self, op: CellOp, lo: int, hi: int, frac: int, reads: tuple[str, ...]) -> str:
        t = max(self.ready[r] for r in reads) + 1
        full = CellOp(**{**op.__dict__, "lo": lo, "hi": hi, "frac": frac, "ready": t})
        self.ops.append(full)
        self.range[op.name] = (lo, hi)
        self.frac[op.name] = frac
        self.ready[op.name] = t
        return op.name

    def add(self, name: str, a: str, b: str, frac: int, neg: bool = False) -> str:
        """``a + b`` (``a - b``), both aligned to ``frac`` fractional bits (exactly)."""
        sa, sb = frac - self.frac[a], frac - self.frac[b]
        assert sa >= 0 and sb >= 0, (name, sa, sb)
        (alo, ahi), (blo, bhi) = self.range[a], self.range[b]
        alo, ahi, blo, bhi = alo << sa, ahi << sa, blo << sb, bhi << sb
        lo, hi = (alo - bhi, ahi - blo) if neg else (alo + blo, ahi + bhi)
        return self._push(CellOp(name, "add", a, b, sa, sb, neg), lo, hi, frac, (a, b))

    def mul(self, name: str, a: str, b: str) -> str:
        (alo, ahi), (blo, bhi) = self.range[a], self.range[b]
        p = (alo * blo, alo * bhi, ahi * blo, ahi * bhi)
        return self._push(
            CellOp(name, "mul", a, b), min(p), max(p), self.frac[a] + self.frac[b], (a, b)
        )

    def act(self, name: str, a: str, table: ActivationTable) -> str:
        """``table`` applied to ``a``: an index, then a lookup (two operations)."""
        lo, hi = self.range[a]
        k_hi = int(table.index(np.array([max(abs(lo), abs(hi))]), self.frac[a])[0])
        shift = table.index_shift(self.frac[a])
        idx = self._push(
            CellOp(f"{name}_k", "index", a, table=table, shift=shift),
            0,
            k_hi,
            0,
            (a,),
        )
        e = table.entries[: k_hi + 1]
        top = int(e.max())
        if table.func == "sigmoid":
            vlo, vhi = (table.one - top if lo < 0 else int(e.min())), top
        else:
            vlo, vhi = (-top if lo < 0 else int(e.min())), top
        return self._push(
            CellOp(name, "lookup", idx, a, table=table), vlo, vhi, table.out_frac, (idx, a)
        )

    def round(self, name: str, a: str, fmt: FixedFormat) -> str:
        """``a`` rounded half up to ``fmt`` and saturated."""
        shift = self.frac[a] - fmt.frac
        lo, hi = self.range[a]
        rlo, rhi = (int(_round(np.array([v]), shift)[0]) for v in (lo, hi))
        clo, chi = max(rlo, fmt.lo), min(rhi, fmt.hi)
        op = CellOp(name, "round", a, shift=shift, clamp=(fmt.lo, fmt.hi))
        return self._push(op, min(clo, chi), max(clo, chi), fmt.frac, (a,))


def plan_cell(
    cell: str,
    hidden: int,
    wx: FixedFormat,
    rh: FixedFormat,
    h: FixedFormat,
    c: FixedFormat | None,
    table_bits: int,
    rh_ready: int = 0,
) -> CellPlan:
    """The program of an LSTM or GRU step (equations in :mod:`nnlcc.ir.recurrent`): ``wx``,
    ``rh`` are the gate matrices' output formats, ``h`` and ``c`` the state's, ``table_bits``
    the activation tables' size; ``rh_ready`` the clock ``rh`` is ready (the recurrent gate
    matrix's latency)."""
    sig, tanh = default_table("sigmoid", table_bits), default_table("tanh", table_bits)
    gates = 4 if cell == "lstm" else 3
    inputs: dict[str, tuple[int, int, int]] = {"h": (h.lo, h.hi, h.frac)}
    ready = {"h": 0}
    if cell == "lstm":
        assert c is not None
        inputs["c"] = (c.lo, c.hi, c.frac)
        ready["c"] = 0
    for k in range(gates):
        inputs[f"wx{k}"] = (wx.lo, wx.hi, wx.frac)
        inputs[f"rh{k}"] = (rh.lo, rh.hi, rh.frac)
        ready[f"wx{k}"] = 0
        ready[f"rh{k}"] = rh_ready
    b = _Builder(inputs, ready)
    fp = max(wx.frac, rh.frac)
    if cell == "lstm":
        assert c is not None
        pre = [b.add(f"pre{k}", f"wx{k}", f"rh{k}", fp) for k in range(4)]
        i, o, f = (b.act(n, p, sig) for n, p in zip(("i", "o", "f"), pre, strict=False))
        g = b.act("g", pre[3], tanh)
        fc = b.mul("fc", f, "c")
        ig = b.mul("ig", i, g)
        s = b.add("cs", fc, ig, max(b.frac[fc], b.frac[ig]))
        c_new = b.round("c_new", s, c)
        tc = b.act("tc", c_new, tanh)
        oh = b.mul("otc", o, tc)
        h_new = b.round("h_new", oh, h)
        state = {"h": h_new, "c": c_new}
    else:
        z, r = (
            b.act(n, b.add(f"pre{k}", f"wx{k}", f"rh{k}", fp), sig)
            for k, n in enumerate(("z", "r"))
        )
        p = b.mul("rrh", r, "rh2")
        npre = b.add("npre", "wx2", p, max(wx.frac, b.frac[p]))
        n = b.act("n", npre, tanh)
        fm = max(h.frac, b.frac[n])
        d = b.add("d", "h", n, fm, neg=True)
        q = b.mul("zd", z, d)
        s = b.add("hs", n, q, b.frac[q])
        state = {"h": b.round("h_new", s, h)}
    return CellPlan(cell, hidden, b.ops, inputs, state, [sig, tanh])


@dataclass
class LoweredRecurrent(LoweredLayer):
    """A recurrent layer lowered: ``w`` (the input gate matrix's adder graph, one call per
    step), ``graph`` (the recurrent gate matrix's, on the hidden state), ``plan`` (the cell)
    over ``steps`` steps; the output is the last hidden state."""

    w: LoweredLayer | None = None
    plan: CellPlan | None = None
    steps: int = 1
    r_name: str = ""
    r: LoweredLayer | None = None  # the recurrent gate matrix alone (its graph is ``graph``)

    @property
    def hidden(self) -> int:
        assert self.plan is not None
        return self.plan.hidden

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.hidden,)

    @property
    def step_latency(self) -> int:
        """Clocks of one time step in the recurrence: ``h -> R h -> cell -> h``."""
        assert self.plan is not None
        return self.plan.latency

    def run(self, x: IntArray) -> tuple[IntArray, IntArray, IntArray]:
        """Every step of every sequence of ``x`` (stored ``(batch, T, I)`` integers): the
        inputs' ``wx`` ``(batch, T, G*H)``, and the states ``h``, ``c`` ``(batch, T, H)`` after
        each step (``c`` zeros for a GRU)."""
        assert self.w is not None and self.plan is not None
        xa = np.asarray(x, dtype=np.int64)
        b = len(xa)
        xa = xa.reshape(b, self.steps, -1)
        wx = self.w.graph.evaluate(xa.reshape(b * self.steps, -1)).reshape(b, self.steps, -1)
        hd = self.hidden
        h: IntArray = np.zeros((b, hd), dtype=np.int64)
        c: IntArray | None = np.zeros((b, hd), dtype=np.int64) if self.plan.cell == "lstm" else None
        hs, cs = [], []
        for t in range(self.steps):
            rh = self.graph.evaluate(h)
            new = self.plan.step(wx[:, t], rh, h, c)
            h, c = new["h"], new.get("c")
            hs.append(h)
            cs.append(c if c is not None else np.zeros_like(h))
        return wx, cast(IntArray, np.stack(hs, 1)), cast(IntArray, np.stack(cs, 1))

    def evaluate(self, *xs: IntArray) -> IntArray:
        return self.run(xs[0])[1][:, -1]

    def costs(self, family: Family) -> dict[str, Cost]:
        """The estimate of each part: the two gate matrices' adder graphs (by their names) and
        the cell (by the layer's)."""
        assert self.w is not None and self.plan is not None
        return {
            self.w.name: estimate(self.w.graph, family),
            self.r_name: estimate(self.graph, family),
            self.name: self.plan.cost(family),
        }
