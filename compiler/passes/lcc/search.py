"""LCC that minimizes the cost model: the design choices priced in estimated LUTs.

LCC's own algorithms (:mod:`.budget`, :mod:`.fs`) minimize additions for given options; the
options that shape the hardware are chosen here by what the family's LUTs cost
(:func:`nnlcc.passes.pricing.price_code`), with the addition count as the other objective
for the ablation:

* **orientation**: the straight program of ``W`` or the transposed program of ``W.T``;
* **slice width** (aspect ratio): ``round(log2 N)`` is the published choice for a tall
  slice; a wider slice needs fewer row sums but more factors, and at low SQNR (a residual coded
  at a few bits) wider slices win (Gaussian 64x64 at 15 dB: 33.0k LUTs at width 8 against 35.0k
  at 6).

Every combination is factored and priced; the cheapest wins (ties: fewer adders).  The search
is bounded by :data:`MAX_TRIES` designs.  Objectives: ``luts`` (the family's estimated LUTs),
``area`` (the larger of estimated LUTs and flip-flops: ECP5 and xc7 pair every LUT with a
flip-flop, so a design with more flip-flops than LUTs is sized by its flip-flops; deep LCC
programs are, through their delay lines) and ``adders``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from nnlcc.ir.matrix import FloatArray, MatrixCode
from nnlcc.passes.lcc.options import LccOptions
from nnlcc.passes.pricing import Pricing, price_code

#: Slice widths tried, relative to ``round(log2 rows)`` of the orientation.
WIDTH_STEPS = (0, 2, -1, 4)

#: Most designs one search factors and prices.
MAX_TRIES = 8


class LccLike(MatrixCode, Protocol):
    """What the search reads of an LCC code (:class:`~nnlcc.passes.lcc.code.LccCode`)."""

    adders: int
    summary_reached: bool
    options: dict[str, Any]


#: ``build(w, opts)`` -> an LCC code (:meth:`~nnlcc.passes.lcc.code.LccCode.build`).
Builder = Callable[[FloatArray, LccOptions], LccLike]


def base_width(rows: int) -> int:
    """The published slice width, ``round(log2 rows)`` (at least 1)."""
    return max(1, round(math.log2(rows))) if rows > 1 else 1


@dataclass(frozen=True)
class Choice:
    """One LCC design option set (what the search varies)."""

    transpose: Literal["no", "yes"]
    width: int


def choices(
    shape: tuple[int, int], target_db: float, transpose: str = "auto", width: str = "auto"
) -> list[Choice]:
    """The designs worth pricing for a matrix of ``shape`` (rows = outputs); ``transpose``
    and ``width`` other than ``auto`` fix that choice."""
    rows, cols = shape
    out: list[Choice] = []
    sides: list[Literal["no", "yes"]] = (
        ["no", "yes"] if transpose == "auto" else ["yes" if transpose == "yes" else "no"]
    )
    for side in sides:
        n, m = (rows, cols) if side == "no" else (cols, rows)
        base = base_width(n) if width == "auto" else int(width)
        steps = (0,) if width != "auto" else WIDTH_STEPS if target_db >= 25 else (0, 2, 4, 6)
        seen: set[int] = set()
        for d in steps:
            k = min(max(1, base + d), m)
            if k not in seen:
                seen.add(k)
                out.append(Choice(side, k))
    # interleave the orientations so a bounded search sees both
    half = [c for c in out if c.transpose == "no"], [c for c in out if c.transpose == "yes"]
    mixed = [c for pair in zip(*half, strict=False) for c in pair]
    mixed += half[0][len(half[1]) :] + half[1][len(half[0]) :]
    return mixed[:MAX_TRIES]


def build_best(w: FloatArray, opts: LccOptions, pricing: Pricing, build: Builder) -> LccLike:
    """The cheapest LCC design of ``w`` for ``opts.objective`` (see the module docstring)
    among :func:`choices` (``opts.transpose`` and ``opts.slice`` other than ``auto`` fixed),
    each made by ``build`` with ``opts`` at that choice."""
    w = np.asarray(w, dtype=np.float64)
    target_db, objective = opts.sqnr_db, opts.objective
    best: tuple[tuple[float, int], LccLike] | None = None
    tried = 0
    shape = (int(w.shape[0]), int(w.shape[1]))
    for ch in choices(shape, target_db, opts.transpose, opts.slice):
        code = build(w, dataclasses.replace(opts, transpose=ch.transpose, slice=str(ch.width)))
        if not code.summary_reached:
            continue
        tried += 1
        if objective == "adders":
            key = (float(code.adders), code.adders)
        else:
            cost = price_code(code, pricing, w, target_db)
            size = cost.luts if objective == "luts" else max(cost.luts, cost.ffs)
            key = (float(size), code.adders)
        if best is None or key < best[0]:
            best = (key, code)
    if best is None:  # nothing reached the target: the plain build says how far it got
        return build(w, opts)
    code = best[1]
    code.options["objective"] = objective
    code.options["searched"] = tried
    if objective != "adders":
        code.options[f"est_{objective}_alone"] = int(best[0][0])
    return code
