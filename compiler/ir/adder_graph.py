"""The adder graph: an executable SSA program of shifts, additions, constants and clamps.

One structure, four uses: it executes on numpy (this execution *is* the bit-exact golden
model), prints and re-parses as text, counts its cost, and is what :mod:`nnlcc.hdl` turns into
registers and adders without taking any decision of its own.

Operations (``v<k>`` is the value of node ``k``; all shifts ``s`` are left shifts, ``s >= 0``)::

    input i              x[i], range given by the input format
    const c              the integer c
    add  ±va<<sa, ±vb<<sb   an adder (not both negative); with a const operand a "constant adder"
    shr  va, k           floor(va / 2**k) for k >= 0, va << -k for k < 0 (wiring only)
    clamp va, lo, hi     saturation to [lo, hi]
    max  va, vb          the larger of two values (a comparator and a multiplexer)
    min  va, vb          the smaller of two values

Every node carries its exact integer range ``[lo, hi]`` (interval arithmetic from the inputs),
from which hardware widths follow, and a register ``stage`` fixed by :func:`AdderGraph.schedule`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
import numpy.typing as npt

from nnlcc.ir.fanout import RegisterCopies, plan_copies
from nnlcc.ir.fixed_point import IntArray, bits_for_range
from nnlcc.ir.ops import SELECT_OPS, Node, Op
from nnlcc.ir.timing import StageBudget

__all__ = ["SELECT_OPS", "AdderGraph", "Node", "Op"]


@dataclass
class AdderGraph:
    """A flat SSA list of :class:`Node`; ``outputs`` are node ids."""

    n_inputs: int
    nodes: list[Node] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    stages: list[int] = field(default_factory=list)
    #: where registers go (:meth:`schedule`); set it with :meth:`set_stage_budget`
    stage_budget: StageBudget = field(default_factory=StageBudget)
    #: the stage at which each node reads its operands (filled by :meth:`schedule`)
    reads: list[int] = field(default_factory=list)
    _chain: list[float] = field(default_factory=list, repr=False, compare=False)
    _arrive: list[float] = field(default_factory=list, repr=False, compare=False)
    _copies: RegisterCopies | None = field(default=None, repr=False, compare=False)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def with_inputs(cls, ranges: Sequence[tuple[int, int]]) -> AdderGraph:
        g = cls(n_inputs=len(ranges))
        for i, (lo, hi) in enumerate(ranges):
            g.nodes.append(Node(Op.INPUT, a=i, lo=lo, hi=hi))
        return g

    def _push(self, node: Node) -> int:
        self.nodes.append(node)
        self.stages.clear()
        return len(self.nodes) - 1

    def const(self, value: int) -> int:
        return self._push(Node(Op.CONST, c0=value, lo=value, hi=value))

    def add(
        self, a: int, b: int, sa: int = 0, sb: int = 0, na: bool = False, nb: bool = False
    ) -> int:
        """``±(a << sa) ± (b << sb)``; a doubly negated sum is rejected (it needs two adders)."""
        if sa < 0 or sb < 0:
            raise ValueError("add shifts must be non-negative; align operands with shr first")
        if na and nb:
            raise ValueError("add with both operands negated")
        if na:  # keep the subtrahend in b so hardware sees a plain subtraction
            a, b, sa, sb, na, nb = b, a, sb, sa, False, True
        x, y = self.nodes[a], self.nodes[b]
        alo, ahi = x.lo << sa, x.hi << sa
        blo, bhi = (-(y.hi << sb), -(y.lo << sb)) if nb else (y.lo << sb, y.hi << sb)
        return self._push(Node(Op.ADD, a=a, b=b, sa=sa, sb=sb, nb=nb, lo=alo + blo, hi=ahi + bhi))

    def shr(self, a: int, k: int) -> int:
        x = self.nodes[a]
        lo, hi = (x.lo >> k, x.hi >> k) if k >= 0 else (x.lo << -k, x.hi << -k)
        return self._push(Node(Op.SHR, a=a, sa=k, lo=lo, hi=hi))

    def clamp(self, a: int, lo: int, hi: int) -> int:
        x = self.nodes[a]
        if lo > hi:
            raise ValueError("clamp with lo > hi")
        nlo, nhi = min(max(x.lo, lo), hi), max(min(x.hi, hi), lo)
        return self._push(Node(Op.CLAMP, a=a, c0=lo, c1=hi, lo=nlo, hi=nhi))

    def max(self, a: int, b: int) -> int:
        """``max(va, vb)``: exact, its range ``[max(lo), max(hi)]``."""
        x, y = self.nodes[a], self.nodes[b]
        return self._push(Node(Op.MAX, a=a, b=b, lo=max(x.lo, y.lo), hi=max(x.hi, y.hi)))

    def min(self, a: int, b: int) -> int:
        """``min(va, vb)``: exact, its range ``[min(lo), min(hi)]``."""
        x, y = self.nodes[a], self.nodes[b]
        return self._push(Node(Op.MIN, a=a, b=b, lo=min(x.lo, y.lo), hi=min(x.hi, y.hi)))

    # ---- cost ---------------------------------------------------------------------------
    def is_const_add(self, n: Node) -> bool:
        return n.op is Op.ADD and (self.nodes[n.a].op is Op.CONST or self.nodes[n.b].op is Op.CONST)

    @property
    def adders(self) -> int:
        """Additions/subtractions between two variables: the cost every report counts."""
        return sum(1 for n in self.nodes if n.op is Op.ADD and not self.is_const_add(n))

    @property
    def comparators(self) -> int:
        """MAX and MIN nodes: one comparator and one multiplexer each (not adders)."""
        return sum(1 for n in self.nodes if n.op in SELECT_OPS)

    @property
    def const_adders(self) -> int:
        """Bias/rounding additions of a constant (requantization), counted apart."""
        return sum(1 for n in self.nodes if self.is_const_add(n))

    def adder_depths(self) -> list[int]:
        """Number of variable adders on the longest path into each node."""
        d = [0] * len(self.nodes)
        for i, n in enumerate(self.nodes):
            if n.op is Op.ADD:
                d[i] = max(d[n.a], d[n.b]) + (0 if self.is_const_add(n) else 1)
            elif n.op in (Op.SHR, Op.CLAMP):
                d[i] = d[n.a]
            elif n.op in SELECT_OPS:
                d[i] = max(d[n.a], d[n.b])
        return d

    @property
    def depth(self) -> int:
        d = self.adder_depths()
        return max((d[o] for o in self.outputs), default=0)

    def width(self, node_id: int) -> int:
        n = self.nodes[node_id]
        return bits_for_range(n.lo, n.hi)[0]

    @property
    def adder_bits(self) -> int:
        """Sum of the output widths of all adders (a proxy for LUTs)."""
        return sum(self.width(i) for i, n in enumerate(self.nodes) if n.op is Op.ADD)

    @property
    def max_bits(self) -> int:
        return max((self.width(i) for i in range(len(self.nodes))), default=0)

    # ---- register schedule ----------------------------------------------------------------
    def set_stage_budget(self, budget: StageBudget) -> None:
        self.stage_budget = budget
        self.stages = []

    def schedule(self) -> list[int]:
        """Pipeline stage of every node: the clock (counted from the input) in which its value
        is available. INPUT is stage 0, CONST needs no stage, SHR is wiring (its operand's
        stage). An ADD, CLAMP, MAX or MIN reads its operands at stage :attr:`reads` ``[i]`` and is
        either combinational (same stage) or registered (one stage later), as
        :attr:`stage_budget` decides; an operand read later than its own stage is a delayed
        (registered) copy. The default, a register after every ADD and CLAMP, gives
        ``stage = max(operand stages) + 1``."""
        if len(self.stages) == len(self.nodes):
            return self.stages
        p = self.stage_budget
        n_nodes = len(self.nodes)
        st = [0] * n_nodes
        rd = [0] * n_nodes
        # combinational cost since the last register, of the node's value at its own stage
        chain = [0.0] * n_nodes
        arrive = [0.0] * n_nodes  # cost of the path ending at the node (ADD/CLAMP)
        for i, n in enumerate(self.nodes):
            if n.op is Op.SHR:
                st[i], rd[i], chain[i] = st[n.a], st[n.a], chain[n.a]
                continue
            if n.op not in (Op.ADD, Op.CLAMP) and n.op not in SELECT_OPS:
                continue
            both = (n.a,) if n.op is Op.CLAMP else (n.a, n.b)
            ops = [o for o in both if self.nodes[o].op is not Op.CONST]
            t = max((st[o] for o in ops), default=0)
            before = max((chain[o] for o in ops if st[o] == t), default=0.0)
            cost = p.cost(bits_for_range(n.lo, n.hi)[0])
            if before > 0 and before + cost > p.budget:
                t, before = t + 1, 0.0  # too slow behind its operands: read registered copies
            rd[i] = t
            d = arrive[i] = before + cost
            if d + cost > p.budget:  # another node like this one would not fit: register
                st[i], chain[i] = t + 1, 0.0
            else:
                st[i], chain[i] = t, d
        self.stages, self.reads, self._chain, self._arrive = st, rd, chain, arrive
        self._copies = None
        return st

    @property
    def copies(self) -> RegisterCopies:
        """The registers duplicated to bound their fanout (:attr:`stage_budget`'s
        ``fanout``), and which copy every reader reads (:mod:`nnlcc.ir.fanout`)."""
        self.schedule()
        if self._copies is None:
            self._copies = plan_copies(self, self.stage_budget.fanout)
        return self._copies

    def registered(self, node_id: int) -> bool:
        """Whether the node ends in a register (ADD and CLAMP nodes the schedule registers)."""
        n = self.nodes[node_id]
        st = self.schedule()
        registers = n.op in (Op.ADD, Op.CLAMP) or n.op in SELECT_OPS
        return registers and st[node_id] > self.reads[node_id]

    @property
    def latency(self) -> int:
        """Clocks from input to output; every output leaves from a register (a combinational
        output node is read one stage later, through a delayed copy)."""
        st = self.schedule()
        return max((st[o] + (self._chain[o] > 0) for o in self.outputs), default=0)

    def delays(self) -> list[int]:
        """Delayed copies each node needs: the latest stage it is read at minus its stage
        (the length of its shift register; CONST nodes need none)."""
        st = self.schedule()
        need = list(st)
        for i, n in enumerate(self.nodes):
            if n.op is Op.ADD or n.op in SELECT_OPS:
                need[n.a] = max(need[n.a], self.reads[i])
                need[n.b] = max(need[n.b], self.reads[i])
            elif n.op in (Op.CLAMP, Op.SHR):
                need[n.a] = max(need[n.a], self.reads[i])
        lat = self.latency
        for o in self.outputs:
            need[o] = max(need[o], lat)
        return [0 if n.op is Op.CONST else need[i] - st[i] for i, n in enumerate(self.nodes)]

    @property
    def register_bits(self) -> int:
        """Flip-flops of the pipeline: registered nodes, delayed copies, the copies made to
        bound fanout (:attr:`copies`), the valid chain."""
        delays = self.delays()
        bits = sum(
            self.width(i) * (int(self.registered(i)) + delays[i]) for i in range(len(self.nodes))
        )
        extra = sum(self.width(k) * n for k, _, n in self.copies.extra_registers)
        return bits + extra + self.latency

    def path_cost(self) -> float:
        """The costliest combinational path between two registers, in :attr:`stage_budget`'s
        units (levels for ``every=k``, ns for a family's delay model)."""
        self.schedule()
        return max(self._arrive, default=0.0)

    # ---- execution (the golden model) -----------------------------------------------------
    def _dtype(self) -> type:
        big = max((max(abs(n.lo), abs(n.hi)) for n in self.nodes), default=0)
        # shifted operands of an add may exceed the node range transiently only within it
        return np.int64 if big < (1 << 61) else object

    def evaluate(self, x: npt.ArrayLike, nodes: Sequence[int] | None = None) -> IntArray:
        """Run the graph on integer inputs of shape (batch, n_inputs); returns (batch, n_out),
        or the values of ``nodes`` instead of the outputs."""
        xa = np.asarray(x)
        if xa.ndim != 2 or xa.shape[1] != self.n_inputs:
            raise ValueError(f"expected inputs of shape (batch, {self.n_inputs}), got {xa.shape}")
        dt = self._dtype()
        xa = xa.astype(dt)
        vals: list[IntArray] = []
        for n in self.nodes:
            if n.op is Op.INPUT:
                v = xa[:, n.a]
                if np.any(v < n.lo) or np.any(v > n.hi):
                    raise ValueError(f"input {n.a} outside its declared range [{n.lo}, {n.hi}]")
            elif n.op is Op.CONST:
                v = np.full(xa.shape[0], n.c0, dtype=dt)
            elif n.op is Op.ADD:
                a = vals[n.a] << n.sa
                b = vals[n.b] << n.sb
                v = a - b if n.nb else a + b
            elif n.op is Op.SHR:
                v = vals[n.a] >> n.sa if n.sa >= 0 else vals[n.a] << -n.sa
            elif n.op is Op.MAX:
                v = np.maximum(vals[n.a], vals[n.b])
            elif n.op is Op.MIN:
                v = np.minimum(vals[n.a], vals[n.b])
            else:
                v = np.clip(vals[n.a], n.c0, n.c1)
            vals.append(v)
        picked = self.outputs if nodes is None else nodes
        if not picked:
            return np.zeros((xa.shape[0], 0), dtype=dt)
        out = cast(IntArray, np.stack([vals[o] for o in picked], axis=1))
        return out

    def check_ranges(self, x: npt.ArrayLike) -> None:
        """Assert every value stays in its declared range on inputs ``x`` (a self-check)."""
        saved = self.outputs
        self.outputs = list(range(len(self.nodes)))
        try:
            v = self.evaluate(x)
        finally:
            self.outputs = saved
        lo = np.array([n.lo for n in self.nodes], dtype=object)
        hi = np.array([n.hi for n in self.nodes], dtype=object)
        bad = np.nonzero(np.any((v < lo) | (v > hi), axis=0))[0]
        if bad.size:
            raise AssertionError(f"values outside declared ranges at nodes {bad[:10].tolist()}")

    # ---- text form ----------------------------------------------------------------------
    def to_text(self) -> str:
        lines = [f"adder_graph inputs={self.n_inputs}"]
        for i, n in enumerate(self.nodes):
            rng = f"[{n.lo}, {n.hi}]"
            if n.op is Op.INPUT:
                body = f"input {n.a}"
            elif n.op is Op.CONST:
                body = f"const {n.c0}"
            elif n.op is Op.ADD:
                body = f"add v{n.a}<<{n.sa}, {'-' if n.nb else '+'}v{n.b}<<{n.sb}"
            elif n.op is Op.SHR:
                body = f"shr v{n.a}, {n.sa}"
            elif n.op in SELECT_OPS:
                body = f"{n.op.value} v{n.a}, v{n.b}"
            else:
                body = f"clamp v{n.a}, {n.c0}, {n.c1}"
            lines.append(f"v{i} = {body}  {rng}")
        lines.append("outputs " + " ".join(f"v{o}" for o in self.outputs))
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> AdderGraph:
        """Parse :meth:`to_text` output; ranges are recomputed and must match the text."""
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        m = re.fullmatch(r"adder_graph inputs=(\d+)", lines[0])
        if not m:
            raise ValueError("not an adder graph text")
        g = cls(n_inputs=int(m.group(1)))
        node_re = re.compile(r"v(\d+) = (\w+) (.*?)  \[(-?\d+), (-?\d+)\]")
        for ln in lines[1:-1]:
            nm = node_re.fullmatch(ln)
            if not nm:
                raise ValueError(f"bad adder graph line: {ln}")
            op, args, lo, hi = nm.group(2), nm.group(3), int(nm.group(4)), int(nm.group(5))
            if op == "input":
                g.nodes.append(Node(Op.INPUT, a=int(args), lo=lo, hi=hi))
                continue
            if op == "const":
                nid = g.const(int(args))
            elif op == "add":
                am = re.fullmatch(r"v(\d+)<<(\d+), ([+-])v(\d+)<<(\d+)", args)
                if not am:
                    raise ValueError(f"bad add: {ln}")
                nid = g.add(int(am[1]), int(am[4]), int(am[2]), int(am[5]), nb=am[3] == "-")
            elif op == "shr":
                a, k = args.split(", ")
                nid = g.shr(int(a[1:]), int(k))
            elif op == "clamp":
                a, clo, chi = args.split(", ")
                nid = g.clamp(int(a[1:]), int(clo), int(chi))
            elif op in ("max", "min"):
                sm = re.fullmatch(r"v(\d+), v(\d+)", args)
                if not sm:
                    raise ValueError(f"bad {op}: {ln}")
                nid = (g.max if op == "max" else g.min)(int(sm[1]), int(sm[2]))
            else:
                raise ValueError(f"unknown op {op}")
            if (g.nodes[nid].lo, g.nodes[nid].hi) != (lo, hi):
                raise ValueError(f"range of v{nid} does not match its operands: {ln}")
        tail = lines[-1].split()
        if tail[0] != "outputs":
            raise ValueError("adder graph text must end with an outputs line")
        g.outputs = [int(t[1:]) for t in tail[1:]]
        return g

    def copy(self) -> AdderGraph:
        return replace(
            self,
            nodes=list(self.nodes),
            outputs=list(self.outputs),
            stages=[],
            reads=[],
            _copies=None,
        )
