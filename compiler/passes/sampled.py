"""Pricing the candidates of a big layer on a sample of its matrix.

Lowering, truncating and pricing every candidate of a ResNet-scale layer (0.6 to 2.4 million
weights) costs minutes each; coding one costs seconds.  A candidate is priced instead on a
sample that keeps what its cost per weight depends on, and its estimated LUTs scale with the
weights:

* **LCC, transposed** (slices of outputs, each factored over all inputs): whole slices of
  output rows, evenly spread; every slice is coded on its own within the one error budget,
  so a sample of slices has the per-weight cost of all of them;
* **LCC, straight** (slices of inputs over all outputs): whole slices of input columns;
* **CSD with sharing**: a contiguous block of columns over all rows, quantized on the layer's
  own grid, its shared pairs searched in the same window as the whole layer's partial search
  (the window pairs each term with its neighbours in column order, so a block much wider than
  the window keeps their frequencies across all rows).

:func:`sampled_cost` codes the sample with the candidate's builder, prices it alone
(:func:`~nnlcc.passes.pricing.price_code`) and scales; the result says which share of the
matrix it saw, so a report can tell an estimate from an exact price.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nnlcc.errors import NnlccError
from nnlcc.ir.csd import csd_nonzeros
from nnlcc.ir.fixed_point import quantize_weights
from nnlcc.ir.matrix import FloatArray, MatrixCode
from nnlcc.passes.csd import CsdCode
from nnlcc.passes.lcc.code import TILE_ROWS, LccCode
from nnlcc.passes.lcc.search import base_width
from nnlcc.passes.pricing import Pricing, price_code
from nnlcc.passes.shift_add import CSE_EFFORT, MIN_WINDOW

IntArray = npt.NDArray[np.int64]

#: Weights a sample keeps at most (a few seconds to code and price any candidate).
SAMPLE_WEIGHTS = 1 << 16

#: Fewest whole slices an LCC sample keeps.
MIN_SLICES = 2

#: The LCC designs a big layer is priced with: (transposed, slice width over ``round(log2
#: N)``, ``tile_rows``).  On a Laplace 256x2304 matrix at 40 dB (ECP5, against CSD with
#: sharing): transposed width 11 tiled 0.767, width 15 tiled 0.757, width 11 untiled 0.720,
#: width 15 untiled 0.702.
LCC_VARIANTS = ((True, 0, TILE_ROWS), (True, 4, 0), (True, 0, 0), (False, 0, TILE_ROWS))


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


def _spread(n: int, groups: int, size: int) -> IntArray:
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
    picked = _spread(len(everything), slices, width)
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


@dataclass(frozen=True)
class Priced:
    """One candidate of a big layer: its label, how to code the whole matrix, and its
    sampled price (or why it failed)."""

    label: str
    build: Callable[[FloatArray], MatrixCode]
    cost: SampledCost | None = None
    failed: str | None = None

    def record(self) -> dict[str, object]:
        if self.cost is None:
            return {"coder": self.label, "failed": self.failed or "not priced"}
        return {
            "coder": self.label,
            "est_luts": self.cost.luts,
            "adders": self.cost.adders,
            "sampled": round(self.cost.share, 4),
        }


def price_big(
    w: FloatArray,
    coding_db: float,
    pricing: Pricing,
    csd_bits: int | None,
    wanted: set[str],
) -> list[Priced]:
    """The candidates of a big matrix (CSD with sharing and the LCC designs of
    :data:`LCC_VARIANTS`) priced on samples; alkaid and the low-rank coder are not tried at
    this size (their search time grows too fast)."""
    out: list[Priced] = []
    shape = (int(w.shape[0]), int(w.shape[1]))
    if "csd" in wanted and csd_bits is not None:
        bits = csd_bits
        w_int, frac = quantize_weights(w, bits)
        terms = int(csd_nonzeros(w_int).sum())
        window = max(MIN_WINDOW, CSE_EFFORT // max(terms, 1))  # the whole layer's search

        def csd_sample(_: FloatArray, s: Sample) -> MatrixCode:
            sub = w_int[np.ix_(s.rows, s.cols)]
            n = int(csd_nonzeros(sub).sum())
            return CsdCode(w_int=sub, frac=frac, cse=True, cse_effort=window * max(n, 1))

        full = Priced(
            f"csd{{weight_bits={bits}}}", lambda m: CsdCode.from_weights(m, bits, cse=True)
        )
        out.append(_priced(full, w, column_block(shape), csd_sample, pricing, coding_db))
    if "lcc" in wanted:
        for tr, step, tiles in LCC_VARIANTS:
            side = "yes" if tr else "no"
            width = base_width(shape[1] if tr else shape[0]) + step
            opts = {"transpose": side, "slice": str(width), "tile_rows": str(tiles)}
            label = "lcc{" + ",".join(f"{k}={v}" for k, v in opts.items()) + "}"

            def lcc_build(
                m: FloatArray,
                _: Sample | None = None,
                side: str = side,
                k: int = width,
                t: int = tiles,
            ) -> MatrixCode:
                return LccCode.build(m, coding_db, transpose=side, slice_option=str(k), tile_rows=t)

            smp = lcc_sample(shape, tr, width)
            extra = 0 if tr else straight_sums(shape, smp, width)
            p = Priced(label, lcc_build)
            out.append(_priced(p, w, smp, lcc_build, pricing, coding_db, extra))
    return out


def _priced(
    p: Priced,
    w: FloatArray,
    sample: Sample,
    build: Callable[[FloatArray, Sample], MatrixCode],
    pricing: Pricing,
    target_db: float,
    extra: int = 0,
) -> Priced:
    try:
        cost = sampled_cost(w, sample, build, pricing, target_db, extra)
    except NnlccError as e:
        return Priced(p.label, p.build, failed=str(e))
    if isinstance(cost.code, LccCode) and not cost.code.summary_reached:
        return Priced(p.label, p.build, failed=f"target not reached: {cost.code.reached_db:.2f} dB")
    return Priced(p.label, p.build, cost=cost)
