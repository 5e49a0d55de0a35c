"""Fixed-point sigmoid and tanh as lookup tables: the activation functions of recurrent cells.

A table holds ``f(k * step)`` for ``k = 0 .. 2**index_bits - 1`` rounded half up to
``out_frac`` fractional bits, over the magnitude ``|x|`` only: both functions are symmetric
(``sigmoid(-x) = 1 - sigmoid(x)``, ``tanh(-x) = -tanh(x)``), so the sign costs a subtraction,
not a second half of the table.  Applying it to an integer ``q`` worth ``q * 2**-frac``::

    m   = |q|                                   (exact)
    k   = min(round_half_up(m * 2**(index_frac - frac)), 2**index_bits - 1)
    v   = entries[k]
    out = v if q >= 0 else (2**out_frac - v  for sigmoid,  -v  for tanh)

so ``out`` is the function of ``x`` rounded to its grid, odd-symmetric exactly.  Beyond the
table (``|x| >= span``) the last entry holds, the saturation both functions approach.

:meth:`ActivationTable.max_error` is the stated error: the largest ``|out * 2**-out_frac -
f(x)|`` over *every real* ``x`` (so over every fixed-point input of any format): ``f`` is
monotone, so on the interval of ``x`` that maps to entry ``k`` the error peaks at its ends,
and the last interval reaches to infinity, where ``f`` is at its limit.  Hardware
(:mod:`nnlcc.hdl.recurrent`) builds exactly these steps: an absolute value, the rounding
adder, a clamp, a ROM of :attr:`ActivationTable.entries` and the sign's subtraction.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError
from nnlcc.ir.fixed_point import IntArray

__all__ = ["FUNCTIONS", "ActivationTable", "Function", "default_table"]

Function = Literal["sigmoid", "tanh"]
FUNCTIONS: tuple[Function, ...] = ("sigmoid", "tanh")

#: ``|x|`` beyond which each function is taken as saturated (its table's span): sigmoid(8) is
#: 1 - 3.4e-4, tanh(4) is 1 - 6.7e-4, both under one output LSB of an 8-bit table.
SPAN_LOG2: dict[str, int] = {"sigmoid": 3, "tanh": 2}


def _f(func: str, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if func == "sigmoid":
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)), dtype=np.float64)
    return np.asarray(np.tanh(x), dtype=np.float64)


@dataclass(frozen=True)
class ActivationTable:
    """``func`` on ``2**index_bits`` entries of ``|x|`` in steps of ``2**-index_frac``, each
    rounded to ``out_frac`` fractional bits (see the module docstring)."""

    func: Function
    index_bits: int
    index_frac: int
    out_frac: int

    def __post_init__(self) -> None:
        if self.func not in FUNCTIONS:
            raise BadInputError(f"activation {self.func!r}: nnlcc has sigmoid and tanh tables")
        if not 1 <= self.index_bits <= 16 or not 1 <= self.out_frac <= 30:
            raise BadInputError(
                f"{self.func} table: index bits must be in 1..16 and output fraction in 1..30"
            )

    @property
    def size(self) -> int:
        return 1 << self.index_bits

    @property
    def one(self) -> int:
        """The integer worth 1.0 at the output."""
        return 1 << self.out_frac

    @functools.cached_property
    def entries(self) -> IntArray:
        """``round_half_up(f(k * 2**-index_frac) * 2**out_frac)`` for every index ``k``."""
        k = np.arange(self.size, dtype=np.float64)
        v = _f(self.func, k * 2.0**-self.index_frac) * self.one
        return np.floor(v + 0.5).astype(np.int64)

    @property
    def out_range(self) -> tuple[int, int]:
        """Exact range of :meth:`apply`'s output."""
        top = int(self.entries.max())
        if self.func == "sigmoid":
            return self.one - top, top
        return -top, top

    def index_shift(self, frac: int) -> int:
        """Right shift from an input with ``frac`` fractional bits to the index grid
        (negative: a left shift, exact)."""
        return frac - self.index_frac

    def index(self, q: npt.ArrayLike, frac: int) -> IntArray:
        """The table index of each integer ``q`` (``frac`` fractional bits)."""
        return self.index_by_shift(q, self.index_shift(frac))

    def index_by_shift(self, q: npt.ArrayLike, shift: int) -> IntArray:
        """The index of ``|q|`` shifted right by ``shift`` (rounded half up), clamped."""
        m = np.abs(np.asarray(q, dtype=np.int64))
        k = (m + (1 << (shift - 1))) >> shift if shift > 0 else m << -shift
        return np.minimum(k, self.size - 1)

    def apply(self, q: npt.ArrayLike, frac: int) -> IntArray:
        """``func`` of ``q * 2**-frac`` as integers with ``out_frac`` fractional bits."""
        qa = np.asarray(q, dtype=np.int64)
        v = self.entries[self.index(qa, frac)]
        neg = self.one - v if self.func == "sigmoid" else -v
        return np.where(qa >= 0, v, neg).astype(np.int64)

    @functools.cached_property
    def max_error(self) -> float:
        """The largest ``|apply(x) - f(x)|`` over every real ``x`` (the module docstring)."""
        step = 2.0**-self.index_frac
        k = np.arange(self.size, dtype=np.float64)
        lo = np.maximum(k - 0.5, 0.0) * step  # entry k serves |x| in [lo, hi)
        hi = (k + 0.5) * step
        v = self.entries / self.one
        limit = 1.0  # both functions' value at +infinity
        f_hi = _f(self.func, hi)
        f_hi[-1] = limit  # the last entry serves every larger |x|
        err = np.maximum(np.abs(_f(self.func, lo) - v), np.abs(f_hi - v))
        return float(err.max())

    def describe(self) -> str:
        """One line: what the table is and its stated error."""
        span = self.size * 2.0**-self.index_frac
        return (
            f"{self.func}: {self.size}-entry table of |x| in steps of 2^-{self.index_frac}"
            f" (saturating at |x| >= {span:g}), {self.out_frac} fractional output bits;"
            f" max error {self.max_error:.2e} ({self.max_error * self.one:.2f} output LSB)"
        )


def default_table(func: Function, bits: int) -> ActivationTable:
    """The table nnlcc uses for ``bits``-bit activations: ``2**bits`` entries spanning
    ``|x| < 2**SPAN_LOG2[func]``, ``bits`` fractional output bits."""
    if bits < SPAN_LOG2[func] + 1:
        raise BadInputError(f"{func} table needs at least {SPAN_LOG2[func] + 1} bits")
    return ActivationTable(func, bits, bits - SPAN_LOG2[func], bits)


def table_lsb_error(table: ActivationTable) -> float:
    """The stated error in output LSBs (for reports)."""
    return math.ceil(table.max_error * table.one * 100) / 100
