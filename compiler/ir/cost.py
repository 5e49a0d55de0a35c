"""A LUT and flip-flop cost model of an :class:`~nnlcc.ir.adder_graph.AdderGraph`, per FPGA family.

Pure and fast (numpy over the nodes, no tool runs): it counts what :mod:`nnlcc.hdl` emits for
the graph (both writers make the same hardware) and what a synthesizer keeps of it.

* **ADD**: one carry chain over the result bits that need one.  Below the first bit where
  both operands may be non-zero a sum is a wire: bits under ``min`` of the operands' zero
  low bits (shift plus the bits known zero) are constant 0, the next ones up to the other
  operand's first bit pass through from the less shifted operand.  A subtraction whose
  subtrahend is the less shifted operand negates it from its first bit (chain from there).
  Bits no consumer reads above the chain are cut (a synthesizer drops them); unread low bits
  still carry into the read ones, so they stay in the chain.
* **CLAMP**: a comparator chain (as wide as the signed comparison the writers emit) for each
  bound the operand can cross, except a bound of 0 below, which is a sign test; and one
  multiplexer bit per output bit when any bound is active.
* **MAX**, **MIN**: one comparator chain over the bits that tell the operands apart (their
  common range; no sign bit when both are non-negative, which synthesis drops) and one 2:1
  multiplexer bit per live output bit (:attr:`CostFeatures.select_mux_bits`, at
  :attr:`~nnlcc.ir.family.CostModel.lut_per_select_bit`: a 2:1 mux is one LUT on LUT4 and
  LUT6 alike; yosys synth_ecp5 on 48 two-way max nodes of 8-bit values: 192 CCU2C + 384 LUT4,
  exactly the model's 8 chain LUTs and 8 mux LUTs per node).
* **SHR**, **CONST**, **INPUT**: wires.
* **Registers**: every ADD, CLAMP, MAX and MIN node is a register of its width; a node read ``d``
  stages after its own stage has ``d`` delayed copies (one shift register per node, as the
  writers emit), and the ``valid`` strobe has one flip-flop per pipeline stage.
  A register duplicated to bound its fanout (:mod:`nnlcc.ir.fanout`) counts once per copy.
  :attr:`Cost.ffs` counts exactly the declared register bits;
  :attr:`Cost.ffs_synth` what survives synthesis (constant and unread bits removed, and on
  families with shift-register LUTs, delay runs of ``srl_min`` or more copies moved into
  LUTs, :attr:`Cost.srl_luts`).

The LUT coefficients of each family (:attr:`nnlcc.ir.family.Family.cost`) are calibrated
against yosys and nextpnr by ``benchmarks/cost_model.py`` (results in
``benchmarks/results/<date>/cost_model.json``); the family table says which run they come
from and the error measured there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from nnlcc.ir.adder_graph import AdderGraph, Node, Op
from nnlcc.ir.family import Family
from nnlcc.ir.fixed_point import bits_for_range

if TYPE_CHECKING:
    from nnlcc.ir.lowered import LoweredNetwork

__all__ = [
    "Cost",
    "CostFeatures",
    "NetworkCost",
    "estimate",
    "estimate_network",
    "features",
]

I64 = npt.NDArray[np.int64]

_OP_CODE = {Op.INPUT: 0, Op.CONST: 1, Op.ADD: 2, Op.SHR: 3, Op.CLAMP: 4, Op.MAX: 5, Op.MIN: 6}
_INPUT, _CONST, _ADD, _SHR, _CLAMP, _MAX, _MIN = range(7)
_OP_BY_ID = {id(o): c for o, c in _OP_CODE.items()}  # Enum hashing is slow on 1e6 nodes
_op = attrgetter("op")


@dataclass(frozen=True)
class CostFeatures:
    """The family-independent counts the LUT model is linear in (what calibration fits)."""

    adder_chains: int
    adder_chain_bits: int
    adder_chain_luts: int  # chain bits rounded up to the family's granule
    compare_chains: int
    compare_chain_bits: int
    compare_chain_luts: int
    mux_bits: int
    srl_luts: int
    merged_nodes: int  # ADD/CLAMP nodes equal to an earlier one (synthesis shares them)
    pipeline_ffs: int
    delay_ffs: int
    valid_ffs: int
    ffs_synth: int
    select_mux_bits: int = 0  # 2:1 multiplexer bits of MAX/MIN nodes

    @property
    def chains(self) -> int:
        return self.adder_chains + self.compare_chains

    @property
    def chain_luts(self) -> int:
        return self.adder_chain_luts + self.compare_chain_luts


@dataclass(frozen=True)
class Cost:
    """Estimated resources of one adder graph on one family."""

    family: Family
    luts: int
    ffs: int
    adder_luts: int
    clamp_luts: int
    srl_luts: int
    pipeline_ffs: int
    delay_ffs: int
    valid_ffs: int
    ffs_synth: int
    features: CostFeatures

    def __add__(self, other: Cost) -> Cost:
        if self.family is not other.family:
            raise ValueError("adding costs of different families")
        f, g = self.features, other.features
        summed = CostFeatures(**{k: getattr(f, k) + getattr(g, k) for k in f.__dataclass_fields__})
        return Cost(
            self.family,
            self.luts + other.luts,
            self.ffs + other.ffs,
            self.adder_luts + other.adder_luts,
            self.clamp_luts + other.clamp_luts,
            self.srl_luts + other.srl_luts,
            self.pipeline_ffs + other.pipeline_ffs,
            self.delay_ffs + other.delay_ffs,
            self.valid_ffs + other.valid_ffs,
            self.ffs_synth + other.ffs_synth,
            summed,
        )


@dataclass
class NetworkCost:
    family: Family
    layers: dict[str, Cost] = field(default_factory=dict)
    total: Cost | None = None


def _bitlen(x: I64) -> I64:
    """``int.bit_length`` of non-negative int64 values, vectorized (exact up to 2**62)."""
    x = np.asarray(x, dtype=np.int64)
    e = np.frexp(x.astype(np.float64))[1].astype(np.int64)
    # a float rounded up to the next power of two overstates the length by one
    over = (e > 0) & ((np.left_shift(np.int64(1), np.maximum(e - 1, 0))) > x)
    return e - over


def _widths(lo: I64, hi: I64) -> I64:
    """Width of :func:`~nnlcc.ir.fixed_point.bits_for_range` for every node."""
    unsigned = np.maximum(_bitlen(np.maximum(hi, 0)), 1)
    signed = np.maximum(_bitlen(np.maximum(hi, 0)), _bitlen(np.maximum(-lo - 1, 0))) + 1
    return np.where(lo >= 0, unsigned, signed)


_LIM = 1 << 62


def _clip62(values: list[int]) -> I64:
    """Exact ints as int64, clipped to +-2**62 (only exact LCC codes with unbounded widths
    get that wide; their widths are computed exactly by :func:`_ranges`)."""
    try:
        return np.array(values, dtype=np.int64).clip(-_LIM, _LIM)
    except OverflowError:
        return np.array([min(max(v, -_LIM), _LIM) for v in values], dtype=np.int64)


def _ranges(nodes: list[Node]) -> tuple[I64, I64, I64]:
    """Ranges (clipped to int64) and exact widths of all nodes."""
    n = len(nodes)
    try:
        lo = np.fromiter(map(attrgetter("lo"), nodes), np.int64, n)
        hi = np.fromiter(map(attrgetter("hi"), nodes), np.int64, n)
        if lo.min() > -_LIM and hi.max() < _LIM:
            return lo, hi, _widths(lo, hi)
    except OverflowError:
        pass
    los = list(map(attrgetter("lo"), nodes))
    his = list(map(attrgetter("hi"), nodes))
    w = np.array([bits_for_range(x, y)[0] for x, y in zip(los, his, strict=True)], np.int64)
    return _clip62(los), _clip62(his), w


def _zero_low_bits(
    op: npt.NDArray[np.int8], a: I64, b: I64, sa: I64, sb: I64, c0: I64, c1: I64, w: I64, st: I64
) -> I64:
    """Low bits of every node that are always 0 (its operands' zero bits, shifted).

    ADD and CLAMP nodes read earlier stages only, SHR nodes their own stage, so one
    vectorized step per stage (and per SHR of a SHR) settles every node in SSA order.
    """
    z = np.where(op == _CONST, _tz(c0, w), 0)
    is_sel = (op == _MAX) | (op == _MIN)
    work = (op == _ADD) | (op == _SHR) | (op == _CLAMP) | is_sel
    idx = np.nonzero(work)[0]
    if idx.size == 0:
        return np.minimum(z, w)
    order = idx[np.argsort(st[idx], kind="stable")]
    bounds = np.searchsorted(st[order], np.arange(int(st[order][-1]) + 2))
    big = np.int64(1 << 30)
    ctz0, ctz1 = _tz(c0, np.full_like(w, big)), _tz(c1, np.full_like(w, big))
    for s in range(len(bounds) - 1):
        ks = order[bounds[s] : bounds[s + 1]]
        if ks.size == 0:
            continue
        o = op[ks]
        k = ks[o == _ADD]
        z[k] = np.minimum(z[a[k]] + sa[k], z[b[k]] + sb[k])
        k = ks[o == _CLAMP]
        z[k] = np.minimum(z[a[k]], np.minimum(ctz0[k], ctz1[k]))
        k = ks[(o == _MAX) | (o == _MIN)]
        z[k] = np.minimum(z[a[k]], z[b[k]])
        k = ks[o == _SHR]
        while k.size:  # a SHR of a SHR of the same stage: repeat until settled
            new = np.maximum(z[a[k]] - sa[k], 0)
            changed = bool((new != z[k]).any())
            z[k] = new
            if not changed or not (op[a[k]] == _SHR).any():
                break
    return np.minimum(z, w)


def _tz(c: I64, width: I64) -> I64:
    """Trailing zero bits of constants (a zero constant: its whole width)."""
    low = c & -c
    return np.where(c == 0, width, _bitlen(low) - 1)


def features(graph: AdderGraph, family: Family) -> CostFeatures:
    """Count the adder chains, comparators, multiplexer bits and registers of ``graph`` as
    ``family`` builds them."""
    nodes = graph.nodes
    n = len(nodes)
    if n == 0:
        return CostFeatures(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    op = np.fromiter(map(_OP_BY_ID.__getitem__, map(id, map(_op, nodes))), np.int8, n)
    a, b, sa, sb = (
        np.fromiter(map(attrgetter(f), nodes), np.int64, n) for f in ["a", "b", "sa", "sb"]
    )
    nb = np.fromiter(map(attrgetter("nb"), nodes), np.int64, n)
    lo, hi, w = _ranges(nodes)
    c0 = np.zeros(n, dtype=np.int64)
    c1 = np.zeros(n, dtype=np.int64)
    k_c = np.nonzero((op == _CONST) | (op == _CLAMP))[0]
    if k_c.size:
        cc = [nodes[k] for k in k_c.tolist()]
        c0[k_c] = _clip62(list(map(attrgetter("c0"), cc)))
        c1[k_c] = _clip62(list(map(attrgetter("c1"), cc)))
    st = np.array(graph.schedule(), dtype=np.int64)
    is_add, is_clamp = op == _ADD, op == _CLAMP
    is_sel = (op == _MAX) | (op == _MIN)
    is_const = op == _CONST

    # declared registers (exactly what the writers emit), from the graph as it is
    rd = np.array(graph.reads, dtype=np.int64)  # the stage each node reads its operands at
    lat = graph.latency
    reads = _reads(np.arange(n), op, a, b, sa, sb, st, rd, lat, w, graph.outputs)
    delay = np.zeros(n, dtype=np.int64)
    np.maximum.at(delay, reads[0], reads[1])
    registered = (is_add | is_clamp | is_sel) & (st > rd)  # schedule{every} leaves some comb
    pipeline_ffs = int(w[registered].sum())
    delay_ffs = int((delay * w)[~is_const].sum())
    # copies of registers duplicated to bound their fanout (nnlcc.ir.fanout), the original
    # copy counted above
    extra = graph.copies.extra_registers
    pipeline_ffs += sum(int(w[k]) * n for k, t, n in extra if t == st[k])
    delay_ffs += sum(int(w[k]) * n for k, t, n in extra if t > st[k])

    # what synthesis keeps: structurally equal nodes are one (yosys opt_merge) ...
    rep = _merge_duplicates(op, a, b, sa, sb, nb, c0, c1, st)
    alive = rep == np.arange(n)
    if alive.all():
        s_src, s_off, s_lo, s_hi = reads
    else:
        s_src, s_off, s_lo, s_hi = _reads(
            rep, np.where(alive, op, -1), a, b, sa, sb, st, rd, lat, w, graph.outputs
        )
    merged = int(np.count_nonzero(~alive & registered))
    # ... and bits nobody reads are cut
    live_hi = np.zeros(n, dtype=np.int64)
    np.maximum.at(live_hi, s_src, np.minimum(s_hi, w[s_src]))
    by_add = s_lo < 0
    live_lo = w.copy()
    np.minimum.at(live_lo, s_src[~by_add], s_lo[~by_add])
    is_add, is_clamp, is_sel = is_add & alive, is_clamp & alive, is_sel & alive
    k_add, k_cl, k_sel = np.nonzero(is_add)[0], np.nonzero(is_clamp)[0], np.nonzero(is_sel)[0]
    a, b = rep[a], rep[b]

    # ---- bits known zero at the bottom (forward, one pipeline stage at a time) ----
    z = _zero_low_bits(op, a, b, sa, sb, c0, c1, w, st)

    # ---- adders ----
    a0 = sa[k_add] + z[a[k_add]]
    b0 = sb[k_add] + z[b[k_add]]
    start = np.where(nb[k_add] != 0, b0, np.maximum(a0, b0))
    zero_operand = (is_const[a[k_add]] & (c0[a[k_add]] == 0)) | (
        is_const[b[k_add]] & (c0[b[k_add]] == 0)
    )
    # low sum bits nobody reads (a requantization's shift drops them): the operand bits that
    # only pass through to them are unread too; later stages first, so every sum's readers
    # are settled before its operands are
    by_stage = np.argsort(-st[k_add], kind="stable")
    cuts = np.flatnonzero(np.diff(st[k_add][by_stage])) + 1
    for grp in np.split(by_stage, cuts):
        k = k_add[grp]
        unread = np.minimum(live_lo[k], start[grp])
        for opnd, sh in ((a[k], sa[k]), (b[k], sb[k])):
            var = ~is_const[opnd]
            np.minimum.at(live_lo, opnd[var], np.maximum(unread - sh, 0)[var])
    end = np.minimum(w[k_add], live_hi[k_add])
    add_bits = np.where(zero_operand, 0, np.maximum(end - start, 0))
    g = family.chain_granule
    add_luts = -(-add_bits // g) * g

    # ---- clamps: signed comparison width of the writers, bounds the operand can cross ----
    x = a[k_cl]
    wc = _widths(np.minimum(np.minimum(lo[x], c0[k_cl]), -1), np.maximum(hi[x], c1[k_cl]))
    up = hi[x] > c1[k_cl]
    down = (lo[x] < c0[k_cl]) & (c0[k_cl] != 0)  # a lower bound of 0 is the sign bit
    any_bound = up | (lo[x] < c0[k_cl])
    cmp_n = up.astype(np.int64) + down.astype(np.int64)
    cmp_bits = cmp_n * wc
    cmp_luts = cmp_n * (-(-wc // g) * g)
    live_w = np.maximum(np.minimum(w, live_hi) - np.maximum(live_lo, z), 0)
    mux = np.where(any_bound, live_w[k_cl], 0)

    # ---- max/min: one signed comparison covering both operands, a two-way mux ----
    xa, xb = a[k_sel], b[k_sel]
    wsel = _widths(np.minimum(lo[xa], lo[xb]), np.maximum(hi[xa], hi[xb]))
    sel_luts = -(-wsel // g) * g
    sel_mux = live_w[k_sel]

    # ---- registers ----
    synth_pipe = int(live_w[registered].sum())
    synth_delay, srl = _delay_runs(s_src, s_off, live_w, family)
    # synthesis keeps every copy of a duplicated register whole (``keep``), the original too,
    # and the delay lines of SHRs kept apart from them
    kept = sum(int(w[k]) * (n + 1) - int(live_w[k]) for k, _, n in extra)
    kept += sum(int(w[k]) - int(live_w[k]) for k, _ in graph.copies.separate)
    return CostFeatures(
        adder_chains=int(np.count_nonzero(add_bits)),
        adder_chain_bits=int(add_bits.sum()),
        adder_chain_luts=int(add_luts.sum()),
        compare_chains=int(cmp_n.sum()) + int(k_sel.size),
        compare_chain_bits=int(cmp_bits.sum()) + int(wsel.sum()),
        compare_chain_luts=int(cmp_luts.sum()) + int(sel_luts.sum()),
        mux_bits=int(mux.sum()),
        srl_luts=srl,
        merged_nodes=merged,
        pipeline_ffs=pipeline_ffs,
        delay_ffs=delay_ffs,
        valid_ffs=lat,
        ffs_synth=synth_pipe + synth_delay + kept + lat,
        select_mux_bits=int(sel_mux.sum()),
    )


def _reads(
    rep: I64,
    op: npt.NDArray[np.int8],
    a: I64,
    b: I64,
    sa: I64,
    sb: I64,
    st: I64,
    rd: I64,
    lat: int,
    w: I64,
    outputs: list[int],
) -> tuple[I64, I64, I64, I64]:
    """Every read of a non-constant node: (node, stages after its own stage, lowest bit
    read, bound of the bits read), operands mapped through ``rep``; ``op`` < 0 skips a node.
    An addition's reads have lowest bit -1: :func:`features` works them out."""
    src: list[I64] = []
    off: list[I64] = []
    rlo: list[I64] = []
    rhi: list[I64] = []
    k_add = np.nonzero(op == _ADD)[0]
    for opnd, sh in ((rep[a[k_add]], sa[k_add]), (rep[b[k_add]], sb[k_add])):
        src.append(opnd)
        off.append(rd[k_add] - st[opnd])
        rlo.append(np.full_like(opnd, -1))  # -1: depends on the sum's live bits (caller)
        rhi.append(w[k_add] - sh)  # bits shifted past the sum's width are never read
    k_cl = np.nonzero(op == _CLAMP)[0]
    x = rep[a[k_cl]]
    src.append(x)
    off.append(rd[k_cl] - st[x])
    rlo.append(np.zeros_like(x))
    rhi.append(w[x])
    k_sel = np.nonzero((op == _MAX) | (op == _MIN))[0]
    for opnd in (rep[a[k_sel]], rep[b[k_sel]]):
        src.append(opnd)
        off.append(rd[k_sel] - st[opnd])
        rlo.append(np.zeros_like(opnd))
        rhi.append(w[opnd])
    k_sh = np.nonzero(op == _SHR)[0]
    kk, x = sa[k_sh], rep[a[k_sh]]
    src.append(x)
    off.append(st[k_sh] - st[x])
    rlo.append(np.maximum(kk, 0))  # floor division drops the low bits
    rhi.append(w[k_sh] + kk)
    outs = rep[np.array(outputs, dtype=np.int64)]
    src.append(outs)
    off.append(lat - st[outs])
    rlo.append(np.zeros_like(outs))
    rhi.append(w[outs])
    s_src = np.concatenate(src)
    keep = op[s_src] != _CONST
    return (
        s_src[keep],
        np.concatenate(off)[keep],
        np.concatenate(rlo)[keep],
        np.concatenate(rhi)[keep],
    )


def _merge_duplicates(
    op: npt.NDArray[np.int8], a: I64, b: I64, sa: I64, sb: I64, nb: I64, c0: I64, c1: I64, st: I64
) -> I64:
    """The first of the structurally equal nodes for every node (equal constants; the same
    operation of the same representatives, an addition's operands in either order), found
    one pipeline stage at a time as :func:`_zero_low_bits` does."""
    n = len(op)
    rep = np.arange(n, dtype=np.int64)
    kc = np.nonzero(op == _CONST)[0]
    if kc.size:
        _, first, inv = np.unique(c0[kc], return_index=True, return_inverse=True)
        rep[kc] = kc[first[inv.ravel()]]
    idx = np.nonzero((op == _ADD) | (op == _SHR) | (op == _CLAMP) | (op == _MAX) | (op == _MIN))[0]
    if idx.size == 0:
        return rep
    order = idx[np.argsort(st[idx], kind="stable")]
    bounds = np.searchsorted(st[order], np.arange(int(st[order][-1]) + 2))

    def group(ks: I64) -> None:
        if ks.size == 0:
            return
        ra, rb, xa, xb = rep[a[ks]], rep[b[ks]], sa[ks], sb[ks]
        commutes = ((op[ks] == _ADD) & (nb[ks] == 0)) | (op[ks] == _MAX) | (op[ks] == _MIN)
        swap = commutes & ((ra > rb) | ((ra == rb) & (xa > xb)))
        ra, rb = np.where(swap, rb, ra), np.where(swap, ra, rb)
        xa, xb = np.where(swap, xb, xa), np.where(swap, xa, xb)
        keys = np.stack([op[ks].astype(np.int64), ra, rb, xa, xb, nb[ks], c0[ks], c1[ks]])
        srt = np.lexsort(keys[::-1])
        ks_s = ks[srt]
        new = np.concatenate([[True], (np.diff(keys[:, srt], axis=1) != 0).any(axis=0)])
        head = ks_s[new][np.cumsum(new) - 1]  # lexsort is stable: the first is the smallest
        rep[ks_s] = head

    for s in range(len(bounds) - 1):
        ks = order[bounds[s] : bounds[s + 1]]
        if ks.size == 0:
            continue
        o = op[ks]
        group(ks[o != _SHR])
        shr = ks[o == _SHR]
        for _ in range(1 + int((op[a[shr]] == _SHR).any()) * len(shr)):
            before = rep[shr].copy()
            group(shr)
            if shr.size == 0 or (rep[shr] == before).all():
                break
    return rep


def _delay_runs(src: I64, off: I64, live_w: I64, fam: Family) -> tuple[int, int]:
    """Flip-flops and shift-register LUTs of the delay lines after synthesis.

    The copies of a node between two read taps form a run; a run of ``srl_min`` or more
    copies becomes shift-register LUTs (one per ``srl_depth`` copies and live bit) where the
    family has them, otherwise every copy is a flip-flop of the node's live bits.
    """
    late = off > 0
    if not late.any():
        return 0, 0
    span = int(off.max()) + 1
    keys = np.sort(src[late] * span + off[late])  # by node, then tap
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
    node, taps = keys // span, keys % span
    prev = np.concatenate([[0], taps[:-1]])
    first = np.concatenate([[True], node[1:] != node[:-1]])
    run = taps - np.where(first, 0, prev)
    bits = live_w[node]
    if fam.srl_min:
        srl = run >= fam.srl_min
        return int((run * bits)[~srl].sum()), int((-(-run // fam.srl_depth) * bits)[srl].sum())
    return int((run * bits).sum()), 0


def estimate(graph: AdderGraph, family: Family) -> Cost:
    """LUTs and flip-flops of ``graph``'s pipeline on ``family``, by its calibrated
    coefficients (:attr:`~nnlcc.ir.family.Family.cost`)."""
    k = family.cost
    f = features(graph, family)
    # the packer's cells for flip-flops no LUT feeds count with the adders they register
    adder = (
        k.lut_per_chain_lut * f.adder_chain_luts
        + k.lut_per_chain * f.adder_chains
        + k.lut_per_ff * f.ffs_synth
    )
    clamp = (
        k.lut_per_chain_lut * f.compare_chain_luts
        + k.lut_per_chain * f.compare_chains
        + k.lut_per_mux_bit * f.mux_bits
        + k.lut_per_select_bit * f.select_mux_bits
    )
    adder_luts, clamp_luts = round(adder), round(clamp)
    return Cost(
        family=family,
        luts=adder_luts + clamp_luts + f.srl_luts,
        ffs=f.pipeline_ffs + f.delay_ffs + f.valid_ffs,
        adder_luts=adder_luts,
        clamp_luts=clamp_luts,
        srl_luts=f.srl_luts,
        pipeline_ffs=f.pipeline_ffs,
        delay_ffs=f.delay_ffs,
        valid_ffs=f.valid_ffs,
        ffs_synth=f.ffs_synth,
        features=f,
    )


def estimate_network(net: LoweredNetwork, family: Family) -> NetworkCost:
    """:func:`estimate` of every layer of ``net`` (by layer name; a recurrent layer's gate
    matrices and cell by theirs, :meth:`LoweredLayer.costs`) and their sum."""
    out = NetworkCost(family)
    for layer in net.layers:
        out.layers.update(layer.costs(family))
    costs = list(out.layers.values())
    if costs:
        total = costs[0]
        for c in costs[1:]:
            total = total + c
        out.total = total
    return out
