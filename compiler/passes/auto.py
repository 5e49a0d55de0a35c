"""The ``auto`` pass, nnlcc's default matrix pass: per layer, the design with the fewest
estimated LUTs at equal error.

The candidates are the designs the registry's coders offer (:meth:`Coder.candidates
<nnlcc.passes.coder.Coder.candidates>`, in registry order: csd, lcc, alkaid, then a user's own).
Every candidate codes the layer (or, when the share pass planned one, its reduced matrix: the
candidates are then ``share+csd``, ``share+lcc``, ...) to the same coding SQNR, the layer's
``sqnr_db`` plus the truncation reserve (:data:`~nnlcc.ir.truncate.RESERVE_DB`, with
``truncate=auto``); its partial sums are then truncated to exactly ``sqnr_db``, the layer is
lowered to its adder graph (requantization included, as the hardware gets it) and the
calibrated cost model (:func:`nnlcc.ir.cost.estimate`) prices it on the board's family.  The
cheapest wins (ties: the earlier candidate), so no layer costs more than its best single coder.

``coders`` (names joined by ``+``; by default every coder the registry offers auto,
``csd+lcc+alkaid`` and any registered since) chooses the coders tried; each one's module
documents its designs (csd: the fewest weight bits meeting the SQNR; lcc: ``algo=fp`` both
ways and ``algo=fs`` up to ``fs_entries`` weights; alkaid: its solver up to ``peer_entries``
weights, when installed).

Compile time: a layer of more than ``full_entries`` weights (a ResNet-34 conv has 0.6 to 2.4
million) gets the designs the coders trust unpriced (lcc with ``transpose=auto``), neither
lowered nor priced here: lowering and pricing every candidate of such a layer costs more than
the whole compile, and LCC beat every other coder on every tall matrix measured (README's
table).

``layer.info["auto"]`` records the choice: the coder, and every candidate's estimated LUTs and
adders or the reason it failed; the report shows them (:func:`auto_choice`).  A layer whose
candidates all fail is an error naming the layer and each coder's reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nnlcc.errors import BadInputError, NnlccError, PassOptionError
from nnlcc.ir.cost import estimate
from nnlcc.ir.facts import AutoChoice
from nnlcc.ir.family import Family, family_option
from nnlcc.ir.lower import lower_layer
from nnlcc.ir.lowered import LoweredLayer
from nnlcc.ir.matrix import MatrixCode, MatrixGraph, MatrixLayer
from nnlcc.ir.truncate import RESERVE_DB, budget_layer, check_truncate_option
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.coder import CoderContext, Design
from nnlcc.passes.coding import code_layer
from nnlcc.passes.registry import auto_coders, get_coder
from nnlcc.passes.share import PLAN

#: ``layer.info`` key of the choice record.
AUTO = "auto"


@dataclass
class Candidate:
    """One coder's design of a layer: its label, its code and what it costs (or why not)."""

    label: str
    code: MatrixCode | None = None
    luts: int | None = None
    adders: int | None = None
    failed: str | None = None
    lowered: LoweredLayer | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        if self.failed is not None:
            return {"coder": self.label, "failed": self.failed}
        return {"coder": self.label, "est_luts": self.luts, "adders": self.adders}


