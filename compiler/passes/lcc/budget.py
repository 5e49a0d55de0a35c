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
from functools import partial
from typing import Any

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
from nnlcc.passes.lcc.seeds import install, pair_seeds, prune_unused

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


def _offer_into(
    e: int,
    *,
    first: IntArray,
    head: IntArray,
    lo_ids: IntArray,
    ncw: IntArray,
    rows_n: IntArray,
    target: FloatArray,
    approx: FloatArray,
    cur: IntArray,
    cw: FloatArray,
    lsb: IntArray,
    paid: int,
    exp_min: int,
    exp_max: int,
    floor: int,
    lookahead: int,
    out: tuple[npt.NDArray[Any], ...],
) -> None:
    """Offers of slice ``e`` written into its part (``first[e]:first[e+1]``) of ``out``."""
    fsrc, fexp, fneg, fgain, psrc, pexp, pneg, pgain = out
    q0, q1 = int(first[e]), int(first[e + 1])
    ids = np.concatenate([np.arange(head[e]), np.arange(lo_ids[e], ncw[e])])
    rn = rows_n[q0:q1]
    fs, fe, fn, fg, ps, pe, pn, pg = _slice_offers(
        target[e, rn] - approx[e, rn],
        cur[e, rn] < 0,
        cw[e, ids],
        lsb[e, ids],
        paid,
        exp_min,
        exp_max,
        floor,
        lookahead,
    )
    fsrc[q0:q1] = np.where(fs >= 0, ids[np.maximum(fs, 0)], -1)
    fexp[q0:q1], fneg[q0:q1], fgain[q0:q1] = fe, fn, fg
    psrc[q0:q1] = np.where(ps >= 0, ids[np.maximum(ps, 0)], -1)
    pexp[q0:q1], pneg[q0:q1], pgain[q0:q1] = pe, pn, pg


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


