"""Fully sequential LCC: grow the codebook one adder at a time.

Every step spends exactly one adder where it reduces the slice error most: some row ``n``
replaces its codeword ``a_n`` by ``a_n ± 2**e * b_j`` with ``b_j`` *any* codeword built so far
(inputs, other rows' codewords, older versions), so the newest, best codewords are usable at
once.  This is what makes FS cheaper in adders than FP and also what makes its adder chains
deep (reported as depth).

The published FS re-searches every row each step, O(steps * rows * codebook); here each row
keeps its best offer, a new codeword is only checked against the other rows (O(rows * K)) and
only the updated row is searched again over the whole codebook, which gives the same choices.
Arithmetic is exact for the reasons given in :mod:`nnlcc.passes.lcc.fp` (shared LSB floor).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

from nnlcc.passes.lcc.fp import (
    GUARD_BITS,
    FloatArray,
    IntArray,
    SliceProgram,
    SliceState,
    best_power,
    lsb_floor_for,
)


@numba.njit(cache=True)
def _offer(
    r: FloatArray, v: FloatArray, nbj: float, lo: int, exp_max: int, best: float
) -> tuple[float, int, bool]:
    """Gain, exponent and sign of the best ``±2**e * v`` for residual ``r`` if it beats
    ``best`` (else gain ``best``, exponent 0)."""
    if nbj <= 0.0 or lo > exp_max:
        return best, 0, False
    p = 0.0
    for t in range(len(r)):
        p += r[t] * v[t]
    if p * p <= best * nbj:
        return best, 0, False
    g_best, e_best = best_power(abs(p), nbj, lo, exp_max, best)
    return g_best, e_best, p < 0.0


@numba.njit(cache=True)
def _search_row(
    r: FloatArray,
    values: FloatArray,
    nb: FloatArray,
    lsb: IntArray,
    n: int,
    exp_min: int,
    exp_max: int,
    floor: int,
) -> tuple[int, int, bool, float]:
    best, bj, be, bs = 0.0, -1, 0, False
    for j in range(n):
        lo = max(exp_min, floor - lsb[j])
        g, e, s = _offer(r, values[j], nb[j], lo, exp_max, best)
        if g > best:
            best, bj, be, bs = g, j, e, s
    return bj, be, bs, best


@numba.njit(cache=True, nogil=True)
def _fs_kernel(
    target: FloatArray,
    values: FloatArray,
    lsb: IntArray,
    allowed: float,
    exp_min: int,
    exp_max: int,
    floor: int,
    max_adds: int,
) -> tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_], IntArray]:
    rows, k = target.shape
    cap = values.shape[0]
    src = np.full((cap, 2), -1, dtype=np.int64)
    exps = np.zeros((cap, 2), dtype=np.int64)
    negs = np.zeros((cap, 2), dtype=np.bool_)
    nb = np.zeros(cap)
    for j in range(k):
        nb[j] = 1.0
    n = k
    cur = np.full(rows, -1, dtype=np.int64)
    resid = target.copy()
    err = np.zeros(rows)
    for i in range(rows):
        err[i] = np.sum(resid[i] * resid[i])
    # free start: every row becomes its best single shifted input (a wire, no adder)
    for i in range(rows):
        if err[i] <= 0.0:
            continue
        j, e, s, g = _search_row(resid[i], values, nb, lsb, n, exp_min, exp_max, floor)
        if j < 0:
            continue
        c = -math.ldexp(1.0, e) if s else math.ldexp(1.0, e)
        values[n] = c * values[j]
        lsb[n] = lsb[j] + e
        nb[n] = np.sum(values[n] * values[n])
        src[n, 0], exps[n, 0], negs[n, 0] = j, e, s
        resid[i] -= values[n]
        err[i] = np.sum(resid[i] * resid[i])
        cur[i] = n
        n += 1
    bj = np.full(rows, -1, dtype=np.int64)
    be = np.zeros(rows, dtype=np.int64)
    bs = np.zeros(rows, dtype=np.bool_)
    bg = np.zeros(rows)
    for i in range(rows):
        if cur[i] >= 0 and err[i] > 0.0:
            bj[i], be[i], bs[i], bg[i] = _search_row(
                resid[i], values, nb, lsb, n, exp_min, exp_max, floor
            )
    total = np.sum(err)
    adds = 0
    while total > allowed and adds < max_adds and n < cap:
        i = int(np.argmax(bg))
        if bg[i] <= 0.0:
            break
        j, e, s = bj[i], be[i], bs[i]
        c = -math.ldexp(1.0, e) if s else math.ldexp(1.0, e)
        values[n] = values[cur[i]] + c * values[j]
        lsb[n] = min(lsb[cur[i]], lsb[j] + e)
        nb[n] = np.sum(values[n] * values[n])
        src[n, 0], src[n, 1] = cur[i], j
        exps[n, 1], negs[n, 1] = e, s
        resid[i] -= c * values[j]
        total -= err[i]
        err[i] = np.sum(resid[i] * resid[i])
        total += err[i]
        cur[i] = n
        n += 1
        adds += 1
        lo = max(exp_min, floor - lsb[n - 1])
        for r in range(rows):  # the new codeword as an offer to every other row
            if r != i and cur[r] >= 0:
                g, e2, s2 = _offer(resid[r], values[n - 1], nb[n - 1], lo, exp_max, bg[r])
                if g > bg[r]:
                    bj[r], be[r], bs[r], bg[r] = n - 1, e2, s2, g
        bj[i], be[i], bs[i], bg[i] = _search_row(
            resid[i], values, nb, lsb, n, exp_min, exp_max, floor
        )
    return n, src, exps, negs, cur


def fs_slice(
    w: FloatArray,
    cols: IntArray,
    allowed: float,
    target_db: float,
    max_adds: int,
    exp_min: int,
    exp_max: int,
    guard_bits: int = GUARD_BITS,
) -> SliceProgram:
    """FS on one slice until its squared error (layer units) is at most ``allowed``."""
    st = SliceState.start(w, cols)
    rows, k = st.target.shape
    cap = k + rows + max_adds
    values = np.zeros((cap, k))
    values[:k] = np.eye(k)
    lsb = np.zeros(cap, dtype=np.int64)
    n, src, exps, negs, cur = _fs_kernel(
        st.target,
        values,
        lsb,
        allowed / st.scale2,
        exp_min,
        exp_max,
        lsb_floor_for(target_db, guard_bits),
        max_adds,
    )
    st.values, st.lsb, st.n, st.cur = values, lsb, n, cur
    st.src, st.exp, st.neg = [src[k:n].astype(np.int32)], [exps[k:n].astype(np.int16)], [negs[k:n]]
    prog = st.program()
    prog.rounds = int(prog.depths().max()) if n > k else 0
    return prog
