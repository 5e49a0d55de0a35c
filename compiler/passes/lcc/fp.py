"""Fully parallel LCC (discrete matching pursuit) on column slices, vectorized.

A slice ``W_e`` (N x K) is approximated row by row by *codewords*: exact linear combinations of
the slice's K inputs.  Codeword ``k`` is a sum of a few signed power-of-two multiples of earlier
codewords (ids ``0..K-1`` are the inputs themselves), so each one costs ``terms - 1`` adders and
the whole slice is a product of sparse signed-power-of-two factors.

This module holds the shared pieces (the best-term search, the slice program and its working
state) and :func:`plain_fp`, the published algorithm: factor ``p`` gives every row ``S`` terms
chosen greedily (matching pursuit) from the previous factor's N codewords, and a slice stops as
soon as it reaches the target SQNR on its own.  It overshoots: the last factor costs a full
``N * (S - 1)`` additions even when a fraction of them would have reached the target.  The
default algorithm, with a global error budget, is :mod:`nnlcc.passes.lcc.budget`; the sequential one
is :mod:`nnlcc.passes.lcc.fs`.

All arithmetic is float64 and *exact*: every codeword value is a multiple of ``2**lsb_floor``
(coefficients that would go finer are clipped to a coarser power of two) and stays far below
``2**(lsb_floor + 53)``, so sums and power-of-two scalings never round.  The floor also bounds
the integer widths of the adder graph (values span at most about ``exp_max - lsb_floor`` bits
more than the inputs).  Without the floor (the published algorithm) every factor pushes the
LSB of the corrected codewords further down and widths grow with the number of factors.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Bits kept below the target precision: the LSB floor is ``-(ceil(sqnr/6.02) + GUARD_BITS)``
#: relative to the slice's largest weight (normalized into [0.5, 1)).
GUARD_BITS = 6

#: Codewords the look-ahead probes the next step with (a subsample of the book).
PROBE_SIZE = 1024


@numba.njit(cache=True, nogil=True, inline="always")
def best_power(a: float, nbj: float, lo: int, exp_max: int, beat: float) -> tuple[float, int]:
    """The best multiple ``2**e`` (``e`` in ``[lo, exp_max]``) of a codeword of squared norm
    ``nbj`` whose product with the residual has magnitude ``a``: the floor or the ceiling of
    the real optimum ``a / nbj``, by its error reduction ``c * (2a - c * nbj)``.  Returns
    that gain and ``e`` when it beats ``beat``, else ``(beat, 0)``."""
    _, ex = math.frexp(a / nbj)
    g_best, e_best = beat, 0
    for d in range(2):
        e2 = min(max(ex - 1 + d, lo), exp_max)
        c = math.ldexp(1.0, e2)
        g = c * (2.0 * a - c * nbj)
        if g > g_best:
            g_best, e_best = g, e2
    return g_best, e_best


@numba.njit(cache=True, nogil=True)
def _best_from_products(
    prod: FloatArray, nb: FloatArray, elo: IntArray, exp_max: int
) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_], FloatArray]:
    """Best single term ``±2**e * b_j`` per residual row, from the products ``prod = R @ B.T``.

    The error reduction of ``c * b_j`` is ``c * (2|p| - c * |b_j|^2)``; the best power of two is
    the floor or the ceiling of the real optimum ``|p| / |b_j|^2`` (clipped to ``[elo_j,
    exp_max]``).  A quantized gain never exceeds the real one ``p^2 / |b_j|^2``, so candidates
    whose real gain cannot beat the best so far are skipped before any exponent work.
    """
    n, m = prod.shape
    bj = np.full(n, -1, dtype=np.int64)
    be = np.zeros(n, dtype=np.int64)
    bs = np.zeros(n, dtype=np.bool_)
    bg = np.zeros(n, dtype=np.float64)
    for i in range(n):  # serial, GIL released: callers run slices on a thread pool
        best = 0.0
        jj = -1
        ee = 0
        neg = False
        for j in range(m):
            nbj = nb[j]
            p = prod[i, j]
            if nbj <= 0.0 or p * p <= best * nbj:
                continue
            lo = elo[j]
            if lo > exp_max:
                continue
            g, e = best_power(abs(p), nbj, lo, exp_max, best)
            if g > best:
                best = g
                jj = j
                ee = e
                neg = p < 0.0
        bj[i] = jj
        be[i] = ee
        bs[i] = neg
        bg[i] = best
    return bj, be, bs, bg


@numba.njit(cache=True, nogil=True)
def _top_from_products(
    prod: FloatArray, nb: FloatArray, elo: IntArray, exp_max: int, top: int
) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_], FloatArray]:
    """The ``top`` best single terms per row (best first), as :func:`_best_from_products`."""
    n, m = prod.shape
    tj = np.full((n, top), -1, dtype=np.int64)
    te = np.zeros((n, top), dtype=np.int64)
    ts = np.zeros((n, top), dtype=np.bool_)
    tg = np.zeros((n, top))
    for i in range(n):
        for j in range(m):
            nbj = nb[j]
            p = prod[i, j]
            worst = tg[i, top - 1]
            if nbj <= 0.0 or p * p <= worst * nbj:
                continue
            lo = elo[j]
            if lo > exp_max:
                continue
            g_best, e_best = best_power(abs(p), nbj, lo, exp_max, 0.0)
            if g_best <= worst:
                continue
            k = top - 1  # insertion into the short sorted list
            while k > 0 and tg[i, k - 1] < g_best:
                tg[i, k], tj[i, k], te[i, k], ts[i, k] = (
                    tg[i, k - 1],
                    tj[i, k - 1],
                    te[i, k - 1],
                    ts[i, k - 1],
                )
                k -= 1
            tg[i, k], tj[i, k], te[i, k], ts[i, k] = g_best, j, e_best, p < 0.0
    return tj, te, ts, tg


def _products(
    resid: FloatArray, book: FloatArray, book_lsb: IntArray, exp_min: int, lsb_floor: int
) -> tuple[FloatArray, FloatArray, IntArray]:
    """What the term searches read: ``resid @ book.T``, the codewords' squared norms, and the
    lowest exponent each codeword may get (no new codeword below ``lsb_floor``)."""
    prod = np.ascontiguousarray(resid @ book.T)
    nb = np.einsum("ij,ij->i", book, book)
    elo = np.maximum(exp_min, lsb_floor - book_lsb).astype(np.int64)
    return prod, nb, elo


def lookahead_term(
    resid: FloatArray,
    book: FloatArray,
    book_lsb: IntArray,
    exp_min: int,
    exp_max: int,
    lsb_floor: int,
    top: int,
) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_], FloatArray]:
    """One term per row chosen with one step of look-ahead: among the ``top`` best single
    terms, the one whose residual is best reduced by a further best term (its own gain plus
    that next gain).  Greedy matching pursuit often takes a term that leaves a residual no
    codeword matches; the second-best term frequently sets up a much better next step."""
    tj, te, ts, tg = _top_from_products(
        *_products(resid, book, book_lsb, exp_min, lsb_floor), exp_max, top
    )
    # the next step is probed on an even subsample of the book: a score, not a choice
    step = max(1, len(book) // PROBE_SIZE)
    probe, probe_lsb = book[::step], book_lsb[::step]
    score = np.full(tj.shape, -1.0)
    for t in range(top):
        ok = tj[:, t] >= 0
        if not np.any(ok):
            break
        r = (
            resid[ok]
            - np.ldexp(np.where(ts[ok, t], -1.0, 1.0), te[ok, t])[:, None] * book[tj[ok, t]]
        )
        score[ok, t] = tg[ok, t] + best_terms(r, probe, probe_lsb, exp_min, exp_max, lsb_floor)[3]
    rows = np.arange(len(resid))
    pick = np.argmax(score, axis=1)
    return tj[rows, pick], te[rows, pick], ts[rows, pick], tg[rows, pick]


def best_terms(
    resid: FloatArray,
    book: FloatArray,
    book_lsb: IntArray,
    exp_min: int,
    exp_max: int,
    lsb_floor: int,
) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_], FloatArray]:
    """For each row of ``resid``: codeword index, exponent, sign and error reduction of the best
    single term from ``book`` (rows are codeword vectors, ``book_lsb`` their LSB exponents).

    Exponents are bounded below so that no new codeword gets an LSB under ``lsb_floor``.
    """
    if resid.shape[0] == 0 or book.shape[0] == 0:
        n = resid.shape[0]
        return (np.full(n, -1, np.int64), np.zeros(n, np.int64), np.zeros(n, np.bool_), np.zeros(n))
    return _best_from_products(*_products(resid, book, book_lsb, exp_min, lsb_floor), exp_max)


@dataclass
class SliceProgram:
    """One column slice as a straight-line program of codewords.

    Codeword ids ``0..K-1`` are the slice inputs ``x[cols[i]]``; codeword ``K + k`` is
    ``sum_t (-1)**neg[k, t] * 2**exp[k, t] * codeword[src[k, t]]`` over the terms with
    ``src >= 0``.  Output row ``n`` of the slice is ``2**scale * codeword[out[n]]`` (zero when
    ``out[n] < 0``).
    """

    cols: IntArray
    scale: int
    src: npt.NDArray[np.int32]
    exp: npt.NDArray[np.int16]
    neg: npt.NDArray[np.bool_]
    out: npt.NDArray[np.int32]
    block: FloatArray  # the exact (N, K) matrix this slice computes
    rounds: int = 0

    @property
    def width(self) -> int:
        return len(self.cols)

    @property
    def adders(self) -> int:
        """Adders inside the slice (each codeword costs its terms minus one)."""
        return int(np.maximum((self.src >= 0).sum(axis=1) - 1, 0).sum())

    def depths(self) -> IntArray:
        """Adder depth of every codeword (a balanced tree per codeword)."""
        return _codeword_depths(self.src, self.width)


@numba.njit(cache=True)
def _codeword_depths(src: npt.NDArray[np.int32], k: int) -> IntArray:
    d = np.zeros(k + src.shape[0], dtype=np.int64)
    for i in range(src.shape[0]):
        deepest, terms = 0, 0
        for s in src[i]:
            if s >= 0:
                deepest = max(deepest, d[s])
                terms += 1
        levels = 0
        while (1 << levels) < terms:  # ceil(log2(terms)) adder levels
            levels += 1
        d[k + i] = deepest + levels
    return d


@dataclass
class SliceState:
    """Mutable working state of one slice while a factorization runs."""

    cols: IntArray
    scale: int
    target: FloatArray  # normalized slice, rows = outputs
    values: FloatArray  # codeword vectors, capacity-grown
    lsb: IntArray  # LSB exponent of each codeword
    n: int  # codewords in use
    cur: IntArray  # current codeword per row (-1: none)
    src: list[npt.NDArray[np.int32]] = field(default_factory=list)
    exp: list[npt.NDArray[np.int16]] = field(default_factory=list)
    neg: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    rounds: int = 0

    @classmethod
    def start(cls, w: FloatArray, cols: IntArray) -> SliceState:
        big = float(np.max(np.abs(w))) if w.size else 0.0
        scale = math.floor(math.log2(big)) + 1 if big > 0 else 0
        k = len(cols)
        values = np.zeros((max(4 * k, 16), k))
        values[:k] = np.eye(k)
        return cls(
            cols=cols,
            scale=scale,
            target=np.ldexp(w, -scale),
            values=values,
            lsb=np.zeros(len(values), dtype=np.int64),
            n=k,
            cur=np.full(w.shape[0], -1, dtype=np.int64),
        )

    @property
    def scale2(self) -> float:
        """Factor turning normalized squared errors into the layer's units."""
        return math.ldexp(1.0, 2 * self.scale)

    def approx(self) -> FloatArray:
        a = np.zeros_like(self.target)
        has = self.cur >= 0
        a[has] = self.values[self.cur[has]]
        return a

    def row_errors(self) -> FloatArray:
        r = self.target - self.approx()
        return np.einsum("ij,ij->i", r, r)

    def add_codewords(
        self,
        src: npt.NDArray[np.int64],
        exp: npt.NDArray[np.int64],
        neg: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.int64]:
        """Append codewords given as (count, terms) arrays (src -1 = no term); return ids."""
        cnt = len(src)
        if cnt == 0:
            return np.zeros(0, dtype=np.int64)
        while self.n + cnt > len(self.values):
            grow = len(self.values)
            self.values = np.concatenate([self.values, np.zeros((grow, self.values.shape[1]))])
            self.lsb = np.concatenate([self.lsb, np.zeros(grow, dtype=np.int64)])
        used = src >= 0
        s = np.where(used, src, 0)
        sign = np.where(neg, -1.0, 1.0)
        coef = np.where(used, np.ldexp(sign, exp), 0.0)
        vals = np.einsum("ct,ctk->ck", coef, self.values[s])
        lsb = np.where(used, exp + self.lsb[s], np.iinfo(np.int64).max).min(axis=1)
        ids = np.arange(self.n, self.n + cnt)
        self.values[ids] = vals
        self.lsb[ids] = lsb
        self.n += cnt
        self.src.append(src.astype(np.int32))
        self.exp.append(exp.astype(np.int16))
        self.neg.append(neg)
        return ids

    def program(self) -> SliceProgram:
        terms = max((s.shape[1] for s in self.src), default=1)

        def cat(parts: list[npt.NDArray], fill: int | bool, dt: type) -> npt.NDArray:
            padded = [
                np.pad(p, ((0, 0), (0, terms - p.shape[1])), constant_values=fill) for p in parts
            ]
            return np.concatenate(padded).astype(dt) if padded else np.zeros((0, terms), dt)

        return SliceProgram(
            cols=self.cols,
            scale=self.scale,
            src=cat(self.src, -1, np.int32),
            exp=cat(self.exp, 0, np.int16),
            neg=cat(self.neg, False, np.bool_),
            out=self.cur.astype(np.int32),
            block=np.ldexp(self.approx(), self.scale),
            rounds=self.rounds,
        )


