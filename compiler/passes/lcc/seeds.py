"""Shared two-term subexpressions offered to every row of a slice (sharing inside LCC).

Matching pursuit's first rounds are its weakest: a row's first paid term is picked from a book
that holds only the ``K`` inputs and the other rows' single-term starts (measured on a
2304x11 Laplace slice at 40 dB: 3.7 dB per adder in round two against 6 dB later).  Common
subexpression elimination builds exactly the codewords those rounds lack: the two-term sums
``x_i ± x_j`` of a slice's inputs.  They are put in the book before the first round, at one
adder each *when used*: a row takes one as its free first term or as a paid term like any
other codeword, and the seeds no row uses are dropped (:func:`prune_unused`).

Measured (additions per row of one slice at 40.4 dB, budget FP with look-ahead 2): 2304x8
Laplace 4.60 -> 4.36 with seeds at shift 0 (all relative shifts up to 1: 4.34; pairs plus
triples: worse, too few triples are reused); 2304x11 6.43 -> 6.18; 128x7 5.79 -> 5.61.  At a
few dB they do not pay (a row needs two or three terms, and a seed taken as its first costs
the adder a free single input would not): Gaussian 64x64 at 15 dB, width 12, 1910 adders
without, 2064 with; hence :data:`SEEDS_MIN_DB`.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from nnlcc.passes.lcc.fp import SliceProgram

#: Targets (dB) from which ``seeds=auto`` uses them.
SEEDS_MIN_DB = 25.0

#: One seed: ``x_i + (-1 if neg else 1) * x_j`` with ``i < j`` (slice input ids).
Seed = tuple[int, int, bool]


def pair_seeds(k: int) -> list[Seed]:
    """Every ``x_i ± x_j`` of ``k`` inputs."""
    return [(i, j, neg) for i, j in itertools.combinations(range(k), 2) for neg in (False, True)]


def install(
    seeds: list[Seed],
    widths: list[int],
    cw: npt.NDArray[np.float64],
    nb: npt.NDArray[np.float64],
    src: npt.NDArray[np.int32],
    negs: npt.NDArray[np.bool_],
    k: int,
) -> None:
    """Write the seeds as codewords ``k..k+len(seeds)-1`` of every slice (``cw``: values,
    ``nb``: squared norms, ``src``/``negs``: their two terms).  A seed reading an input a
    narrower slice lacks is left zero there (never chosen, then pruned)."""
    for q, (i, j, neg) in enumerate(seeds):
        c = k + q
        src[:, c, 0], src[:, c, 1] = i, j
        negs[:, c, 1] = neg
        for e, ke in enumerate(widths):
            if j < ke:
                cw[e, c, i] = 1.0
                cw[e, c, j] = -1.0 if neg else 1.0
                nb[e, c] = 2.0


def prune_unused(p: SliceProgram) -> SliceProgram:
    """``p`` without the codewords nothing reads (no output, no live codeword): ids are
    renumbered, the computed matrix is unchanged."""
    k = p.width
    n = k + len(p.src)
    live = np.zeros(n, dtype=np.bool_)
    live[:k] = True
    live[p.out[p.out >= 0]] = True
    for i in range(len(p.src) - 1, -1, -1):  # a codeword reads only earlier ones
        if live[k + i]:
            used = p.src[i][p.src[i] >= 0]
            live[used] = True
    if live.all():
        return p
    new_id = np.cumsum(live) - 1
    keep = live[k:]
    src = p.src[keep]
    src = np.where(src >= 0, new_id[np.maximum(src, 0)], -1).astype(p.src.dtype)
    out = np.where(p.out >= 0, new_id[np.maximum(p.out, 0)], -1).astype(p.out.dtype)
    return SliceProgram(
        cols=p.cols,
        scale=p.scale,
        src=src,
        exp=p.exp[keep],
        neg=p.neg[keep],
        out=out,
        block=p.block,
        rounds=p.rounds,
    )
