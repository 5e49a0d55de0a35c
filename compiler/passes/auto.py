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
``csd+lcc+alkaid+lowrank`` and any registered since) chooses the coders tried; each one's
module documents its designs (csd: the fewest weight bits meeting the SQNR; lcc: ``algo=fp``
both ways, the cost-driven search over orientation and slice width and ``algo=fs`` up to
``fs_entries`` weights; alkaid: its solver up to ``peer_entries`` weights, when installed;
lowrank: ``W = U V + E`` where the singular spectrum has a rank worth pricing).

Every layer is priced.  A layer of more than ``full_entries`` weights (a ResNet-34 conv has
0.6 to 2.4 million) is priced on samples of its matrix: each design with a
:attr:`~nnlcc.passes.coder.Design.sample` (csd: a block of columns; lcc: whole slices, at
three slice widths and tilings) codes and prices its sample, costs scaled by the weights
(:mod:`nnlcc.passes.sampled`), and only the cheapest is coded whole.  Lowering and pricing
every candidate of such a layer whole would cost more than the whole compile.

A layer of an imported quantized model keeps its integers (:mod:`nnlcc.ir.imported`): the
coders offer only designs computing exactly those integers (csd and alkaid on them; lcc none),
untruncated, priced whole, and auto refuses any code that does not; only ``--accuracy-drop``,
when the user asks for a drop, codes such a layer at an SQNR like any other
(:meth:`Auto.code_one`'s ``keep``).

The layer's :class:`AutoRecord` note records the choice: the coder, and every candidate's
estimated LUTs and adders or the reason it failed; the report shows them (:func:`auto_choice`).  A layer whose
candidates all fail is an error naming the layer and each coder's reason.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError, NnlccError, PassOptionError
from nnlcc.ir.cost import estimate
from nnlcc.ir.facts import AutoChoice
from nnlcc.ir.family import ECP5, Family, family_option, get_family
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.imported import imported_ints
from nnlcc.ir.lower import lower_layer
from nnlcc.ir.lowered import LoweredLayer
from nnlcc.ir.matrix import MatrixCode, MatrixGraph, MatrixLayer
from nnlcc.ir.notes import JsonNote
from nnlcc.ir.truncate import RESERVE_DB, budget_layer, check_truncate_option
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.coder import CoderContext, Design
from nnlcc.passes.coding import code_layer
from nnlcc.passes.pricing import Pricing
from nnlcc.passes.registry import auto_coders, get_coder
from nnlcc.passes.share import SharePlan


@dataclass(frozen=True)
class CandidateRecord:
    """One candidate in :class:`AutoRecord`: its label and its estimated LUTs and adders (None:
    not priced), or why it failed; ``sampled``: the share of the matrix its price was measured
    on (a layer above ``full_entries``; None: priced whole)."""

    coder: str
    est_luts: int | None = None
    adders: int | None = None
    failed: str | None = None
    sampled: float | None = None

    def to_json(self) -> dict[str, Any]:
        if self.failed is not None:
            return {"coder": self.coder, "failed": self.failed}
        out = {"coder": self.coder, "est_luts": self.est_luts, "adders": self.adders}
        return out | ({"sampled": self.sampled} if self.sampled is not None else {})

    @classmethod
    def from_json(cls, obj: Any) -> CandidateRecord:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("coder"), str):
            raise ValueError("an auto candidate must be a JSON object with its coder")
        if "failed" in obj:
            return cls(obj["coder"], failed=str(obj["failed"]))
        luts, adders = obj.get("est_luts"), obj.get("adders")
        if not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (luts, adders)
        ):
            raise ValueError("an auto candidate's est_luts and adders must be integers or null")
        sampled = obj.get("sampled")
        if sampled is not None and (
            isinstance(sampled, bool) or not isinstance(sampled, int | float)
        ):
            raise ValueError("an auto candidate's sampled share must be a number")
        return cls(obj["coder"], luts, adders, None, None if sampled is None else float(sampled))


