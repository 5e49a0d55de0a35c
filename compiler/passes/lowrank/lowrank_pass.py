"""The ``lowrank`` pass: every layer as ``W ≈ U·V + E`` (:mod:`.code`) where a rank pays.

A layer whose spectrum has no knee (``rank=auto`` finds no candidate: a full-rank matrix such
as Gaussian weights) is coded whole by the factor coder that prices cheapest on it, and its
summary says so; an explicit ``rank`` is used as given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import numpy as np

from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.matrix import FloatArray, MatrixCode, MatrixGraph
from nnlcc.ir.truncate import RESERVE_DB, budget_layer, check_truncate_option
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.coding import code_layer
from nnlcc.passes.lowrank.code import FACTOR_CODERS, build, factor_coders
from nnlcc.passes.lowrank.spectrum import Spectrum
from nnlcc.passes.pricing import Pricing, price_code
from nnlcc.passes.share import SharePlan


def plain_best(w: FloatArray, target_db: float, pricing: Pricing, coders: str) -> MatrixCode:
    """``w`` coded whole by the factor coder whose design reaching ``target_db`` prices
    cheapest; one clear error with the best SQNR reached when none reaches it."""
    best: tuple[int, MatrixCode] | None = None
    reached = -math.inf
    for coder in factor_coders(coders).values():
        try:
            code = coder(w, target_db, pricing)
        except BadInputError:
            continue
        got = sqnr_db(w, code.implemented()) if np.any(w) else math.inf
        reached = max(reached, got)
        if got < target_db - 1e-9:
            continue
        luts = price_code(code, pricing, w, target_db).luts
        if best is None or luts < best[0]:
            best = (luts, code)
    if best is None:
        raise BadInputError(
            f"lowrank: no coder among {coders!r} reaches {target_db:.2f} dB (best {reached:.2f} dB)"
        )
    return best[1]


@dataclass(frozen=True)
class Lowrank(Pass):
    """Code every layer as a low-rank part plus a residual, ``W ≈ U·V + E``, at ``sqnr_db``
    (whole-matrix SQNR after truncation): ``rank`` (``auto``: the knees of the singular
    spectrum, each priced; a layer without one is coded whole), ``coders`` (the factor coders
    tried for ``V``, ``U``, ``E``: ``csd``, ``lcc``, ``alkaid`` joined by ``+``), ``truncate``
    (as for csd and lcc).  Each design is priced by the cost model on the board's family; the
    cheapest is kept."""

    name: ClassVar[str] = "lowrank"
    kind: ClassVar[PassKind] = PassKind.MATRIX
    per_layer: ClassVar[bool] = True
    sqnr_db: float = 45.0
    rank: str = "auto"
    coders: str = "csd+lcc+alkaid"
    truncate: str = "auto"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sqnr_db) and 0 < self.sqnr_db <= 150):
            raise PassOptionError("lowrank: sqnr_db must be in (0, 150]")
        if self.rank != "auto" and not (self.rank.isdigit() and int(self.rank) >= 1):
            raise PassOptionError(
                f"lowrank: rank must be 'auto' or a positive integer, not {self.rank!r}"
            )
        bad = [c for c in self.coders.split("+") if c not in FACTOR_CODERS]
        if bad or not self.coders:
            raise PassOptionError(
                f"lowrank: coders must be names from {', '.join(FACTOR_CODERS)} joined by '+',"
                f" not {self.coders!r}"
            )
        check_truncate_option("lowrank", self.truncate)

    @property
    def coding_db(self) -> float:
        return self.sqnr_db + (RESERVE_DB if self.truncate == "auto" else 0.0)

    def build(self, w: FloatArray, pricing: Pricing) -> MatrixCode:
        rank = None if self.rank == "auto" else int(self.rank)
        if rank is None and not Spectrum.of(w).candidates(self.coding_db):
            return plain_best(w, self.coding_db, pricing, self.coders)
        return build(w, self.coding_db, pricing, rank, self.coders)

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        for layer in graph.matrix_layers():
            if ctx.progress:
                ctx.progress(layer.name)
            pricing = Pricing.for_layer(layer, ctx.family)
            try:
                layer.code = code_layer(layer, partial(self.build, pricing=pricing))
            except BadInputError as e:
                raise BadInputError(f"layer {layer.name}: {e}") from e
            shared = SharePlan in layer.notes  # the coding's target is the reduced one's
            budget_layer(layer, self.truncate, None if shared else self.sqnr_db)
