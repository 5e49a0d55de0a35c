"""Fully parallel LCC with one global error budget, batched over all column slices.

Beyond the published FP (:func:`nnlcc.passes.lcc.fp.plain_fp`), five changes, each measured in
``benchmarks/lcc.py`` (additions per entry at 45 dB in the comments of that file's output):

* **identity rows**: a row keeps its codeword and *adds* ``S - 1`` terms per factor; a row that
  is not worth an adder in a factor passes its codeword through (a wire, no adder).
* **one budget, exact stop**: the target is the whole-matrix SQNR, so the error budget is shared
  by all rows of all slices.  A row whose squared error is below its share ``allowed / rows`` is
  left alone; when taking every offer of a round would overshoot the target, only the largest
  gains across all slices are taken, as many as needed.  Plain FP instead stops each slice on
  its own and pays a whole factor for the last fraction of a dB.
* **codeword history**: the candidates of a factor are the inputs and the codewords of the last
  ``history`` factors, not only of the previous one.  Coarse early codewords point in other
  directions than the refined ones, and most picks come from them (measured: a third of the
  terms use a codeword two or more factors old).  It also makes the LSB floor nearly free:
  coarse codewords still accept fine coefficients.
* **sub-rounds**: a factor updates its rows in ``groups`` interleaved groups, each group
  choosing among the codewords the groups before it just made: a step towards the fully
  sequential algorithm's adder count at a fraction of its depth (4 groups: 0.99 instead of
  1.07 additions per entry on 256x64, depth 16 instead of 11; FS needs depth ~30).
* **look-ahead**: a row's new term is chosen among its ``lookahead`` best candidates by its gain
  plus the best gain of a further term (:func:`nnlcc.passes.lcc.fp.lookahead_term`); 2 candidates
  cost about 1.6x the compile time for 3-4% fewer adders, 4 candidates 2.2x for 5-6%.

All slices advance in lockstep, one factor per round, so every round is two parallel numba
kernels over all rows of all slices (offers, then applying the chosen ones).  Arithmetic stays
exact for the reasons in :mod:`nnlcc.passes.lcc.fp` (every codeword a multiple of ``2**lsb_floor``).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numba
import numpy as np
import numpy.typing as npt

from nnlcc.passes.lcc.fp import (
    FloatArray,
    IntArray,
    SliceProgram,
    lookahead_term,
    lsb_floor_for,
    matching_pursuit,
    worker_count,
)
from nnlcc.passes.lcc.options import LccOptions
from nnlcc.passes.lcc.seeds import Seed, install, pair_seeds, prune_unused

#: Offers (rows x candidate codewords) of a round below which its slices run serially:
#: thread hand-offs cost more than small rounds save.
PARALLEL_WORK = 1 << 16


def _slice_offers(
    resid: FloatArray,
    fresh: npt.NDArray[np.bool_],
    book: FloatArray,
    book_lsb: IntArray,
    paid: int,
    exp_min: int,
    exp_max: int,
    floor: int,
    lookahead: int,
) -> tuple[
    IntArray,
    IntArray,
    npt.NDArray[np.bool_],
    FloatArray,
    IntArray,
    IntArray,
    npt.NDArray[np.bool_],
    FloatArray,
]:
    """Offers for the listed rows of one slice: a free first term for rows without a codeword
    (``fresh``), then ``paid`` matching-pursuit terms; indices are into ``book``."""
    q = len(resid)
    fsrc = np.full(q, -1, dtype=np.int64)
    fexp = np.zeros(q, dtype=np.int64)
    fneg = np.zeros(q, dtype=np.bool_)
    fgain = np.zeros(q)
    r = resid.copy()
    if np.any(fresh):
        j, e, ng, g, rr = matching_pursuit(r[fresh], book, book_lsb, 1, exp_min, exp_max, floor)[
            0:5
        ]
        fsrc[fresh], fexp[fresh], fneg[fresh], fgain[fresh] = j[:, 0], e[:, 0], ng[:, 0], g
        r[fresh] = rr
    if lookahead > 1 and paid == 1:
        j, e, ng, g = lookahead_term(r, book, book_lsb, exp_min, exp_max, floor, lookahead)
        ok = j >= 0
        psrc = np.where(ok, j, -1)[:, None]
        return fsrc, fexp, fneg, fgain, psrc, e[:, None], ng[:, None], np.where(ok, g, 0.0)
    psrc, pexp, pneg, pgain, _ = matching_pursuit(r, book, book_lsb, paid, exp_min, exp_max, floor)
    return fsrc, fexp, fneg, fgain, psrc, pexp, pneg, pgain


@dataclass
class _Book:
    """The codewords of every slice (ids ``0..k-1`` are the slice's inputs) and which of them
    each row uses, in arrays sized for ``cap`` codewords per slice (grown by doubling)."""

    cw: FloatArray  # (slices, cap, k): codeword vectors
    nb: FloatArray  # (slices, cap): their squared norms
    lsb: IntArray  # (slices, cap): their LSB exponents
    src: npt.NDArray[np.int32]  # (slices, cap, nonzeros): the codewords each one sums
    exps: npt.NDArray[np.int16]  # ... the exponents of those terms
    negs: npt.NDArray[np.bool_]  # ... and their signs
    ncw: IntArray  # (slices,): codewords so far
    cur: IntArray  # (slices, rows): each row's codeword, -1 while it has none
    approx: FloatArray  # (slices, rows, k): each row's codeword vector (zero: none)
    made: IntArray  # (slices,): codewords created

    @classmethod
    def start(
        cls, target: FloatArray, nonzeros: int, seeds: list[Seed], widths: list[int]
    ) -> _Book:
        """The inputs, then ``seeds`` (:mod:`.seeds`) as codewords ``k..`` of every slice
        (``widths``: each slice's inputs)."""
        n_sl, rows, k = target.shape
        cap = k + len(seeds) + 2 * rows
        cw = np.zeros((n_sl, cap, k))
        cw[:, np.arange(k), np.arange(k)] = 1.0
        nb = np.zeros((n_sl, cap))
        nb[:, :k] = 1.0
        src = np.full((n_sl, cap, nonzeros), -1, dtype=np.int32)
        negs = np.zeros((n_sl, cap, nonzeros), dtype=np.bool_)
        install(seeds, widths, cw, nb, src, negs, k)
        return cls(
            cw=cw,
            nb=nb,
            lsb=np.zeros((n_sl, cap), dtype=np.int64),
            src=src,
            exps=np.zeros((n_sl, cap, nonzeros), dtype=np.int16),
            negs=negs,
            ncw=np.full(n_sl, k + len(seeds), dtype=np.int64),
            cur=np.full((n_sl, rows), -1, dtype=np.int64),
            approx=np.zeros_like(target),
            made=np.zeros(n_sl, dtype=np.int64),
        )

    def make_room(self, more: int) -> None:
        """Room for ``more`` new codewords in every slice (amortized doubling)."""
        cap = self.cw.shape[1]
        if int(self.ncw.max()) + more <= cap:
            return
        n_sl, _, k = self.cw.shape
        nz = self.src.shape[2]
        self.cw = np.concatenate([self.cw, np.zeros((n_sl, cap, k))], axis=1)
        self.nb = np.concatenate([self.nb, np.zeros((n_sl, cap))], axis=1)
        self.lsb = np.concatenate([self.lsb, np.zeros((n_sl, cap), dtype=np.int64)], axis=1)
        self.src = np.concatenate([self.src, np.full((n_sl, cap, nz), -1, np.int32)], axis=1)
        self.exps = np.concatenate([self.exps, np.zeros((n_sl, cap, nz), np.int16)], axis=1)
        self.negs = np.concatenate([self.negs, np.zeros((n_sl, cap, nz), np.bool_)], axis=1)


@dataclass
class _Offers:
    """Per listed row (slice by slice): a free first term for a row without a codeword
    (``f*``: source codeword, exponent, sign, gain) and the ``paid`` terms of a new codeword
    (``p*``; sources -1 where there is none)."""

    fsrc: IntArray
    fexp: IntArray
    fneg: npt.NDArray[np.bool_]
    fgain: FloatArray
    psrc: IntArray
    pexp: IntArray
    pneg: npt.NDArray[np.bool_]
    pgain: FloatArray

    @classmethod
    def empty(cls, rows: int, paid: int) -> _Offers:
        return cls(
            fsrc=np.full(rows, -1, dtype=np.int64),
            fexp=np.zeros(rows, dtype=np.int64),
            fneg=np.zeros(rows, dtype=np.bool_),
            fgain=np.zeros(rows),
            psrc=np.full((rows, paid), -1, dtype=np.int64),
            pexp=np.zeros((rows, paid), dtype=np.int64),
            pneg=np.zeros((rows, paid), dtype=np.bool_),
            pgain=np.zeros(rows),
        )


@dataclass(frozen=True)
class _Round:
    """What every slice's offers in one round read: the rows listed (``rows_n``, slice ``e``'s
    at ``first[e]:first[e+1]``) and the candidate codewords (``0..head-1`` and
    ``lo_ids..ncw-1``)."""

    first: IntArray
    rows_n: IntArray
    head: IntArray
    lo_ids: IntArray
    target: FloatArray
    book: _Book
    opts: LccOptions
    floor: int
    out: _Offers


def _offer_into(r: _Round, e: int) -> None:
    """Offers of slice ``e`` written into its part of ``r.out``."""
    book, out, opts = r.book, r.out, r.opts
    q0, q1 = int(r.first[e]), int(r.first[e + 1])
    ids = np.concatenate([np.arange(r.head[e]), np.arange(r.lo_ids[e], book.ncw[e])])
    rn = r.rows_n[q0:q1]
    fs, fe, fn, fg, ps, pe, pn, pg = _slice_offers(
        r.target[e, rn] - book.approx[e, rn],
        book.cur[e, rn] < 0,
        book.cw[e, ids],
        book.lsb[e, ids],
        opts.nonzeros - 1,
        opts.exp_min,
        opts.exp_max,
        r.floor,
        opts.lookahead,
    )
    out.fsrc[q0:q1] = np.where(fs >= 0, ids[np.maximum(fs, 0)], -1)
    out.fexp[q0:q1], out.fneg[q0:q1], out.fgain[q0:q1] = fe, fn, fg
    out.psrc[q0:q1] = np.where(ps >= 0, ids[np.maximum(ps, 0)], -1)
    out.pexp[q0:q1], out.pneg[q0:q1], out.pgain[q0:q1] = pe, pn, pg


class _Pool:
    """A thread pool made the first time a round's work is big enough, reused by the rounds
    after it (one per factorization)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None

    def get(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


def _all_offers(r: _Round, pool: _Pool) -> None:
    """Every slice's offers; slices are independent within a round (BLAS and the numba scan
    release the GIL), so a round of at least :data:`PARALLEL_WORK` offers runs on the pool."""
    n_sl = len(r.first) - 1
    busy = [e for e in range(n_sl) if r.first[e + 1] > r.first[e]]
    offer = partial(_offer_into, r)
    work = len(r.rows_n) * int(r.book.ncw.max())
    if len(busy) > 1 and pool.workers > 1 and work >= PARALLEL_WORK:
        list(pool.get().map(offer, busy))
    else:
        for e in busy:
            offer(e)


def _chosen(gain: FloatArray, need: float, budget: bool) -> npt.NDArray[np.bool_]:
    """The paid offers taken: every one that gains, or (``budget``) when they would overshoot
    the target, only the largest gains, as many as the ``need`` left calls for."""
    take = gain > 0
    if budget and gain.size:
        order = np.argsort(-gain, kind="stable")
        csum = np.cumsum(gain[order])
        if csum[-1] > need:
            cnt = int(np.searchsorted(csum, need, side="left")) + 1
            take = np.zeros(len(gain), dtype=np.bool_)
            take[order[:cnt]] = True
            take &= gain > 0
    return take


@numba.njit(cache=True)
def _apply(
    rows_e: IntArray,
    rows_n: IntArray,
    take: npt.NDArray[np.bool_],
    fsrc: IntArray,
    fexp: IntArray,
    fneg: npt.NDArray[np.bool_],
    psrc: IntArray,
    pexp: IntArray,
    pneg: npt.NDArray[np.bool_],
    cw: FloatArray,
    nb: FloatArray,
    lsb: IntArray,
    ncw: IntArray,
    cur: IntArray,
    approx: FloatArray,
    src: npt.NDArray[np.int32],
    exps: npt.NDArray[np.int16],
    negs: npt.NDArray[np.bool_],
    made: IntArray,
) -> None:
    """Create the chosen codewords (rows listed by slice, in order) and make them current."""
    n_slices = len(ncw)
    dims = cw.shape[2]
    # rows of slice e are rows_e == e, contiguous because rows are listed slice by slice
    first = np.searchsorted(rows_e, np.arange(n_slices + 1))
    for e in range(n_slices):  # cheap next to the offers; serial avoids thread barriers
        c = ncw[e]
        for q in range(first[e], first[e + 1]):
            n = rows_n[q]
            own = cur[e, n]
            has_paid = take[q] and psrc[q, 0] >= 0
            if own >= 0:
                if not has_paid:
                    continue
                src[e, c, 0], exps[e, c, 0], negs[e, c, 0] = own, 0, False
            elif fsrc[q] >= 0:
                src[e, c, 0], exps[e, c, 0], negs[e, c, 0] = fsrc[q], fexp[q], fneg[q]
            else:
                continue
            t = 1
            if has_paid:
                for s in range(psrc.shape[1]):
                    if psrc[q, s] >= 0:
                        src[e, c, t], exps[e, c, t], negs[e, c, t] = (
                            psrc[q, s],
                            pexp[q, s],
                            pneg[q, s],
                        )
                        t += 1
            v = np.zeros(dims)
            low = 1 << 30
            for i in range(t):
                j = src[e, c, i]
                coef = math.ldexp(-1.0 if negs[e, c, i] else 1.0, exps[e, c, i])
                for d in range(dims):
                    v[d] += coef * cw[e, j, d]
                low = min(low, exps[e, c, i] + lsb[e, j])
            cw[e, c] = v
            nb[e, c] = np.sum(v * v)
            lsb[e, c] = low
            approx[e, n] = v
            cur[e, n] = c
            c += 1
        made[e] += c - ncw[e]
        ncw[e] = c


def _normalized(slices: list[tuple[FloatArray, IntArray]]) -> tuple[IntArray, FloatArray]:
    """Each slice scaled by a power of two into ``[0.5, 1)`` (its exponent) and all of them
    zero-padded to the widest: ``(slices, rows, k)``."""
    n_sl = len(slices)
    rows = slices[0][0].shape[0]
    k = max(len(c) for _, c in slices)
    scales = np.zeros(n_sl, dtype=np.int64)
    target = np.zeros((n_sl, rows, k))
    for e, (w, _) in enumerate(slices):
        big = float(np.max(np.abs(w))) if w.size else 0.0
        scales[e] = math.floor(math.log2(big)) + 1 if big > 0 else 0
        target[e, :, : w.shape[1]] = np.ldexp(w, -int(scales[e]))
    return scales, target


def budget_fp(
    slices: list[tuple[FloatArray, IntArray]], total_power: float, opts: LccOptions
) -> list[SliceProgram]:
    """Factor all slices (``(weights, columns)`` each) to one whole-matrix error budget,
    ``opts.sqnr_db`` below ``total_power`` (see the module docstring).  ``opts.budget=False``
    offers every row with error a term each round and takes them all (the identity-rows idea
    alone, for the ablation).  With ``opts.use_seeds`` the two-term sums of each slice's
    inputs are in the book from the start and the unused ones dropped after (:mod:`.seeds`)."""
    if not slices:
        return []
    scales, target = _normalized(slices)
    k = target.shape[2]
    seeds = pair_seeds(k) if opts.use_seeds else []
    scale2 = np.ldexp(1.0, 2 * scales)
    floor = lsb_floor_for(opts.sqnr_db, opts.guard_bits)
    book = _Book.start(target, opts.nonzeros, seeds, [len(c) for _, c in slices])
    allowed = total_power * 10.0 ** (-opts.sqnr_db / 10.0)
    live = int(np.count_nonzero(np.any(target != 0, axis=2)))
    share = allowed / max(live, 1)
    pool = _Pool(worker_count())
    try:
        rounds = _rounds(target, scale2, allowed, share, book, opts, floor, pool)
    finally:
        pool.close()
    return [prune_unused(p) if seeds else p for p in _programs(slices, book, scales, rounds)]


def _rounds(
    target: FloatArray,
    scale2: FloatArray,
    allowed: float,
    share: float,
    book: _Book,
    opts: LccOptions,
    floor: int,
    pool: _Pool,
) -> IntArray:
    """The factor rounds of :func:`budget_fp` on ``book``; each slice's count of rounds
    that made a codeword."""
    n_sl, rows, _ = target.shape
    groups = opts.subrounds
    rounds = np.zeros(n_sl, dtype=np.int64)
    starts = [book.ncw.copy()]
    for rnd in range(opts.max_factors * groups):
        diff = target - book.approx
        err = np.einsum("enk,enk->en", diff, diff) * scale2[:, None]
        total = float(err.sum())
        if total <= allowed:
            break
        mask = err > (share if opts.budget else 0.0)
        if groups > 1:  # sub-round: one group of rows, seeing the codewords made before it
            mask &= (np.arange(rows) % groups == rnd % groups)[None, :]
        rows_e, rows_n = np.nonzero(mask)
        if rows_e.size == 0 and groups > 1:
            continue
        if rows_e.size == 0:
            break
        book.make_room(rows)
        head = starts[0]  # ids below are the inputs
        r = _Round(
            first=np.searchsorted(rows_e, np.arange(n_sl + 1)),
            rows_n=rows_n,
            head=head,
            lo_ids=np.maximum(starts[max(0, len(starts) - 1 - opts.history * groups)], head),
            target=target,
            book=book,
            opts=opts,
            floor=floor,
            out=_Offers.empty(len(rows_e), opts.nonzeros - 1),
        )
        _all_offers(r, pool)
        o = r.out
        sc = scale2[rows_e]
        free_gain = float(np.sum(o.fgain * sc))
        take = _chosen(o.pgain * sc, total - free_gain - allowed, opts.budget)
        if free_gain <= 0 and not np.any(take):
            break  # nothing improves any more: the target is out of reach with these options
        before = book.made.copy()
        _apply(
            rows_e,
            rows_n,
            take,
            o.fsrc,
            o.fexp,
            o.fneg,
            o.psrc,
            o.pexp,
            o.pneg,
            book.cw,
            book.nb,
            book.lsb,
            book.ncw,
            book.cur,
            book.approx,
            book.src,
            book.exps,
            book.negs,
            book.made,
        )
        rounds += book.made > before
        starts.append(book.ncw.copy())
    return rounds


def _programs(
    slices: list[tuple[FloatArray, IntArray]], book: _Book, scales: IntArray, rounds: IntArray
) -> list[SliceProgram]:
    """Each slice's program: the codewords it created, each row's codeword, the block it
    computes (scaled back), with the padding of narrower slices taken out of the ids."""
    _, rows, k = book.approx.shape
    progs = []
    for e, (_, cols) in enumerate(slices):
        ke = len(cols)
        n = int(book.ncw[e])
        s = book.src[e, k:n].copy()
        o = book.cur[e].astype(np.int32)
        if ke < k:  # padded slice: ids of created codewords shift down by the padding
            s = np.where(s >= k, s - (k - ke), s)
            o = np.where(o >= k, o - (k - ke), o)
        block = np.zeros((rows, ke))
        has = book.cur[e] >= 0
        block[has] = np.ldexp(book.cw[e, book.cur[e, has], :ke], int(scales[e]))
        progs.append(
            SliceProgram(
                cols=cols,
                scale=int(scales[e]),
                src=s,
                exp=book.exps[e, k:n].copy(),
                neg=book.negs[e, k:n].copy(),
                out=o,
                block=block,
                rounds=int(rounds[e]),
            )
        )
    return progs