def worker_count() -> int:
    """Threads for slice-parallel work: the CPUs this process may use (at most 8)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    return max(1, min(os.cpu_count() or 1, 8))  # pragma: no cover - macOS, Windows


def lsb_floor_for(sqnr_db: float, guard_bits: int = GUARD_BITS) -> int:
    """The finest bit any codeword may carry (normalized domain), see the module docstring."""
    return -(math.ceil(sqnr_db / 6.02) + guard_bits)


def matching_pursuit(
    resid: FloatArray,
    book: FloatArray,
    book_lsb: IntArray,
    terms: int,
    exp_min: int,
    exp_max: int,
    lsb_floor: int,
) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_], FloatArray, FloatArray]:
    """``terms`` greedy steps per row: returns (rows, terms) src/exp/neg, total gain per row and
    the remaining residual."""
    n = len(resid)
    src = np.full((n, terms), -1, dtype=np.int64)
    exp = np.zeros((n, terms), dtype=np.int64)
    neg = np.zeros((n, terms), dtype=np.bool_)
    gain = np.zeros(n)
    r = resid.copy()
    for t in range(terms):
        j, e, s, g = best_terms(r, book, book_lsb, exp_min, exp_max, lsb_floor)
        ok = (j >= 0) & (g > 0)
        src[ok, t], exp[ok, t], neg[ok, t] = j[ok], e[ok], s[ok]
        gain[ok] += g[ok]
        coef = np.ldexp(np.where(s[ok], -1.0, 1.0), e[ok])
        r[ok] -= coef[:, None] * book[j[ok]]
    return src, exp, neg, gain, r


def plain_fp(
    w: FloatArray,
    cols: IntArray,
    target_db: float,
    nonzeros: int,
    max_factors: int,
    exp_min: int,
    exp_max: int,
    guard_bits: int = GUARD_BITS,
) -> SliceProgram:
    """The published fully parallel algorithm on one slice (used as the ablation baseline).

    Factor ``p`` re-approximates every row with ``nonzeros`` terms taken from the N codewords of
    factor ``p - 1`` (the inputs for ``p = 1``); stop at the slice's own target SQNR.
    """
    st = SliceState.start(w, cols)
    floor = lsb_floor_for(target_db, guard_bits)
    power = float(np.sum(st.target**2))
    allowed = power * 10.0 ** (-target_db / 10.0)
    prev = np.arange(st.n)
    live = np.any(st.target != 0, axis=1)
    for _ in range(max_factors):
        if power == 0.0 or float(st.row_errors().sum()) <= allowed:
            break
        book = st.values[prev]
        src, exp, neg, _, _ = matching_pursuit(
            st.target[live], book, st.lsb[prev], nonzeros, exp_min, exp_max, floor
        )
        src = np.where(src >= 0, prev[np.maximum(src, 0)], -1)
        keep = np.any(src >= 0, axis=1)
        rows = np.nonzero(live)[0][keep]
        ids = st.add_codewords(src[keep], exp[keep], neg[keep])
        st.cur[rows] = ids
        prev = np.unique(st.cur[st.cur >= 0])
        st.rounds += 1
    return st.program()
