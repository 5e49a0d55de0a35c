"""The hardware forms of a block-circulant layer, each lowered to the adder graph.

* ``mcm`` (transposed form): every input is multiplied by the distinct odd constants of its
  column (the vectors of its block column) as one multiple-constant multiplication whose
  CSD terms share subexpressions (:func:`~nnlcc.passes.shift_add.build_terms_sum`), then every
  output sums its rotated products.
* ``fft``: the short cyclic convolution of Agarwal-Cooley / Winograd over the rational factors
  of ``z**b - 1`` (power-of-two ``b``): each block column's inputs are reduced modulo
  ``z - 1, z + 1, z**2 + 1, ..., z**(b/2) + 1`` with additions only, and shared by every block
  row; each residue is multiplied by the block's spectrum constants (a cyclic or negacyclic
  product, shift-add constants), the products are summed over the block columns (and conv taps)
  *in the spectrum*, and each block row is reconstructed once with additions only (the
  reconstruction's halvings are folded into the constants).  The spectrum constants are the only
  rounding: their precision is chosen to meet the layer's error budget
  (:func:`spectrum_for_budget`).
* ``csd``: CSD digits of the expanded block matrix with subexpression sharing
  (:class:`~nnlcc.passes.csd.CsdCode`); ``lcc`` (LCC of the expanded matrix) is built by the
  pass from :class:`~nnlcc.passes.lcc.LccCode`.

Every lowering creates only the adders its outputs need (padded rows are never computed,
padded inputs are zero), and computes its code's ``implemented()`` matrix exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.csd import csd_digits
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.matrix import Term
from nnlcc.passes.circulant.blocks import (
    FloatArray,
    IntArray,
    Layout,
    crt_forward,
    crt_inverse,
    crt_parts,
    ring_matrix,
)
from nnlcc.passes.shift_add import SignedTerm, build_terms_sum

__all__ = [
    "fft_vectors",
    "lower_fft",
    "lower_mcm",
    "spectrum_for_budget",
]

Opt: TypeAlias = Term | None


def _add(graph: AdderGraph, a: Opt, b: Opt, sub: bool) -> Opt:
    """``a ± b`` with one adder (none when either is zero)."""
    if b is not None and sub:
        b = Term(b.node, b.exp, not b.neg)
    if a is None or b is None:
        return a if b is None else b
    assert a.node is not None and b.node is not None
    t = build_terms_sum(graph, [[(a.node, a.exp, a.neg), (b.node, b.exp, b.neg)]], cse=False)[0]
    return t


class _Lazy:
    """A value built on first use (so unused butterflies cost no adders)."""

    def __init__(self, fn: Callable[[], Opt]) -> None:
        self._fn: Callable[[], Opt] | None = fn
        self._val: Opt = None

    @classmethod
    def known(cls, value: Opt) -> _Lazy:
        """A value that is already there (a graph input, a computed spectrum, zero)."""
        lazy = cls(lambda: None)
        lazy._fn, lazy._val = None, value
        return lazy

    def get(self) -> Opt:
        if self._fn is not None:
            self._val, self._fn = self._fn(), None
        return self._val


def _combine(graph: AdderGraph, a: _Lazy, b: _Lazy, sub: bool) -> _Lazy:
    return _Lazy(lambda: _add(graph, a.get(), b.get(), sub))


def _forward(graph: AdderGraph, v: list[_Lazy]) -> list[_Lazy]:
    """:func:`~nnlcc.passes.circulant.blocks.crt_forward` as lazy butterflies."""
    neg: list[list[_Lazy]] = []
    while len(v) > 1:
        h = len(v) // 2
        lo, hi = v[:h], v[h:]
        neg.append([_combine(graph, x, y, True) for x, y in zip(lo, hi, strict=True)])
        v = [_combine(graph, x, y, False) for x, y in zip(lo, hi, strict=True)]
    return v + [x for part in reversed(neg) for x in part]


def _inverse(graph: AdderGraph, s: list[_Lazy]) -> list[_Lazy]:
    """:func:`~nnlcc.passes.circulant.blocks.crt_inverse` without its halvings (they are in
    the spectrum constants): ``lo = c + a``, ``hi = c - a``."""
    v = s[:1]
    at = 1
    while at < len(s):
        neg = s[at : 2 * at]
        v = [_combine(graph, c, a, False) for c, a in zip(v, neg, strict=True)] + [
            _combine(graph, c, a, True) for c, a in zip(v, neg, strict=True)
        ]
        at *= 2
    return v


def _digits(node: int, exp: int, neg: bool, coef: int) -> list[SignedTerm]:
    """``±v[node]·2**exp · coef`` as signed shifted CSD terms."""
    flip = neg != (coef < 0)
    return [(node, exp + pos, flip != (d < 0)) for pos, d in csd_digits(abs(int(coef)))]


def lower_mcm(graph: AdderGraph, inputs: list[int], w_int: IntArray, frac: int) -> list[Term]:
    """Transposed form of the integer matrix ``w_int`` (scale ``2**-frac``): one MCM per input
    over the distinct odd magnitudes of its column, then the rotated sums per output."""
    rows, cols = w_int.shape
    out_rows: list[list[SignedTerm]] = [[] for _ in range(rows)]
    for c in range(cols):
        col = w_int[:, c]
        nz = np.nonzero(col)[0]
        if not len(nz):
            continue
        mags = np.abs(col[nz])
        shifts = [(int(m) & -int(m)).bit_length() - 1 for m in mags]
        odds = [int(m) >> s for m, s in zip(mags, shifts, strict=True)]
        distinct = sorted(set(odds) - {1})
        x = inputs[c]
        made = build_terms_sum(graph, [_digits(x, 0, False, o) for o in distinct], cse=True)
        prod: dict[int, Term] = dict(zip(distinct, made, strict=True))
        prod[1] = Term(x, 0, False)
        for r, o, s in zip(nz, odds, shifts, strict=True):
            t = prod[o]
            assert t.node is not None
            out_rows[int(r)].append((t.node, t.exp + s, t.neg != bool(col[r] < 0)))
    terms = build_terms_sum(graph, out_rows, cse=False)
    return [Term(t.node, t.exp - frac, t.neg) for t in terms]


def _ring_blocks(layout: Layout, spec: IntArray) -> IntArray:
    """``(groups, p, q, b, b)``: each block's spectrum as one block-diagonal matrix of ring
    products (cyclic for ``z - 1``, negacyclic for the others)."""
    b = layout.b
    out = np.zeros((*spec.shape, b), dtype=np.int64)
    at = 0
    for neg, m, _ in crt_parts(b):
        out[..., at : at + m, at : at + m] = ring_matrix(spec[..., at : at + m], neg)
        at += m
    return out


def lower_fft(
    graph: AdderGraph, inputs: list[int], layout: Layout, spec: IntArray, spec_frac: int
) -> list[Term]:
    """The CRT form (see the module doc) of spectrum constants ``spec`` (integers, scale
    ``2**-spec_frac``, the reconstruction's ``2**-depth`` included)."""
    b, p, q = layout.b, layout.p, layout.q
    ring = _ring_blocks(layout, spec)
    xhat: list[list[list[_Lazy]]] = []
    for cols in layout.groups:
        per_group = []
        for j in range(q):
            v = [
                _Lazy.known(Term(inputs[cols[c]], 0, False) if c < len(cols) else None)
                for c in range(j * b, (j + 1) * b)
            ]
            per_group.append(_forward(graph, v))
        xhat.append(per_group)
    spec_rows: list[list[SignedTerm]] = []
    for i in range(p):
        for u in range(b):
            row: list[SignedTerm] = []
            for g in range(len(layout.groups)):
                for j in range(q):
                    for t in np.nonzero(ring[g, i, j, u])[0]:
                        x = xhat[g][j][int(t)].get()
                        if x is not None:
                            assert x.node is not None
                            row += _digits(x.node, x.exp, x.neg, int(ring[g, i, j, u, t]))
            spec_rows.append(row)
    spectra = build_terms_sum(graph, spec_rows, cse=True)
    out: list[Term] = []
    for i in range(p):
        lazies = [
            _Lazy.known(t if t.node is not None else None) for t in spectra[i * b : (i + 1) * b]
        ]
        ys = _inverse(graph, lazies)
        for r in range(min(b, layout.rows - i * b)):
            y = ys[r].get()
            out.append(Term(None, 0) if y is None else Term(y.node, y.exp - spec_frac, y.neg))
    return out


def _depth_scale(b: int) -> FloatArray:
    """``2**-depth`` of every spectral position (the reconstruction's halvings)."""
    return np.concatenate([np.full(m, 2.0**-d) for _, m, d in crt_parts(b)])


def fft_spectrum(vectors: FloatArray, frac: int) -> IntArray:
    """Spectrum constants of real block vectors rounded to ``frac`` fractional bits."""
    s = crt_forward(vectors) * _depth_scale(vectors.shape[-1])
    return np.floor(np.ldexp(s, frac) + 0.5).astype(np.int64)


def fft_vectors(spec: IntArray, frac: int) -> FloatArray:
    """The block vectors the spectrum constants implement (exact in float64)."""
    s = np.ldexp(spec.astype(np.float64), -frac) / _depth_scale(spec.shape[-1])
    return crt_inverse(s)


def spectrum_for_budget(
    layout: Layout, vectors: FloatArray, target_db: float, lo: int, hi: int
) -> tuple[IntArray, int, float]:
    """The coarsest spectrum (fewest fractional bits in ``lo..hi``) whose implemented matrix
    is within ``target_db`` of the projection's; the finest tried if none is.  Returns the
    constants, their fractional bits and the SQNR reached."""
    ref = layout.expand(vectors)
    best: tuple[IntArray, int, float] | None = None
    for frac in range(lo, hi + 1):
        spec = fft_spectrum(vectors, frac)
        got = sqnr_db(ref, layout.expand(fft_vectors(spec, frac)))
        if best is None or got > best[2]:
            best = (spec, frac, got)
        if got >= target_db - 1e-9:
            return spec, frac, got
    assert best is not None
    return best
