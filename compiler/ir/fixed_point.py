"""The fixed-point rules of nnlcc, in one place.

Every integer format, rounding and saturation decision of the compiler is made here; the adder
graph records the decisions as operations and hardware copies the adder graph.

Conventions
-----------
* A fixed-point number is an integer ``q`` standing for ``q * 2**-frac``.
* Quantizing a real value rounds half up (``floor(v * 2**frac + 1/2)``) and saturates to the
  format's range.  Half-up is what an add-then-arithmetic-shift-right costs in hardware.
* Requantization after a layer adds the bias and the rounding constant in one constant adder,
  shifts right arithmetically (floor), then clamps: to ``[0, hi]`` with ReLU, else
  ``[lo, hi]`` of the output format (saturation, never wrap-around).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError

IntArray = npt.NDArray[np.int64] | npt.NDArray[np.object_]

_FMT_RE = re.compile(r"^([su])(\d+)\.(-?\d+)$")


@dataclass(frozen=True)
class FixedFormat:
    """``bits`` total (sign included when ``signed``), ``frac`` of them after the point."""

    bits: int
    frac: int
    signed: bool

    def __post_init__(self) -> None:
        if self.bits < 1 or self.bits > 62:
            raise BadInputError(f"fixed-point format needs 1..62 bits, got {self.bits}")

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def step(self) -> float:
        return 2.0**-self.frac

    def quantize(self, x: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Round half up and saturate real values to this format's integers."""
        v = np.floor(np.asarray(x, dtype=np.float64) * 2.0**self.frac + 0.5)
        return np.clip(v, self.lo, self.hi).astype(np.int64)

    def to_real(self, q: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.asarray(q, dtype=np.float64) * 2.0**-self.frac

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.bits}.{self.frac}"

    @classmethod
    def parse(cls, text: str) -> FixedFormat:
        """Parse ``s8.4`` (signed, 8 bits, 4 fractional) or ``u8.8``."""
        m = _FMT_RE.match(text.strip())
        if not m:
            raise BadInputError(f"bad fixed-point format {text!r}; write e.g. s8.4 or u8.7")
        return cls(bits=int(m.group(2)), frac=int(m.group(3)), signed=m.group(1) == "s")


def integer_bits_for(max_abs: float) -> int:
    """Bits left of the point needed so that ``max_abs`` is representable (may be negative)."""
    if not math.isfinite(max_abs):
        raise BadInputError(f"cannot choose a fixed-point format for magnitude {max_abs}")
    if max_abs <= 0.0:
        return 0
    return math.floor(math.log2(max_abs)) + 1


def choose_format(max_abs: float, bits: int, signed: bool) -> FixedFormat:
    """The format of ``bits`` bits with the most fractional bits that still holds ``max_abs``."""
    int_bits = integer_bits_for(max_abs)
    frac = bits - (1 if signed else 0) - int_bits
    return FixedFormat(bits=bits, frac=frac, signed=signed)


def weight_frac_bits(max_abs: float, bits: int) -> int:
    """Fractional bits of a signed ``bits``-bit weight format holding ``max_abs`` without clipping.

    The largest weight rounds to at most ``2**(bits-1) - 1``.
    """
    if max_abs <= 0.0:
        return 0
    frac = bits - 1 - integer_bits_for(max_abs)
    while round(math.ldexp(max_abs, frac)) > (1 << (bits - 1)) - 1:
        frac -= 1
    return frac


def quantize_weights(w: npt.NDArray[np.float64], bits: int) -> tuple[npt.NDArray[np.int64], int]:
    """Signed ``bits``-bit integers and the shared fractional bits of a weight matrix."""
    frac = weight_frac_bits(float(np.max(np.abs(w))) if w.size else 0.0, bits)
    return np.floor(np.ldexp(w, frac) + 0.5).astype(np.int64), frac


@dataclass(frozen=True)
class Requant:
    """Requantization of one output: ``clamp((acc + const) >> shift, lo, hi)``.

    ``acc`` is the accumulator, an integer worth ``acc * 2**acc_exp``; ``const`` holds the bias
    at the accumulator's scale plus the half-LSB rounding constant; ``shift`` may be negative
    (a left shift, exact).
    """

    const: int
    shift: int
    lo: int
    hi: int

    def apply(self, acc: IntArray) -> IntArray:
        t = acc + self.const
        t = t >> self.shift if self.shift >= 0 else t << -self.shift
        return np.clip(t, self.lo, self.hi)