@dataclass(frozen=True)
class AutoRecord(JsonNote):
    """``auto``'s choice for a layer, its note (key ``auto``): the chosen candidate's label,
    the SQNR and family every candidate was priced at, each candidate's cost or failure, and
    for a layer too big to price, why it got the unpriced designs alone."""

    key: ClassVar[str] = "auto"
    of_weights: ClassVar[bool] = True
    coder: str
    sqnr_db: float
    family: Family
    candidates: tuple[CandidateRecord, ...]
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "coder": self.coder,
            "sqnr_db": self.sqnr_db,
            "family": self.family.name,
            "candidates": [c.to_json() for c in self.candidates],
        }
        return out | ({"note": self.note} if self.note is not None else {})

    @classmethod
    def from_json(cls, obj: Any) -> AutoRecord:
        keys = ("coder", "sqnr_db", "family", "candidates")
        if not isinstance(obj, Mapping) or any(k not in obj for k in keys):
            raise ValueError(f"auto must be a JSON object with {', '.join(keys)}")
        if not isinstance(obj["candidates"], list):
            raise ValueError("auto's candidates must be a list")
        note = obj.get("note")
        return cls(
            str(obj["coder"]),
            float(obj["sqnr_db"]),
            get_family(str(obj["family"])),
            tuple(CandidateRecord.from_json(c) for c in obj["candidates"]),
            None if note is None else str(note),
        )


@dataclass
class Candidate:
    """One coder's design of a layer: its label, its code and what it costs (or why not)."""

    label: str
    code: MatrixCode | None = None
    luts: int | None = None
    adders: int | None = None
    failed: str | None = None
    lowered: LoweredLayer | None = field(default=None, repr=False)
    sampled: float | None = None
    #: the SQNR (dB) a refused code reached, for the error when every candidate fails
    reached_db: float | None = None

    def record(self) -> CandidateRecord:
        return CandidateRecord(self.label, self.luts, self.adders, self.failed, self.sampled)


