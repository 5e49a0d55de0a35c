"""LCC that minimizes the cost model: the design choices priced in estimated LUTs.

LCC's own algorithms (:mod:`.budget`, :mod:`.fs`) minimize additions for given options; the
options that shape the hardware are chosen here by what the family's LUTs cost
(:func:`nnlcc.passes.pricing.price_code`), with the addition count as the other objective
for the ablation:

* **orientation**: the straight program of ``W`` or the transposed program of ``W.T``;
* **slice width** (aspect ratio): ``round(log2 N)`` is the published choice for a tall
  slice; a wider slice needs fewer row sums but more factors, and at low SQNR (a residual coded
  at a few bits) wider slices win (Gaussian 64x64 at 15 dB: 33.0k LUTs at width 8 against 35.0k
  at 6);
* **look-ahead** of the term search (more candidates per step, more compile time).

Every combination is factored and priced; the cheapest wins (ties: fewer adders).  The search
is bounded by :data:`MAX_TRIES` designs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nnlcc.ir.matrix import FloatArray
from nnlcc.passes.lcc.code import LccCode, slice_width
from nnlcc.passes.pricing import Pricing, price_code

Objective = Literal["luts", "adders"]

#: Slice widths tried, relative to ``round(log2 rows)`` of the orientation.
WIDTH_STEPS = (0, 2, -1, 4)

#: Most designs one search factors and prices.
MAX_TRIES = 8


@dataclass(frozen=True)
class Choice:
    """One LCC design option set (what the search varies)."""

    transpose: Literal["no", "yes"]
    width: int
    lookahead: int = 2


def choices(shape: tuple[int, int], target_db: float, transpose: str = "auto") -> list[Choice]:
    """The designs worth pricing for a matrix of ``shape`` (rows = outputs)."""
    rows, cols = shape
    out: list[Choice] = []
    sides: list[Literal["no", "yes"]] = (
        ["no", "yes"] if transpose == "auto" else ["yes" if transpose == "yes" else "no"]
    )
    for side in sides:
        n, m = (rows, cols) if side == "no" else (cols, rows)
        base = slice_width(n, "auto")
        steps = WIDTH_STEPS if target_db >= 25 else (0, 2, 4, 6)
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


def build_best(
    w: FloatArray,
    target_db: float,
    pricing: Pricing,
    objective: Objective = "luts",
    transpose: str = "auto",
    options: dict[str, object] | None = None,
) -> LccCode:
    """The cheapest LCC design of ``w`` (``objective``: estimated LUTs of ``pricing.family``,
    or adders) among :func:`choices`; ``options`` are passed to :meth:`LccCode.build`."""
    w = np.asarray(w, dtype=np.float64)
    opts = dict(options or {})
    best: tuple[tuple[float, int], LccCode] | None = None
    tried: list[dict[str, object]] = []
    for ch in choices((int(w.shape[0]), int(w.shape[1])), target_db, transpose):
        code = LccCode.build(
            w,
            target_db,
            transpose=ch.transpose,
            slice_option=str(ch.width),
            lookahead=ch.lookahead,
            **opts,  # type: ignore[arg-type]
        )
        if not code.summary_reached:
            continue
        if objective == "luts":
            cost = price_code(code, pricing, w, target_db)
            key = (float(cost.luts), code.adders)
        else:
            key = (float(code.adders), code.adders)
        tried.append({"transpose": ch.transpose, "slice": ch.width, objective: key[0]})
        if best is None or key < best[0]:
            best = (key, code)
    if best is None:  # nothing reached the target: the plain build says how far it got
        return LccCode.build(w, target_db, transpose=transpose, **opts)  # type: ignore[arg-type]
    code = best[1]
    code.options["objective"] = objective
    code.options["searched"] = len(tried)
    code.options["est_luts_alone" if objective == "luts" else "adders_alone"] = (
        int(best[0][0]) if math.isfinite(best[0][0]) else best[0][0]
    )
    return code