def requant_plan(acc_exp: int, bias: float, out: FixedFormat, relu: bool) -> Requant:
    """The requantization from an accumulator with LSB ``2**acc_exp`` to format ``out``."""
    if not math.isfinite(bias):
        raise BadInputError(f"bias {bias} is not finite")
    shift = -out.frac - acc_exp
    const = math.floor(bias * 2.0**-acc_exp + 0.5)
    if shift > 0:
        const += 1 << (shift - 1)
    lo = max(out.lo, 0) if relu else out.lo
    return Requant(const=const, shift=shift, lo=lo, hi=out.hi)


def bits_for_range(lo: int, hi: int) -> tuple[int, bool]:
    """Width and signedness of the narrowest two's-complement integer holding ``[lo, hi]``."""
    if lo >= 0:
        return max(hi.bit_length(), 1), False
    return max(max(hi, 0).bit_length(), (-lo - 1).bit_length()) + 1, True


def sqnr_db(reference: npt.ArrayLike, approx: npt.ArrayLike) -> float:
    """Signal-to-quantization-noise ratio of ``approx`` against ``reference``, in dB."""
    ref = np.asarray(reference, dtype=np.float64)
    err = ref - np.asarray(approx, dtype=np.float64)
    p_sig = float(np.sum(ref * ref))
    p_err = float(np.sum(err * err))
    if p_err == 0.0:
        return math.inf
    if p_sig == 0.0:
        return -math.inf
    return 10.0 * math.log10(p_sig / p_err)


# --------------------------------------------------------------------------- CNN layers
# Residual adds and average pools requantize like a matrix layer (const add, arithmetic
# shift right, clamp): only the accumulator differs.

POOL_MULT_BITS = 16
"""Significant bits of the reciprocal an average pool multiplies by when its window size is
not a power of two."""


@dataclass(frozen=True)
class AddPlan:
    """Residual add of ``a`` (format ``fa``) and ``b`` (format ``fb``):
    ``requant.apply((a << sa) + (b << sb))`` (both aligned to the finer of the two scales)."""

    sa: int
    sb: int
    requant: Requant


def add_plan(fa: FixedFormat, fb: FixedFormat, out: FixedFormat, relu: bool) -> AddPlan:
    """Align two differently scaled tensors exactly (left shifts), add, requantize to ``out``
    (round half up, saturate; ``relu`` clamps at zero)."""
    frac = max(fa.frac, fb.frac)
    return AddPlan(
        sa=frac - fa.frac, sb=frac - fb.frac, requant=requant_plan(-frac, 0.0, out, relu)
    )


@dataclass(frozen=True)
class PoolPlan:
    """Average pool: ``requant.apply(mult * sum)`` where ``sum`` is the exact integer sum of
    the window (padding counts as zeros)."""

    mult: int
    requant: Requant


def avg_pool_plan(taps: int, fin: FixedFormat, out: FixedFormat, relu: bool) -> PoolPlan:
    """Division of a window sum by ``taps``, requantized to ``out`` with round half up.

    A power-of-two ``taps`` is an exact shift (``mult = 1``).  Otherwise the sum is multiplied
    by ``mult = round(2**s / taps)`` with ``s`` chosen so that ``mult`` has
    :data:`POOL_MULT_BITS` significant bits, and the shift absorbs ``s``: the result is
    ``round_half_up(sum * mult / 2**s)`` rescaled, within ``sum * 2**-(s+1)`` input LSBs of the
    true mean before rounding (a constant multiplier in hardware, no divider).
    """
    if taps < 1:
        raise BadInputError(f"average pool over {taps} elements")
    if taps & (taps - 1) == 0:
        s, mult = taps.bit_length() - 1, 1
    else:
        s = POOL_MULT_BITS + taps.bit_length() - 1
        mult = math.floor(2.0**s / taps + 0.5)
    return PoolPlan(mult=mult, requant=requant_plan(-fin.frac - s, 0.0, out, relu))
