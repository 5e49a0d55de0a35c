"""Requantization of imported layers (nnlcc.ir.rescale): the plan is the model's arithmetic
(exact rationals, its rounding mode), and the adder graph lowering builds computes the plan."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.imported import ActQuant, Rounding
from nnlcc.ir.lower import _rescale
from nnlcc.ir.rescale import GAIN_BITS, Rescale, exact_format, rescale_plan

MODES = [Rounding.ROUND, Rounding.FLOOR, Rounding.CEIL, Rounding.BIPOLAR, Rounding.ROUND_ODD]


def _round(v: Fraction, mode: Rounding) -> int:
    if mode is Rounding.FLOOR:
        return math.floor(v)
    if mode is Rounding.CEIL:
        return math.ceil(v)
    if mode is Rounding.BIPOLAR:
        return 1 if v >= 0 else -1
    if mode is Rounding.ROUND_ODD:
        return round(v + 1) - 1
    return round(v)  # Python rounds Fractions half to even, as ONNX and numpy do


@settings(max_examples=80, deadline=None)
@given(
    acc_exp=st.integers(-14, 2),
    out_exp=st.integers(-8, 4),
    bias_num=st.integers(-(2**12), 2**12),
    bias_exp=st.integers(-16, 0),
    gain_exp=st.integers(-2, 2),
    lo=st.integers(-200, 0),
    span=st.integers(0, 300),
    mode=st.sampled_from(MODES),
    relu=st.booleans(),
    neg=st.booleans(),
)
def test_power_of_two_plans_are_exact_and_the_graph_computes_them(
    acc_exp: int,
    out_exp: int,
    bias_num: int,
    bias_exp: int,
    gain_exp: int,
    lo: int,
    span: int,
    mode: Rounding,
    relu: bool,
    neg: bool,
) -> None:
    bias = math.ldexp(bias_num, bias_exp)
    gain = 2.0**gain_exp
    plan = rescale_plan(acc_exp, gain, bias, 2.0**out_exp, lo, lo + span, mode, relu)
    assert plan.exact
    acc = np.arange(-3000, 3001, 13, dtype=np.int64)
    g = AdderGraph.with_inputs([(-3000, 3000)])
    g.outputs = [_rescale(g, 0, plan, neg)]
    got = g.evaluate((-acc if neg else acc).reshape(-1, 1))[:, 0]
    g.check_ranges((-acc if neg else acc).reshape(-1, 1))
    want = []
    for a in acc.tolist():
        v = Fraction(gain) * (Fraction(a) * Fraction(2) ** acc_exp + Fraction(bias))
        q = _round(v / Fraction(2) ** out_exp, mode)
        if mode is not Rounding.BIPOLAR:
            low = max(lo, 0) if relu else lo
            q = min(max(q, low), max(lo + span, low))
        want.append(q)
    assert got.tolist() == want
    assert plan.apply(acc).tolist() == want


def test_negated_term_is_the_negative_accumulator() -> None:
    plan = Rescale(mult=1, const=3, shift=2, lo=-50, hi=50, rounding=Rounding.ROUND, exact=True)
    g = AdderGraph.with_inputs([(-100, 100)])
    g.outputs = [_rescale(g, 0, plan, True)]
    x = np.arange(-100, 101).reshape(-1, 1)
    assert g.evaluate(x)[:, 0].tolist() == plan.apply(-x[:, 0]).tolist()


@settings(max_examples=60, deadline=None)
@given(
    gain=st.floats(1.0, 1.999, allow_nan=False),
    scale=st.floats(1e-3, 1.0, allow_nan=False),
    mode=st.sampled_from(MODES[:3]),
)
def test_non_power_of_two_gains_keep_gain_bits(gain: float, scale: float, mode: Rounding) -> None:
    """A multiplier of GAIN_BITS significant bits: within a relative 2^-GAIN_BITS of the
    ratio, not exact (reported), and the graph still computes the plan."""
    plan = rescale_plan(-10, gain, 0.0, scale, -128, 127, mode, False)
    ratio = Fraction(gain) * Fraction(2) ** -10 / Fraction(scale)
    if ratio.denominator & (ratio.denominator - 1):
        assert not plan.exact
        assert abs(Fraction(plan.mult, 2**plan.shift) / ratio - 1) < Fraction(1, 2**GAIN_BITS - 1)
    acc = np.arange(-5000, 5001, 37)
    g = AdderGraph.with_inputs([(-5000, 5000)])
    g.outputs = [_rescale(g, 0, plan)]
    assert g.evaluate(acc.reshape(-1, 1))[:, 0].tolist() == plan.apply(acc).tolist()


def test_zero_row_is_a_constant() -> None:
    plan = rescale_plan(-6, 1.0, 0.75, 2.0**-2, -8, 7, Rounding.ROUND, False)
    g = AdderGraph.with_inputs([(-1, 1)])
    g.outputs = [_rescale(g, None, plan)]
    assert g.evaluate(np.zeros((1, 1), np.int64))[0, 0] == 3


def test_exact_format_holds_every_output() -> None:
    """No quantizer after an imported layer: its output format holds W @ x + b exactly."""
    w = np.array([[3, -7, 1], [0, 2, -5]])
    fin = FixedFormat(8, 4, True)
    bias = np.array([0.125, -1.0 / 256])  # the second needs two bits below the accumulator
    fmt = exact_format(w, 2, bias, fin, (), False)
    assert fmt.frac == 4 + 2 + 2
    x = np.array([[fin.lo, fin.hi, fin.lo], [fin.hi, fin.lo, fin.hi], [0, 0, 0]])
    y = (x @ w.T) * 2.0 ** -(4 + 2) + bias
    q = y * 2.0**fmt.frac
    assert np.array_equal(q, np.round(q)) and q.min() >= fmt.lo and q.max() <= fmt.hi


def test_act_quant_matches_float32_quantization() -> None:
    """onnxruntime rounds x / scale then adds the zero point; qonnx rounds the sum: with an
    odd zero point, ties go to even for one and to odd (centered) for the other."""
    x = np.array([0.25, 0.375, -1.0, 10.0, 0.0625, 2**-4 * 5])
    qdq = ActQuant(0.125, 3, 0, 15, Rounding.ROUND)
    y = np.clip(np.round(x.astype(np.float32) / np.float32(0.125)) + 3, 0, 15) - 3
    assert qdq.quantize(x).tolist() == y.astype(int).tolist()
    assert (qdq.lo, qdq.hi) == (-3, 12) and str(qdq.fmt) == "s5.3"
    assert qdq.centered_rounding is Rounding.ROUND
    qonnx = ActQuant(0.125, 3, 0, 15, Rounding.ROUND, zp_in_rounding=True)
    y = np.round(np.clip(x.astype(np.float32) / np.float32(0.125) + 3, 0, 15)) - 3
    assert qonnx.quantize(x).tolist() == y.astype(int).tolist()
    assert qonnx.quantize(x).tolist() != qdq.quantize(x).tolist()  # 0.0625 / 0.125 is a tie
    assert qonnx.centered_rounding is Rounding.ROUND_ODD
