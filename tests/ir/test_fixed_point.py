import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnlcc.errors import BadInputError
from nnlcc.ir.fixed_point import (
    FixedFormat,
    bits_for_range,
    choose_format,
    quantize_weights,
    requant_plan,
    sqnr_db,
)


def test_format_ranges_and_text() -> None:
    f = FixedFormat.parse("s8.4")
    assert (f.lo, f.hi, f.step) == (-128, 127, 1 / 16)
    assert str(f) == "s8.4"
    u = FixedFormat.parse("u5.4")
    assert (u.lo, u.hi) == (0, 31)
    with pytest.raises(BadInputError):
        FixedFormat.parse("q8.4")


def test_quantize_rounds_half_up_and_saturates() -> None:
    f = FixedFormat(8, 0, True)
    assert f.quantize([0.5, -0.5, 1.5, -1.5, 1000, -1000]).tolist() == [1, 0, 2, -1, 127, -128]


@given(st.floats(1e-6, 1e6), st.integers(2, 24), st.booleans())
def test_choose_format_holds_max_without_saturation(m: float, bits: int, signed: bool) -> None:
    f = choose_format(m, bits, signed)
    assert m <= f.hi * f.step + f.step  # fits (within rounding of the top value)
    assert m >= (f.hi + 1) * f.step / 2  # and uses the top bit


@given(st.lists(st.floats(-100, 100), min_size=1, max_size=30), st.integers(2, 16))
def test_quantize_weights_within_bits(ws: list[float], bits: int) -> None:
    w = np.array(ws)
    q, frac = quantize_weights(w, bits)
    assert np.all(np.abs(q) <= (1 << (bits - 1)) - 1)
    if np.any(w):
        assert np.max(np.abs(q * 2.0**-frac - w)) <= 2.0**-frac / 2 + 1e-12


@given(
    st.integers(-(10**6), 10**6),
    st.integers(-12, 4),
    st.floats(-50, 50),
    st.sampled_from(["s8.3", "u8.4", "s12.6", "u4.0"]),
    st.booleans(),
)
def test_requant_matches_real_arithmetic(
    acc: int, acc_exp: int, bias: float, fmt: str, relu: bool
) -> None:
    out = FixedFormat.parse(fmt)
    rq = requant_plan(acc_exp, bias, out, relu)
    got = int(rq.apply(np.array([acc]))[0])
    real = acc * 2.0**acc_exp + math.floor(bias * 2.0**-acc_exp + 0.5) * 2.0**acc_exp
    if relu:
        real = max(real, 0.0)
    want = min(max(math.floor(real * 2.0**out.frac + 0.5), rq.lo), rq.hi)
    assert got == want


@given(st.integers(-(2**40), 2**40), st.integers(0, 2**40))
def test_bits_for_range_is_tight(lo: int, span: int) -> None:
    hi = lo + span
    bits, signed = bits_for_range(lo, hi)
    if signed:
        assert -(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1
        assert bits == 1 or lo < -(1 << (bits - 2)) or hi > (1 << (bits - 2)) - 1
    else:
        assert lo >= 0 and hi < (1 << bits)
        assert bits == 1 or hi >= (1 << (bits - 1))


def test_sqnr() -> None:
    assert sqnr_db([1, 0], [1, 0]) == math.inf
    assert abs(sqnr_db([1.0], [0.9]) - 20.0) < 1e-9