@dataclass(frozen=True)
class Auto(Pass):
    """Code every layer with the candidate of fewest estimated LUTs at equal error:
    ``sqnr_db`` (whole-matrix SQNR of each layer after truncation), ``coders`` (the coders
    tried, by default all the registry offers auto: ``csd+lcc+alkaid+lowrank``; see the module
    doc), ``family`` (the FPGA family priced; empty: the board's), ``truncate`` (as for csd and
    lcc), ``full_entries`` (larger layers are priced on samples of their matrix),
    ``peer_entries`` (largest layer alkaid is tried on), ``fs_entries`` (largest layer lcc's
    ``algo=fs`` is tried on)."""

    name: ClassVar[str] = "auto"
    kind: ClassVar[PassKind] = PassKind.MATRIX
    per_layer: ClassVar[bool] = True
    global_options: ClassVar[frozenset[str]] = frozenset({"family"})
    sqnr_db: float = 45.0
    coders: str = field(default_factory=lambda: "+".join(auto_coders()))  # csd+lcc+alkaid+lowrank
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

    def context(self, layer: MatrixLayer, family: Family = ECP5, keep: bool = True) -> CoderContext:
        """What every coder's designs for ``layer`` must meet, priced on ``family`` (see
        :class:`CoderContext`; ``keep``: an imported model's integers are kept)."""
        plan = layer.notes.get(SharePlan)
        return CoderContext(
            sqnr_db=self.sqnr_db,
            truncate=self.truncate,
            coding_db=self.coding_db,
            matrix=plan.reduced if plan is not None else layer.weight,
            priced=layer.weight.size <= self.full_entries,
            peer_entries=self.peer_entries,
            fs_entries=self.fs_entries,
            pricing=Pricing.for_layer(layer, family),
            exact=exact_ints(layer, keep),
        )

    def designs(self, layer: MatrixLayer, family: Family = ECP5, keep: bool = True) -> list[Design]:
        """The candidates for ``layer``: the designs of the chosen coders, in registry order."""
        ctx = self.context(layer, family, keep)
        wanted = set(self.coders.split("+"))
        kinds = [k for k in auto_coders() if k in wanted]
        if ctx.exact is not None and not any(k in wanted for k in ("csd", "alkaid")):
            kinds.append("csd")  # the imported integers need an exact coder
        return [d for k in kinds for d in get_coder(k).candidates(layer, ctx)]

    def _budget(self, layer: MatrixLayer, keep: bool) -> None:
        """The layer's truncation budget: none for kept imported integers."""
        if exact_ints(layer, keep) is not None:
            budget_layer(layer, "off")
        else:
            budget_layer(layer, self.truncate, None if SharePlan in layer.notes else self.sqnr_db)

    def _try(
        self, layer: MatrixLayer, design: Design, family: Family, keep: bool = True
    ) -> Candidate:
        shared = SharePlan in layer.notes
        label = _label(design.label, shared)
        try:
            code = code_layer(layer, design.build)
        except NnlccError as e:
            return Candidate(label, failed=str(e))
        refused = design.refuse(code) if design.refuse is not None else None
        exact = exact_ints(layer, keep)
        if exact is not None and not np.array_equal(code.implemented(), layer.weight):
            refused = "does not compute the imported integers exactly"
        if refused is not None:
            return Candidate(label, failed=refused, reached_db=_reached(layer, code))
        layer.code = code
        self._budget(layer, keep)
        big = layer.weight.size > self.full_entries
        if big or layer.in_fmt is None or layer.out_fmt is None:  # not priced
            return Candidate(label, code=code)
        low = lower_layer(layer, layer.in_fmt)
        return Candidate(label, code, estimate(low.graph, family).luts, low.graph.adders, None, low)

    def price(self, layer: MatrixLayer, family: Family, keep: bool = True) -> list[Candidate]:
        """Every candidate for ``layer`` coded, truncated, lowered and priced on ``family`` (or
        why it failed).  Leaves the last one's code on ``layer``.  ``keep``: an imported
        model's layer keeps its integers (False: coded at ``sqnr_db`` like any)."""
        return [self._try(layer, d, family, keep) for d in self.designs(layer, family, keep)]

    def _sampled(self, layer: MatrixLayer, design: Design) -> Candidate:
        """``design`` of a big layer priced on a sample of its matrix (not coded whole)."""
        label = _label(design.label, SharePlan in layer.notes)
        if design.sample is None:
            return Candidate(label)  # trusted unpriced
        plan = layer.notes.get(SharePlan)
        try:
            cost = design.sample(plan.reduced if plan is not None else layer.weight)
        except NnlccError as e:
            return Candidate(label, failed=str(e))
        refused = design.refuse(cost.code) if design.refuse is not None else None
        if refused is not None:
            return Candidate(label, failed=refused, reached_db=_reached(None, cost.code))
        return Candidate(label, None, cost.luts, cost.adders, sampled=round(cost.share, 4))

    def price_sampled(self, layer: MatrixLayer, family: Family) -> list[Candidate]:
        """A big layer's candidates priced on samples; the cheapest (or, when none has a
        price, the first that did not fail) is then coded whole."""
        designs = self.designs(layer, family)
        tries = [self._sampled(layer, d) for d in designs]
        ok = [i for i, c in enumerate(tries) if c.failed is None]
        if not ok:
            return tries
        best = min(ok, key=lambda i: _price(tries[i]))
        whole = self._try(layer, designs[best], family)
        if whole.failed is not None:
            tries[best] = dataclasses.replace(tries[best], failed=whole.failed)
            return tries
        tries[best] = dataclasses.replace(tries[best], code=whole.code)
        return tries

    def _unmet(self, layer: MatrixLayer, tries: list[Candidate]) -> str:
        """One line: the layer, the SQNR no candidate met, the best one reached, and why each
        candidate failed."""
        reasons = "; ".join(f"{c.label}: {c.failed}" for c in tries)
        got = [c for c in tries if c.reached_db is not None]
        best = max(got, key=lambda c: c.reached_db or -math.inf) if got else None
        reached = f"; best reached: {best.reached_db:.2f} dB ({best.label})" if best else ""
        return (
            f"layer {layer.name}: no auto candidate reaches sqnr_db={self.sqnr_db:g}"
            f" (coded to {self.coding_db:.2f} dB before truncation){reached}: {reasons}"
        )

    def code_one(self, layer: MatrixLayer, family: Family, keep: bool = True) -> Candidate:
        """Code ``layer`` with its cheapest candidate; returns it (with its lowered layer when
        it was priced, valid while the layer's formats stay as they are); ``keep`` as for
        :meth:`price` (kept imported integers are coded whole, never sampled)."""
        exact = exact_ints(layer, keep) is not None
        big = layer.weight.size > self.full_entries and not exact
        tries = self.price_sampled(layer, family) if big else self.price(layer, family, keep)
        ok = [c for c in tries if c.failed is None and (c.code is not None)]
        if not ok:
            raise BadInputError(self._unmet(layer, tries))
        best = min(ok, key=lambda c: c.luts if c.luts is not None else 0)
        assert best.code is not None
        layer.code = best.code
        self._budget(layer, keep)
        note = None
        if exact:
            note = "imported integers kept exactly (csd and alkaid only, no truncation)"
        elif big:
            note = (
                f"{layer.weight.size} weights > full_entries={self.full_entries}: candidates"
                " priced on samples of the matrix (est_luts scaled, requantization not included)"
            )
        records = tuple(c.record() for c in tries)
        layer.notes.put(AutoRecord(best.label, self.sqnr_db, family, records, note))
        return best

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        family = family_option(self.name, self.family) or ctx.family
        for layer in graph.matrix_layers():
            if ctx.progress:
                ctx.progress(layer.name)
            self.code_one(layer, family)


