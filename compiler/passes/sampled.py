"""Pricing the designs of a big layer on a sample of its matrix.

Lowering, truncating and pricing every candidate of a ResNet-scale layer (0.6 to 2.4 million
weights) costs minutes each; coding one costs seconds.  A design is priced instead on a
sample that keeps what its cost per weight depends on, and its estimated LUTs scale with the
weights.  Each coder picks its own sample (:attr:`nnlcc.passes.coder.Design.sample`):

* **LCC, transposed** (slices of outputs, each factored over all inputs): whole slices of
  output rows, evenly spread; every slice is coded on its own within the one error budget,
  so a sample of slices has the per-weight cost of all of them
  (:mod:`nnlcc.passes.lcc.coder`);
* **LCC, straight** (slices of inputs over all outputs): whole slices of input columns;
* **CSD with sharing**: a contiguous block of columns over all rows, quantized on the layer's
  own grid, its shared pairs searched in the same window as the whole layer's partial search
  (the window pairs each term with its neighbours in column order, so a block much wider than
  the window keeps their frequencies across all rows; :mod:`nnlcc.passes.csd`).

:func:`sampled_cost` codes the sample, prices it alone
(:func:`~nnlcc.passes.pricing.price_code`) and scales; the result says which share of the
matrix it saw, so a report can tell an estimate from an exact price.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nnlcc.ir.matrix import FloatArray, MatrixCode
from nnlcc.passes.pricing import Pricing, price_code

IntArray = npt.NDArray[np.int64]

#: Weights a sample keeps at most (a few seconds to code and price any candidate).
SAMPLE_WEIGHTS = 1 << 16

#: Fewest whole slices an LCC sample keeps.
MIN_SLICES = 2


@dataclass(frozen=True)
class Sample:
    """Rows and columns of a matrix a candidate is priced on."""

    rows: IntArray
    cols: IntArray
    shape: tuple[int, int]

    @property
    def share(self) -> float:
        """Share of the matrix's weights the sample holds."""
        return len(self.rows) * len(self.cols) / max(self.shape[0] * self.shape[1], 1)

    def of(self, w: FloatArray) -> FloatArray:
        return np.ascontiguousarray(w[np.ix_(self.rows, self.cols)])


def spread(n: int, groups: int, size: int) -> IntArray:
    """``groups`` runs of ``size`` consecutive indices evenly spread over ``0..n-1``."""
    if groups * size >= n:
        return np.arange(n, dtype=np.int64)
    starts = np.linspace(0, n - size, groups).round().astype(np.int64)
    return np.unique(np.concatenate([np.arange(s, s + size) for s in starts]))


def lcc_sample(shape: tuple[int, int], transposed: bool, width: int) -> Sample:
    """Whole slices of ``width`` outputs (transposed) or inputs (straight)."""
    rows, cols = shape
    everything = np.arange(rows if transposed else cols, dtype=np.int64)
    other = cols if transposed else rows
    slices = max(MIN_SLICES, SAMPLE_WEIGHTS // max(width * other, 1))
    picked = spread(len(everything), slices, width)
    if transposed:
        return Sample(picked, np.arange(cols, dtype=np.int64), shape)
    return Sample(np.arange(rows, dtype=np.int64), picked, shape)


def column_block(shape: tuple[int, int]) -> Sample:
    """A contiguous block of columns over all rows (at least 64 columns, or all)."""
    rows, cols = shape
    width = min(cols, max(64, SAMPLE_WEIGHTS // max(rows, 1)))
    start = (cols - width) // 2
    return Sample(np.arange(rows, dtype=np.int64), np.arange(start, start + width), shape)


@dataclass(frozen=True)
class SampledCost:
    """A candidate priced on a sample: its estimated LUTs and adders for the whole matrix."""

    luts: int
    adders: int
    share: float
    code: MatrixCode


def straight_sums(shape: tuple[int, int], sample: Sample, width: int) -> int:
    """Row-sum adders of a straight LCC program that scaling its sample misses: each row sums
    ``E - 1`` slice results, the sample's ``E_s - 1`` scale to ``(E_s - 1) E / E_s``."""
    rows, cols = shape
    e, e_s = math.ceil(cols / width), math.ceil(len(sample.cols) / width)
    return max(0, round(rows * (e - 1 - (e_s - 1) * e / max(e_s, 1))))


def sampled_cost(
    w: FloatArray,
    sample: Sample,
    build: Callable[[FloatArray, Sample], MatrixCode],
    pricing: Pricing,
    target_db: float,
    extra_adders: int = 0,
) -> SampledCost:
    """``build(w[sample], sample)`` priced alone and scaled to the whole matrix, plus
    ``extra_adders`` the scaling misses at the sample's LUTs per adder."""
    sub = sample.of(w)
    code = build(sub, sample)
    cost = price_code(code, pricing, sub, target_db)
    scale = 1.0 / sample.share if sample.share > 0 else math.inf
    adders = int(code.summary().get("adders", cost.features.adder_chains))
    per_adder = cost.luts / max(adders, 1)
    luts = cost.luts * scale + extra_adders * per_adder
    return SampledCost(round(luts), round(adders * scale) + extra_adders, sample.share, code)
