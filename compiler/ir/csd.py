"""Canonical signed digit (CSD) arithmetic: the non-adjacent form of integers (the signed-digit
form with the fewest nonzero digits) and the plain-CSD addition count every report compares with.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def csd_digits(v: int) -> list[tuple[int, int]]:
    """Nonzero CSD digits of ``v`` as ``(position, +1|-1)``, lowest position first."""
    out: list[tuple[int, int]] = []
    pos = 0
    while v != 0:
        if v & 1:
            d = 2 - (v & 3)  # +1 if v = 1 mod 4, -1 if v = 3 mod 4
            out.append((pos, d))
            v -= d
        v >>= 1
        pos += 1
    return out


def csd_nonzeros(values: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Number of nonzero CSD digits of every integer in ``values`` (vectorized)."""
    v = np.abs(np.asarray(values, dtype=np.int64))
    count = np.zeros(v.shape, dtype=np.int64)
    while np.any(v):  # the same digit recurrence as csd_digits, on whole arrays
        odd = v & 1
        count += odd
        v = (v - odd * (2 - (v & 3))) >> 1
    return count


def csd_adders(w_int: npt.ArrayLike) -> int:
    """Additions of the plain CSD baseline: per row, its total nonzero digits minus one."""
    nz = csd_nonzeros(w_int)
    if nz.size == 0:  # no rows, or rows without entries: nothing to add
        return 0
    per_row = nz.reshape(nz.shape[0], -1).sum(axis=1)
    return int(np.sum(np.maximum(per_row - 1, 0)))
