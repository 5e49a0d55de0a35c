"""Requantization of an imported layer: its rounding modes, its exact output format, and the
folding of non-power-of-two scales (the rules; :mod:`nnlcc.ir.lower` builds the adders).

nnlcc's own requantization (:func:`nnlcc.ir.fixed_point.requant_plan`) rounds half up and
rescales by a power of two.  An imported model fixes both: its quantizer rounds as its
``rounding_mode`` says (half to even for QONNX ``ROUND`` and ONNX ``QuantizeLinear``), and
its scales need not be powers of two.  A :class:`Rescale` computes, for an accumulator ``acc``
(LSB ``2**acc_exp``) of a row with gain ``g`` and IR bias ``b``,

    ``q = clamp(rnd((acc * mult + const) / 2**shift), lo, hi)``

the integer of ``rnd(g * (acc * 2**acc_exp + b) / out_scale)``.  When the ratio
``g * 2**acc_exp / out_scale`` and the scaled bias are dyadic rationals (every scale a power
of two, the bias on a power-of-two grid no finer than :data:`BIAS_GUARD` bits below the
accumulator's), ``mult`` and ``const`` are exactly them (``exact``): the plan equals the
model's arithmetic bit for bit.  Otherwise ``mult`` carries :data:`GAIN_BITS` significant
bits of the ratio (float32's precision, what the model's own arithmetic keeps) and the plan
says it is not exact; nothing is rounded without the report saying so.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from nnlcc.ir.fixed_point import FixedFormat, IntArray, bits_for_range
from nnlcc.ir.imported import ActQuant, ImportedQuant, Rounding

__all__ = [
    "BIAS_GUARD",
    "GAIN_BITS",
    "GUARD_BITS",
    "Rescale",
    "exact_format",
    "rescale_plan",
    "row_plan",
]

#: Significant bits of a non-power-of-two requantization multiplier.
GAIN_BITS = 24
#: Fractional bits below the accumulator's LSB a bias may need and still be added exactly.
BIAS_GUARD = 30
#: Extra fractional bits of an exact-output layer whose rows have non-power-of-two gains.
GUARD_BITS = 8


@dataclass(frozen=True)
class Rescale:
    """``clamp(rnd((acc * mult + const) / 2**shift), lo, hi)``; ``rnd`` is ``rounding``
    (``BIPOLAR``: +1 where the scaled value is >= 0, else -1, no clamp)."""

    mult: int
    const: int
    shift: int
    lo: int
    hi: int
    rounding: Rounding
    exact: bool

    def apply(self, acc: npt.ArrayLike) -> IntArray:
        """The reference semantics, on Python integers (the adder graph must agree)."""
        t = np.asarray(acc, dtype=object) * self.mult + self.const
        if self.rounding is Rounding.BIPOLAR:
            return np.where(t >= 0, 1, -1).astype(np.int64)
        k = self.shift
        fl = t >> k
        if k > 0 and self.rounding is Rounding.CEIL:
            fl = fl + ((t - (fl << k)) != 0)
        elif k > 0 and self.rounding in (Rounding.ROUND, Rounding.ROUND_ODD):
            rem = t - (fl << k)
            half = 1 << (k - 1)
            odd = fl & 1 == (1 if self.rounding is Rounding.ROUND else 0)
            fl = fl + (rem > half) + ((rem == half) & odd)
        return np.clip(fl, self.lo, self.hi).astype(np.int64)


def _log2_den(x: Fraction) -> int | None:
    """``k`` with ``x * 2**k`` an integer and the denominator a power of two; None otherwise."""
    d = x.denominator
    return d.bit_length() - 1 if d & (d - 1) == 0 else None


def rescale_plan(
    acc_exp: int,
    gain: float,
    bias: float,
    out_scale: float,
    lo: int,
    hi: int,
    rounding: Rounding,
    relu: bool,
) -> Rescale:
    """The plan of one output row (see the module docstring); ``bias`` is the IR bias
    (``b_ir``), ``out_scale`` the real value of one output LSB."""
    if not (math.isfinite(bias) and math.isfinite(gain) and gain > 0 and out_scale > 0):
        raise ValueError(f"rescale of gain {gain}, bias {bias}, scale {out_scale}")
    g, s = Fraction(gain), Fraction(out_scale)
    ratio = g * Fraction(2) ** acc_exp / s
    offset = g * Fraction(bias) / s
    kr, kc = _log2_den(ratio), _log2_den(offset)
    exact = kr is not None
    if kr is None:  # GAIN_BITS significant bits of the ratio
        kr = max(0, GAIN_BITS - 1 - math.floor(math.log2(ratio)))
    limit = kr + BIAS_GUARD
    if kc is None or kc > limit:
        exact, kc = False, limit
    k = max(kr, kc, 0)
    scale = Fraction(2) ** k
    mult, const = ratio * scale, offset * scale
    if mult.denominator != 1 or const.denominator != 1:
        mult, const = Fraction(round(mult)), Fraction(math.floor(const + Fraction(1, 2)))
    if relu:  # a Relu next to the quantizer: no negative integers (none at all: zero)
        lo = max(lo, 0)
        hi = max(hi, lo)
    return Rescale(int(mult), int(const), k, lo, hi, rounding, exact)


def row_plan(
    facts: ImportedQuant,
    row: int,
    acc_exp: int,
    bias: float,
    out_fmt: FixedFormat,
    relu: bool,
) -> Rescale:
    """The plan of output ``row`` of an imported layer: to its output quantizer, or (none) to
    the exact output format ``out_fmt`` the quantize pass chose (:func:`exact_format`)."""
    out: ActQuant | None = facts.output
    if out is not None:
        return rescale_plan(
            acc_exp,
            facts.row_gain(row),
            bias,
            out.scale,
            out.lo,
            out.hi,
            out.centered_rounding,
            relu,
        )
    plan = rescale_plan(
        acc_exp,
        facts.row_gain(row),
        bias,
        2.0**-out_fmt.frac,
        out_fmt.lo,
        out_fmt.hi,
        Rounding.ROUND,
        relu,
    )
    # no quantizer: exact only when nothing is rounded
    return plan if plan.shift == 0 else dataclasses.replace(plan, exact=False)


def exact_format(
    weight_int: npt.NDArray[np.int64],
    weight_frac: int,
    bias: npt.NDArray[np.float64],
    in_fmt: FixedFormat,
    gains: tuple[float, ...],
    relu: bool,
) -> FixedFormat:
    """The output format of an imported layer without an output quantizer: every value of
    ``gain * (W @ x + b)`` for inputs in ``in_fmt``'s range, at the accumulator's LSB (finer
    where a bias needs it, up to :data:`GUARD_BITS` bits, and as much again where gains are
    not powers of two) - so the layer's output is the model's value, not a rounding of it,
    wherever the model is integer-exact."""
    frac = in_fmt.frac + weight_frac
    need = 0
    for b in bias.tolist():
        k = _log2_den(Fraction(b) * Fraction(2) ** frac)
        need = max(need, GUARD_BITS if k is None else min(k, GUARD_BITS))
    frac += need + (GUARD_BITS if gains else 0)
    w = np.asarray(weight_int, dtype=object)
    lo_in, hi_in = in_fmt.lo, in_fmt.hi
    lo = np.sum(np.minimum(w * lo_in, w * hi_in), axis=1) if w.size else np.zeros(len(w))
    hi = np.sum(np.maximum(w * lo_in, w * hi_in), axis=1) if w.size else np.zeros(len(w))
    shift = frac - in_fmt.frac - weight_frac
    lo_all, hi_all = 0, 0
    for r, b in enumerate(bias.tolist()):
        g = gains[r] if gains else 1.0
        bq = Fraction(b) * Fraction(2) ** frac
        rl = (Fraction(int(lo[r])) * 2**shift + bq) * Fraction(g)
        rh = (Fraction(int(hi[r])) * 2**shift + bq) * Fraction(g)
        lo_all = min(lo_all, math.floor(rl))
        hi_all = max(hi_all, math.ceil(rh))
    if relu:
        lo_all = 0
    bits, signed = bits_for_range(lo_all, hi_all)
    return FixedFormat(bits=bits, frac=frac, signed=signed)
