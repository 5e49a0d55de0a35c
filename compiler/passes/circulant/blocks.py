"""Block-circulant matrices: the layout, the Frobenius-optimal projection, the expansion, and
the exact short cyclic-convolution transform the FFT form uses.

Layout
------
A layer's matrix (rows = outputs) is cut into column *groups*: one group of all columns for a
dense layer, one group per spatial tap for a conv (the ``Cout x Cin`` matrix of tap ``t`` holds
columns ``t*Cin .. t*Cin+Cin-1``, see :func:`nnlcc.ir.matrix.conv_matrix`), so a conv is blocked
along its channel axes.  Each group's ``rows x n`` matrix is zero-padded to ``p*b x q*b``
(``p = ceil(rows/b)``, ``q = ceil(n/b)``) and cut into ``b x b`` blocks; block ``(i, j)`` is the
circulant of its vector ``v``::

    C[r, c] = v[(r - c) mod b]          (first column v, every column rotated down by one)

so ``vectors`` has shape ``(groups, p, q, b)`` and the implemented matrix is the expansion cropped
back to ``rows x cols``: the padded rows are never computed, the padded inputs are zero.

Projection
----------
The block-circulant matrix nearest to ``W`` in the Frobenius norm (over the real entries; the
padded ones are free) takes, on each circulant diagonal of each block, the mean of the real
entries on it (0 where a diagonal holds only padding): the sum of squared distances splits
into one independent term per diagonal, each minimized by its mean.  A matrix that is already
block-circulant is returned *exactly* (the common value itself, not a rounded mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = [
    "Layout",
    "crt_forward",
    "crt_inverse",
    "crt_parts",
    "is_power_of_two",
]


def is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


@dataclass(frozen=True)
class Layout:
    """Where the blocks of a ``rows x cols`` matrix lie: ``groups`` is the column indices of
    each group (all the same length ``n``), ``b`` the block size."""

    rows: int
    cols: int
    b: int
    groups: tuple[tuple[int, ...], ...]

    @classmethod
    def dense(cls, rows: int, cols: int, b: int) -> Layout:
        return cls(rows, cols, b, (tuple(range(cols)),))

    @classmethod
    def conv(cls, rows: int, taps: int, cin: int, b: int) -> Layout:
        groups = tuple(tuple(range(t * cin, (t + 1) * cin)) for t in range(taps))
        return cls(rows, taps * cin, b, groups)

    @property
    def n(self) -> int:
        """Columns of one group."""
        return len(self.groups[0])

    @property
    def p(self) -> int:
        return math.ceil(self.rows / self.b)

    @property
    def q(self) -> int:
        return math.ceil(self.n / self.b)

    @property
    def pad_rows(self) -> int:
        return self.p * self.b - self.rows

    @property
    def pad_cols(self) -> int:
        """Padded columns of each group."""
        return self.q * self.b - self.n

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """Shape of the vectors: ``(groups, p, q, b)``."""
        return (len(self.groups), self.p, self.q, self.b)

    @property
    def stored(self) -> int:
        """Numbers stored: one ``b``-vector per block."""
        return math.prod(self.shape)

    def _keys(self) -> tuple[IntArray, npt.NDArray[np.bool_]]:
        """For every entry of a padded group, the index of its (block, diagonal) in the
        flattened ``(p, q, b)`` vectors, and whether it is a real (not padded) entry."""
        b = self.b
        r = np.arange(self.p * b)[:, None]
        c = np.arange(self.q * b)[None, :]
        key = ((r // b) * self.q + c // b) * b + (r - c) % b
        real = (r < self.rows) & (c < self.n)
        return key, real

    def _padded(self, w: FloatArray) -> FloatArray:
        """``(groups, p*b, q*b)``: each group's columns of ``w``, zero-padded."""
        out = np.zeros((len(self.groups), self.p * self.b, self.q * self.b))
        for g, cols in enumerate(self.groups):
            out[g, : self.rows, : self.n] = w[:, list(cols)]
        return out

    def project(self, w: npt.ArrayLike) -> tuple[FloatArray, bool]:
        """The Frobenius-optimal block-circulant vectors of ``w`` and whether ``w`` already is
        block-circulant (then the vectors reproduce it exactly)."""
        wa = np.asarray(w, dtype=np.float64)
        assert wa.shape == (self.rows, self.cols), (wa.shape, self.rows, self.cols)
        key, real = self._keys()
        size = self.p * self.q * self.b
        k = key[real]
        count = np.bincount(k, minlength=size).astype(np.float64)
        pads = self._padded(wa)
        vecs = np.zeros((len(self.groups), size))
        exact = np.zeros_like(vecs)
        for g in range(len(self.groups)):
            vals = pads[g][real]
            vecs[g] = np.bincount(k, weights=vals, minlength=size) / np.maximum(count, 1)
            exact[g, k] = vals  # any one real entry of each diagonal
        exact = exact.reshape(self.shape)
        if np.array_equal(self.expand(exact), wa):
            return exact, True
        return vecs.reshape(self.shape), False

    def expand(self, vectors: npt.ArrayLike) -> FloatArray:
        """The ``rows x cols`` matrix of block vectors ``(groups, p, q, b)``."""
        v = np.asarray(vectors)
        assert v.shape == self.shape, (v.shape, self.shape)
        key, _ = self._keys()
        out = np.zeros((self.rows, self.cols), dtype=v.dtype)
        for g, cols in enumerate(self.groups):
            out[:, list(cols)] = v[g].reshape(-1)[key][: self.rows, : self.n]
        return out

    def too_big(self) -> bool:
        """``b`` larger than both dimensions of a group's matrix (nothing left to share)."""
        return self.b > self.rows and self.b > self.n