@dataclass(frozen=True)
class Auto(Pass):
    """Code every layer with the candidate of fewest estimated LUTs at equal error:
    ``sqnr_db`` (whole-matrix SQNR of each layer after truncation), ``coders`` (the coders
    tried, by default all the registry offers auto: ``csd+lcc+alkaid``; see the module doc),
    ``family`` (the FPGA family priced; empty: the board's), ``truncate`` (as for csd and
    lcc), ``full_entries`` (larger layers get lcc alone, unpriced), ``peer_entries`` (largest
    layer alkaid is tried on), ``fs_entries`` (largest layer lcc's ``algo=fs`` is tried on)."""

    name: ClassVar[str] = "auto"
    kind: ClassVar[PassKind] = PassKind.MATRIX
    per_layer: ClassVar[bool] = True
    global_options: ClassVar[frozenset[str]] = frozenset({"family"})
    sqnr_db: float = 45.0
    coders: str = field(default_factory=lambda: "+".join(auto_coders()))  # csd+lcc+alkaid
    family: str = ""
    truncate: str = "auto"
    full_entries: int = 1 << 16
    peer_entries: int = 4096
    fs_entries: int = 2048

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sqnr_db) and 0 < self.sqnr_db <= 150):
            raise PassOptionError("auto: sqnr_db must be in (0, 150]")
        chosen = [c for c in self.coders.split("+") if c]
        known = auto_coders()
        if not chosen or any(c not in known for c in chosen):
            raise PassOptionError(
                f"auto: coders must be names from {', '.join(known)} joined by '+',"
                f" not {self.coders!r}"
            )
        family_option(self.name, self.family)
        check_truncate_option("auto", self.truncate)
        if min(self.full_entries, self.peer_entries, self.fs_entries) < 0:
            raise PassOptionError("auto: full_entries, peer_entries and fs_entries must be >= 0")

    @property
    def coding_db(self) -> float:
        """The SQNR every candidate codes to (truncation takes the rest down to sqnr_db)."""
        return self.sqnr_db + (RESERVE_DB if self.truncate == "auto" else 0.0)

    def context(self, layer: MatrixLayer) -> CoderContext:
        """What every coder's designs for ``layer`` must meet (see :class:`CoderContext`)."""
        plan = layer.info.get(PLAN)
        return CoderContext(
            sqnr_db=self.sqnr_db,
            truncate=self.truncate,
            coding_db=self.coding_db,
            matrix=plan.reduced if plan is not None else layer.weight,
            priced=layer.weight.size <= self.full_entries,
            peer_entries=self.peer_entries,
            fs_entries=self.fs_entries,
        )

    def designs(self, layer: MatrixLayer) -> list[Design]:
        """The candidates for ``layer``: the designs of the chosen coders, in registry order;
        a layer too big to price gets those every coder trusts unpriced (``coders`` aside)."""
        ctx = self.context(layer)
        wanted = set(self.coders.split("+"))
        kinds = [k for k in auto_coders() if k in wanted or not ctx.priced]
        return [d for k in kinds for d in get_coder(k).candidates(layer, ctx)]

    def _try(self, layer: MatrixLayer, design: Design, family: Family) -> Candidate:
        shared = layer.info.get(PLAN) is not None
        try:
            code = code_layer(layer, design.build)
        except NnlccError as e:
            return Candidate(design.label, failed=str(e))
        label = _label(design.label, shared)
        refused = design.refuse(code) if design.refuse is not None else None
        if refused is not None:
            return Candidate(label, failed=refused)
        layer.code = code
        budget_layer(layer, self.truncate, None if shared else self.sqnr_db)
        big = layer.weight.size > self.full_entries
        if big or layer.in_fmt is None or layer.out_fmt is None:  # not priced
            return Candidate(label, code=code)
        low = lower_layer(layer, layer.in_fmt)
        return Candidate(label, code, estimate(low.graph, family).luts, low.graph.adders, None, low)

    def price(self, layer: MatrixLayer, family: Family) -> list[Candidate]:
        """Every candidate for ``layer`` coded, truncated, lowered and priced on ``family`` (or
        why it failed).  Leaves the last one's code on ``layer``."""
        return [self._try(layer, d, family) for d in self.designs(layer)]

    def code_one(self, layer: MatrixLayer, family: Family) -> Candidate:
        """Code ``layer`` with its cheapest candidate; returns it (with its lowered layer when
        it was priced, valid while the layer's formats stay as they are)."""
        tries = self.price(layer, family)
        ok = [c for c in tries if c.failed is None]
        if not ok:
            reasons = "; ".join(f"{c.label}: {c.failed}" for c in tries)
            raise BadInputError(f"layer {layer.name}: every auto coder failed ({reasons})")
        best = min(ok, key=lambda c: c.luts if c.luts is not None else 0)
        assert best.code is not None
        layer.code = best.code
        budget_layer(layer, self.truncate, None if layer.info.get(PLAN) else self.sqnr_db)
        record: dict[str, Any] = {
            "coder": best.label,
            "sqnr_db": self.sqnr_db,
            "family": family.name,
            "candidates": [c.record() for c in tries],
        }
        if layer.weight.size > self.full_entries:
            alone = " + ".join(c.label for c in tries)
            record["note"] = (
                f"{layer.weight.size} weights > full_entries={self.full_entries}: {alone} alone"
            )
        layer.info[AUTO] = record
        return best

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        family = family_option(self.name, self.family) or ctx.family
        for layer in graph.matrix_layers():
            if ctx.progress:
                ctx.progress(layer.name)
            self.code_one(layer, family)


def _label(label: str, shared: bool) -> str:
    return f"share+{label}" if shared else label


def auto_choice(layer: MatrixLayer) -> AutoChoice | None:
    """What the report shows of an auto-coded layer: the coder chosen and the runners-up's
    estimated LUTs (or why they failed), from the pass's record; None for other layers."""
    rec = layer.info.get(AUTO)
    if not isinstance(rec, dict):
        return None
    others = []
    for c in rec.get("candidates", []):
        if c["coder"] == rec["coder"]:
            continue
        cost = f"{c['est_luts']} LUTs" if "est_luts" in c else f"failed: {c['failed']}"
        others.append(f"{c['coder']} {cost}")
    return AutoChoice(str(rec["coder"]), rec.get("sqnr_db"), "; ".join(others) or "none")