def exact_ints(layer: MatrixLayer, keep: bool = True) -> tuple[npt.NDArray[np.int64], int] | None:
    """The imported integers ``layer`` keeps (``keep``, no share plan), or None."""
    if not keep or SharePlan in layer.notes:
        return None
    return imported_ints(layer)


def _reached(layer: MatrixLayer | None, code: MatrixCode) -> float | None:
    """The whole-matrix SQNR ``code`` reaches (of the layer's own matrix when ``layer`` is
    given and the code is of that shape), or None when it cannot be told."""
    try:
        w_hat = code.implemented()
    except (NnlccError, ValueError):
        return None
    reach = getattr(code, "reached_db", None)
    if layer is not None and w_hat.shape == layer.weight.shape and np.any(layer.weight):
        return float(sqnr_db(layer.weight, w_hat))
    return float(reach) if isinstance(reach, int | float) else None


def _price(c: Candidate) -> float:
    """A candidate's estimated LUTs (unpriced: after every priced one)."""
    return math.inf if c.luts is None else float(c.luts)


def _label(label: str, shared: bool) -> str:
    return f"share+{label}" if shared else label


def auto_choice(layer: MatrixLayer) -> AutoChoice | None:
    """What the report shows of an auto-coded layer: the coder chosen and the runners-up's
    estimated LUTs (or why they failed), from the pass's record; None for other layers."""
    rec = layer.notes.get(AutoRecord)
    if rec is None:
        return None
    others = [
        f"{c.coder} " + (f"failed: {c.failed}" if c.failed is not None else f"{c.est_luts} LUTs")
        for c in rec.candidates
        if c.coder != rec.coder
    ]
    return AutoChoice(rec.coder, rec.sqnr_db, "; ".join(others) or "none")
