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

#: Coding targets (dB above the layer's SQNR after truncation) the cheapest design is also
#: coded at when the layer's partial sums are truncated: the coding and the truncation share
#: the error budget, and a coarser truncation narrows every adder.  Gaussian 64x64 and
#: 128x128 at 40 dB (ECP5, price alone, straight): 0.41 dB (the truncation reserve) 66.7k and
#: 235.9k LUTs, 0.8 dB 63.8k and 238.0k, 1.76 dB 64.9k and 227.4k.
MARGINS_DB = (0.8, 1.76)


class LccLike(MatrixCode, Protocol):
    """What the search reads of an LCC code (:class:`~nnlcc.passes.lcc.code.LccCode`)."""

    @property
    def adders(self) -> int: ...

    @property
    def summary_reached(self) -> bool: ...

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


def build_best(
    w: FloatArray,
    opts: LccOptions,
    pricing: Pricing,
    build: Builder,
    layer_db: float | None = None,
) -> LccLike:
    """The cheapest LCC design of ``w`` for ``opts.objective`` (see the module docstring)
    among :func:`choices` (``opts.transpose`` and ``opts.slice`` other than ``auto`` fixed),
    each made by ``build`` with ``opts`` at that choice.

    ``layer_db``: the SQNR the layer keeps after its partial sums are truncated (below
    ``opts.sqnr_db``, the coding target; None: no truncation search).  Each design is then
    priced truncated to it, and the cheapest one is also coded :data:`MARGINS_DB` above it:
    a code closer to ``layer_db`` leaves truncation less noise (narrower adders cost less),
    one further above costs more factors; the cheaper stays."""
    w = np.asarray(w, dtype=np.float64)
    target_db, objective = opts.sqnr_db, opts.objective
    price_db = target_db if layer_db is None else layer_db
    best: tuple[tuple[float, int], LccLike, LccOptions] | None = None
    tried = 0
    shape = (int(w.shape[0]), int(w.shape[1]))

    def key_of(code: LccLike) -> tuple[float, int]:
        if objective == "adders":
            return (float(code.adders), code.adders)
        cost = price_code(code, pricing, w, price_db)
        return (float(cost.luts if objective == "luts" else max(cost.luts, cost.ffs)), code.adders)

    for ch in choices(shape, target_db, opts.transpose, opts.slice):
        tried_opts = dataclasses.replace(opts, transpose=ch.transpose, slice=str(ch.width))
        code = build(w, tried_opts)
        if not code.summary_reached:
            continue
        tried += 1
        key = key_of(code)
        if best is None or key < best[0]:
            best = (key, code, tried_opts)
    if best is None:  # nothing reached the target: the plain build says how far it got
        return build(w, opts)
    if layer_db is not None and objective != "adders":
        for m in MARGINS_DB:
            if layer_db + m <= target_db + 1e-9:
                continue
            code = build(w, dataclasses.replace(best[2], sqnr_db=layer_db + m))
            if not code.summary_reached:
                continue
            tried += 1
            key = key_of(code)
            if key < best[0]:
                best = (key, code, best[2])
    code = best[1]
    code.options["objective"] = objective
    code.options["searched"] = tried
    if objective != "adders":
        code.options[f"est_{objective}_alone"] = int(best[0][0])
    return code