def budget_fp(
    slices: list[tuple[FloatArray, IntArray]],
    target_db: float,
    total_power: float,
    nonzeros: int,
    max_rounds: int,
    exp_min: int,
    exp_max: int,
    history: int,
    budget: bool,
    guard_bits: int,
    groups: int = 1,
    lookahead: int = 1,
    seeded: bool = False,
) -> list[SliceProgram]:
    """Factor all slices to one whole-matrix error budget (see the module docstring);
    ``budget=False`` offers every row with error a term each round and takes them all
    (the identity-rows idea alone, for the ablation); ``seeded``: the two-term sums of each
    slice's inputs are in the book from the start (:mod:`.seeds`)."""
    if not slices:
        return []
    n_sl = len(slices)
    rows = slices[0][0].shape[0]
    k = max(len(c) for _, c in slices)
    scales = np.zeros(n_sl, dtype=np.int64)
    target = np.zeros((n_sl, rows, k))
    for e, (w, _) in enumerate(slices):
        big = float(np.max(np.abs(w))) if w.size else 0.0
        scales[e] = math.floor(math.log2(big)) + 1 if big > 0 else 0
        target[e, :, : w.shape[1]] = np.ldexp(w, -int(scales[e]))
    scale2 = np.ldexp(1.0, 2 * scales)
    floor = lsb_floor_for(target_db, guard_bits)
    paid = nonzeros - 1
    seeds = pair_seeds(k) if seeded else []
    cap = k + len(seeds) + 2 * rows
    cw = np.zeros((n_sl, cap, k))  # codeword vectors, ids 0..k-1 are the inputs
    cw[:, np.arange(k), np.arange(k)] = 1.0
    nb = np.zeros((n_sl, cap))
    nb[:, :k] = 1.0
    lsb = np.zeros((n_sl, cap), dtype=np.int64)
    src = np.full((n_sl, cap, nonzeros), -1, dtype=np.int32)
    exps = np.zeros((n_sl, cap, nonzeros), dtype=np.int16)
    negs = np.zeros((n_sl, cap, nonzeros), dtype=np.bool_)
    install(seeds, [len(c) for _, c in slices], cw, nb, src, negs, k)
    ncw = np.full(n_sl, k + len(seeds), dtype=np.int64)
    cur = np.full((n_sl, rows), -1, dtype=np.int64)
    approx = np.zeros_like(target)
    made = np.zeros(n_sl, dtype=np.int64)
    rounds = np.zeros(n_sl, dtype=np.int64)
    allowed = total_power * 10.0 ** (-target_db / 10.0)
    live = int(np.count_nonzero(np.any(target != 0, axis=2)))
    share = allowed / max(live, 1)
    starts = [ncw.copy()]
    # slices are independent within a round: BLAS and the numba scan release the GIL
    workers = worker_count()
    pool: ThreadPoolExecutor | None = None  # made once, when a round's work is big enough
    for rnd in range(max_rounds * groups):
        diff = target - approx
        err = np.einsum("enk,enk->en", diff, diff) * scale2[:, None]
        total = float(err.sum())
        if total <= allowed:
            break
        mask = err > (share if budget else 0.0)
        if groups > 1:  # sub-round: one group of rows, seeing the codewords made before it
            mask &= (np.arange(rows) % groups == rnd % groups)[None, :]
        rows_e, rows_n = np.nonzero(mask)
        if rows_e.size == 0 and groups > 1:
            continue
        if rows_e.size == 0:
            break
        if int(ncw.max()) + rows > cap:  # grow the codeword store (amortized doubling)
            extra = cap
            cw = np.concatenate([cw, np.zeros((n_sl, extra, k))], axis=1)
            nb = np.concatenate([nb, np.zeros((n_sl, extra))], axis=1)
            lsb = np.concatenate([lsb, np.zeros((n_sl, extra), dtype=np.int64)], axis=1)
            src = np.concatenate([src, np.full((n_sl, extra, nonzeros), -1, np.int32)], axis=1)
            exps = np.concatenate([exps, np.zeros((n_sl, extra, nonzeros), np.int16)], axis=1)
            negs = np.concatenate([negs, np.zeros((n_sl, extra, nonzeros), np.bool_)], axis=1)
            cap += extra
        head = starts[0]  # ids below are the inputs
        lo_ids = np.maximum(starts[max(0, len(starts) - 1 - history * groups)], head)
        q_all = len(rows_e)
        fsrc = np.full(q_all, -1, dtype=np.int64)
        fexp = np.zeros(q_all, dtype=np.int64)
        fneg = np.zeros(q_all, dtype=np.bool_)
        fgain = np.zeros(q_all)
        psrc = np.full((q_all, paid), -1, dtype=np.int64)
        pexp = np.zeros((q_all, paid), dtype=np.int64)
        pneg = np.zeros((q_all, paid), dtype=np.bool_)
        pgain = np.zeros(q_all)
        first = np.searchsorted(rows_e, np.arange(n_sl + 1))

        offer = partial(
            _offer_into,
            first=first,
            head=head,
            lo_ids=lo_ids,
            ncw=ncw,
            rows_n=rows_n,
            target=target,
            approx=approx,
            cur=cur,
            cw=cw,
            lsb=lsb,
            paid=paid,
            exp_min=exp_min,
            exp_max=exp_max,
            floor=floor,
            lookahead=lookahead,
            out=(fsrc, fexp, fneg, fgain, psrc, pexp, pneg, pgain),
        )
        busy = [e for e in range(n_sl) if first[e + 1] > first[e]]
        if len(busy) > 1 and workers > 1 and q_all * int(ncw.max()) >= PARALLEL_WORK:
            if pool is None:
                pool = ThreadPoolExecutor(workers)
            list(pool.map(offer, busy))
        else:
            for e in busy:
                offer(e)
        sc = scale2[rows_e]
        free_gain = float(np.sum(fgain * sc))
        gain = pgain * sc
        take = gain > 0
        if budget and gain.size:
            need = total - free_gain - allowed
            order = np.argsort(-gain, kind="stable")
            csum = np.cumsum(gain[order])
            if csum[-1] > need:
                cnt = int(np.searchsorted(csum, need, side="left")) + 1
                take = np.zeros(len(gain), dtype=np.bool_)
                take[order[:cnt]] = True
                take &= gain > 0
        if free_gain <= 0 and not np.any(take):
            break  # nothing improves any more: the target is out of reach with these options
        before = made.copy()
        _apply(
            rows_e,
            rows_n,
            take,
            fsrc,
            fexp,
            fneg,
            psrc,
            pexp,
            pneg,
            cw,
            nb,
            lsb,
            ncw,
            cur,
            approx,
            src,
            exps,
            negs,
            made,
        )
        rounds += made > before
        starts.append(ncw.copy())
    if pool is not None:
        pool.shutdown()
    progs = []
    for e, (_, cols) in enumerate(slices):
        ke = len(cols)
        n = int(ncw[e])
        s = src[e, k:n].copy()
        o = cur[e].astype(np.int32)
        if ke < k:  # padded slice: ids of created codewords shift down by the padding
            s = np.where(s >= k, s - (k - ke), s)
            o = np.where(o >= k, o - (k - ke), o)
        block = np.zeros((rows, ke))
        has = cur[e] >= 0
        block[has] = np.ldexp(cw[e, cur[e, has], :ke], int(scales[e]))
        prog = SliceProgram(
            cols=cols,
            scale=int(scales[e]),
            src=s,
            exp=exps[e, k:n].copy(),
            neg=negs[e, k:n].copy(),
            out=o,
            block=block,
            rounds=int(rounds[e]),
        )
        progs.append(prune_unused(prog) if seeds else prog)
    return progs
