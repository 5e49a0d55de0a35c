"""Pricing on samples (big layers in ``auto``): samples keep whole LCC slices or a block of
columns over all rows, and the scaled price is close to the exact price of the whole code."""

from __future__ import annotations

import numpy as np
import pytest

from nnlcc.ir.fixed_point import quantize_weights
from nnlcc.ir.matrix import DenseLayer
from nnlcc.passes import sampled
from nnlcc.passes.coder import CoderContext
from nnlcc.passes.csd import CsdCode, CsdCoder
from nnlcc.passes.lcc import LccCode, LccOptions
from nnlcc.passes.lcc.coder import LccCoder
from nnlcc.passes.pricing import Pricing, price_code
from nnlcc.passes.sampled import (
    Sample,
    column_block,
    lcc_sample,
    sampled_cost,
    straight_sums,
)


def test_samples_keep_whole_slices_and_all_of_the_other_side() -> None:
    s = lcc_sample((48, 300), transposed=True, width=8)
    assert len(s.cols) == 300 and len(s.rows) % 8 == 0 and 0 < s.share <= 1
    s = lcc_sample((48, 300), transposed=False, width=6)
    assert len(s.rows) == 48 and len(s.cols) % 6 == 0
    b = column_block((48, 300))
    assert len(b.rows) == 48 and np.all(np.diff(b.cols) == 1)  # contiguous
    tiny = lcc_sample((4, 5), transposed=True, width=8)
    assert tiny.share == 1.0  # nothing to sample: the whole matrix


@pytest.mark.parametrize("transposed", [True, False])
def test_sampled_lcc_price_is_close_to_the_exact_one(
    monkeypatch: pytest.MonkeyPatch, transposed: bool
) -> None:
    monkeypatch.setattr(sampled, "SAMPLE_WEIGHTS", 1500)
    w = np.random.default_rng(1).laplace(size=(40, 160))
    pr = Pricing()
    side = "yes" if transposed else "no"
    width = 7 if transposed else 5

    def build(m: np.ndarray, _: Sample | None = None) -> LccCode:
        return LccCode.build(m, LccOptions(sqnr_db=35, transpose=side, slice=str(width)))

    s = lcc_sample(w.shape, transposed, width)
    assert s.share < 0.5
    extra = 0 if transposed else straight_sums(w.shape, s, width)
    est = sampled_cost(w, s, build, pr, 35, extra)
    exact = price_code(build(w), pr, w, 35).luts
    assert abs(est.luts - exact) / exact < 0.12, (est.luts, exact)


def test_sampled_csd_uses_the_layers_grid() -> None:
    w = np.random.default_rng(2).normal(size=(24, 200))
    w_int, frac = quantize_weights(w, 8)
    s = column_block(w.shape)

    def build(_: np.ndarray, smp: Sample) -> CsdCode:
        return CsdCode(w_int=w_int[np.ix_(smp.rows, smp.cols)], frac=frac)

    est = sampled_cost(w, s, build, Pricing(), 30)
    assert isinstance(est.code, CsdCode) and est.code.frac == frac
    assert est.luts > 0 and est.adders > 0


def test_big_layer_designs_are_priced_on_samples_or_say_why() -> None:
    """A layer too big to price whole: csd and lcc offer designs with a sampled price, and
    the cheapest codes the whole matrix."""
    w = np.random.default_rng(3).normal(size=(16, 64))
    layer = DenseLayer(name="fc", weight=w, bias=np.zeros(16))
    ctx = CoderContext(sqnr_db=30.0, truncate="auto", coding_db=30.4, matrix=w, priced=False)
    designs = [d for c in (CsdCoder(), LccCoder()) for d in c.candidates(layer, ctx)]
    assert {d.label.split("{")[0] for d in designs} == {"csd", "lcc"}
    assert all(d.sample is not None for d in designs)
    costs = [d.sample(w) for d in designs if d.sample is not None]
    assert all(c.share == 1.0 and c.luts > 0 for c in costs)  # this one is small: all of it
    best = designs[min(range(len(costs)), key=lambda i: costs[i].luts)]
    assert best.build(w).implemented().shape == w.shape