# ------------------------------------------------------------------ the exact CRT transform


def crt_parts(b: int) -> list[tuple[bool, int, int]]:
    """The residue rings of ``z**b - 1`` for a power-of-two ``b``, in spectral order:
    ``(negacyclic, length m, depth d)``: ``z - 1`` (cyclic, 1), ``z + 1`` (1), ``z**2 + 1`` (2),
    ..., ``z**(b/2) + 1`` (b/2); a vector of length ``b`` maps to ``b`` spectral values.
    ``d`` is the number of halving steps that produced the ring (its reconstruction scale is
    ``2**-d``)."""
    assert is_power_of_two(b) and b >= 2
    levels = int(math.log2(b))
    parts = [(False, 1, levels), (True, 1, levels)]
    m = 2
    for d in range(levels - 1, 0, -1):
        parts.append((True, m, d))
        m *= 2
    return parts


def crt_forward(x: npt.ArrayLike) -> FloatArray:
    """Residues of the polynomials ``x`` (last axis, length b) modulo the rings of
    :func:`crt_parts`, concatenated: ``lo + hi`` (mod ``z**(n/2) - 1``) recurses, ``lo - hi``
    (mod ``z**(n/2) + 1``) is a ring.  Additions only, exact."""
    v = np.asarray(x, dtype=np.float64)
    neg: list[FloatArray] = []
    while v.shape[-1] > 1:
        h = v.shape[-1] // 2
        lo, hi = v[..., :h], v[..., h:]
        neg.append(lo - hi)
        v = lo + hi
    return np.concatenate([v, *reversed(neg)], axis=-1)


def crt_inverse(s: npt.ArrayLike) -> FloatArray:
    """Inverse of :func:`crt_forward` (halvings: exact for dyadic values in float64)."""
    a = np.asarray(s, dtype=np.float64)
    v = a[..., :1]
    at = 1
    while at < a.shape[-1]:
        neg = a[..., at : 2 * at]
        v = np.concatenate([(v + neg) / 2, (v - neg) / 2], axis=-1)
        at *= 2
    return v


def ring_matrix(u: npt.ArrayLike, negacyclic: bool) -> FloatArray:
    """The ``m x m`` matrix of multiplying by ``u`` modulo ``z**m - 1`` (cyclic) or
    ``z**m + 1`` (negacyclic): ``out[k] = sum_i u[i] x[k - i]``, wrapped terms negated."""
    ua = np.asarray(u)
    m = ua.shape[-1]
    k = np.arange(m)[:, None]
    i = np.arange(m)[None, :]
    d = k - i
    sign = np.where((d < 0) & negacyclic, -1, 1)
    return np.asarray(ua[..., d % m] * sign)
