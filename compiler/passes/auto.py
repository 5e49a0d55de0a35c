"""The ``auto`` pass, nnlcc's default matrix pass: per layer, the design with the fewest
estimated LUTs at equal error.

Every candidate codes the layer (or, when the share pass planned one, its reduced matrix: the
candidates are then ``share+csd``, ``share+lcc``, ...) to the same coding SQNR, the layer's
``sqnr_db`` plus the truncation reserve (:data:`~nnlcc.passes.truncation.RESERVE_DB`, with
``truncate=auto``); its partial sums are then truncated to exactly ``sqnr_db``, the layer is
lowered to its adder graph (requantization included, as the hardware gets it) and the
calibrated cost model (:func:`nnlcc.ir.cost.estimate`) prices it on the board's family.  The
cheapest wins (ties: the earlier candidate), so no layer costs more than its best single coder.

Candidates (``coders``, joined by ``+``):

* ``csd``: CSD with shared subexpressions at the fewest weight bits meeting the SQNR;
* ``lcc``: LCC (``algo=fp``) in both orientations (``transpose=no`` and ``yes``, the published
  slice width), the cost-driven search over orientation and slice width
  (``lcc{objective=luts}``, :mod:`nnlcc.passes.lcc.search`), and ``algo=fs`` on layers of at
  most ``fs_entries`` weights;
* ``alkaid``: alkaid's CMVM solution (:mod:`nnlcc.passes.alkaid`) at the CSD weight bits, when
  alkaid is installed and the layer has at most ``peer_entries`` weights (seconds);
* ``lowrank``: ``W = U V + E`` (:mod:`nnlcc.passes.lowrank`), on layers whose singular
  spectrum has a knee worth pricing, of at most ``full_entries`` weights.

Every layer is priced.  A layer of more than ``full_entries`` weights (a ResNet-34 conv has
0.6 to 2.4 million) is priced on samples of its matrix (:mod:`nnlcc.passes.sampled`: whole
LCC slices, a block of columns for CSD, costs scaled by the weights), CSD and LCC at three
slice widths in each orientation; only the cheapest is coded whole.

``layer.info["auto"]`` records the choice: the coder, and every candidate's estimated LUTs and
adders or the reason it failed; the report shows them (:func:`auto_facts`).  A layer whose
candidates all fail is an error naming the layer and each coder's reason.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nnlcc.errors import BadInputError, NnlccError, PassOptionError
from nnlcc.ir.cost import FAMILIES, estimate
from nnlcc.ir.fixed_point import quantize_weights, sqnr_db
from nnlcc.ir.lower import lower_layer
from nnlcc.ir.lowered import LoweredLayer
from nnlcc.ir.matrix import FloatArray, MatrixCode, MatrixGraph, MatrixLayer
from nnlcc.ir.truncate import TRUNCATION
from nnlcc.passes import alkaid
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.coding import code_layer
from nnlcc.passes.csd import CsdCode
from nnlcc.passes.lcc.code import Lcc, LccCode
from nnlcc.passes.lowrank import Spectrum
from nnlcc.passes.lowrank import build as lowrank_build
from nnlcc.passes.pricing import Pricing
from nnlcc.passes.sampled import price_big
from nnlcc.passes.share import PLAN
from nnlcc.passes.truncation import RESERVE_DB, check_option, plan_layer

#: ``layer.info`` key of the choice record.
AUTO = "auto"

#: The coders ``auto`` knows, in the order ties are broken.
CODERS = ("csd", "lcc", "alkaid", "lowrank")

#: Weight bits tried for csd and alkaid (the fewest that meet the SQNR are used).
MAX_WEIGHT_BITS = 20


def weight_bits_for(m: FloatArray, target_db: float) -> int | None:
    """The fewest signed weight bits whose rounding keeps ``m``'s SQNR at ``target_db``."""
    if not (m != 0).any():
        return 2
    for bits in range(2, MAX_WEIGHT_BITS + 1):
        w_int, frac = quantize_weights(m, bits)
        if sqnr_db(m, w_int * 2.0**-frac) >= target_db:
            return bits
    return None


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
    ``sqnr_db`` (whole-matrix SQNR of each layer after truncation), ``coders`` (the candidates,
    ``csd+lcc+alkaid+lowrank``; see the module doc), ``family`` (the FPGA family priced; empty:
    the board's), ``truncate`` (as for csd and lcc), ``full_entries`` (larger layers are priced
    on samples of their matrix), ``peer_entries`` (largest layer alkaid is tried on),
    ``fs_entries`` (largest layer lcc's ``algo=fs`` is tried on)."""

    name: ClassVar[str] = "auto"
    kind: ClassVar[PassKind] = PassKind.MATRIX
    per_layer: ClassVar[bool] = True
    global_options: ClassVar[frozenset[str]] = frozenset({"family"})
    sqnr_db: float = 45.0
    coders: str = "csd+lcc+alkaid+lowrank"
    family: str = ""
    truncate: str = "auto"
    full_entries: int = 1 << 16
    peer_entries: int = 4096
    fs_entries: int = 2048

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sqnr_db) and 0 < self.sqnr_db <= 150):
            raise PassOptionError("auto: sqnr_db must be in (0, 150]")
        chosen = [c for c in self.coders.split("+") if c]
        bad = [c for c in chosen if c not in CODERS]
        if bad or not chosen:
            raise PassOptionError(
                f"auto: coders must be names from {', '.join(CODERS)} joined by '+',"
                f" not {self.coders!r}"
            )
        if self.family and self.family not in FAMILIES:
            raise PassOptionError(
                f"auto: unknown family {self.family!r} (known: {', '.join(FAMILIES)})"
            )
        check_option("auto", self.truncate)
        if min(self.full_entries, self.peer_entries, self.fs_entries) < 0:
            raise PassOptionError("auto: full_entries, peer_entries and fs_entries must be >= 0")

    @property
    def coding_db(self) -> float:
        """The SQNR every candidate codes to (truncation takes the rest down to sqnr_db)."""
        return self.sqnr_db + (RESERVE_DB if self.truncate == "auto" else 0.0)

    def _lcc(self, **opts: Any) -> Lcc:
        return Lcc(sqnr_db=self.sqnr_db, truncate=self.truncate, **opts)

    def builders(
        self, layer: MatrixLayer, family: str = ""
    ) -> list[tuple[str, Callable[[FloatArray], MatrixCode]]]:
        """The candidates for ``layer``: labels and builders of a code for a matrix."""
        wanted = set(self.coders.split("+"))
        entries = layer.weight.size
        out: list[tuple[str, Callable[[FloatArray], MatrixCode]]] = []
        target = self.coding_db
        pricing = Pricing.for_layer(layer, family or self.family or "ecp5")
        in_fmt = layer.in_fmt
        plan = layer.info.get(PLAN)
        bits = weight_bits_for(plan.reduced if plan is not None else layer.weight, target)
        width = f"{{weight_bits={bits}}}" if bits is not None else ""

        def bits_of(_: FloatArray) -> int:
            if bits is None:
                raise BadInputError(
                    f"no weight width up to {MAX_WEIGHT_BITS} bits reaches {target:.2f} dB"
                )
            return bits

        if "csd" in wanted:
            out.append((f"csd{width}", lambda m: CsdCode.from_weights(m, bits_of(m), cse=True)))
        if "lcc" in wanted:
            out.append(("lcc{transpose=no}", self._lcc(transpose="no").build))
            out.append(("lcc{transpose=yes}", self._lcc(transpose="yes").build))
            searched = self._lcc(objective="luts")
            out.append(("lcc{objective=luts}", lambda m: searched.build_priced(m, pricing)))
            if entries <= self.fs_entries:
                out.append(("lcc{algo=fs}", self._lcc(algo="fs").build))
        if "alkaid" in wanted and entries <= self.peer_entries and alkaid.available():
            span = (in_fmt.lo, in_fmt.hi) if in_fmt is not None else (-128, 127)
            out.append((f"alkaid{width}", lambda m: alkaid.AlkaidCode.build(m, bits_of(m), span)))
        if "lowrank" in wanted:
            rank = Spectrum.of(plan.reduced if plan is not None else layer.weight).paying_rank(
                target
            )
            if rank[0]:
                out.append(("lowrank", lambda m: lowrank_build(m, target, pricing)))
        return out

    def _try(
        self,
        layer: MatrixLayer,
        label: str,
        build: Callable[[FloatArray], MatrixCode],
        family: str,
        lower: bool = True,
    ) -> Candidate:
        shared = layer.info.get(PLAN) is not None
        try:
            code = code_layer(layer, build)
        except NnlccError as e:
            return Candidate(label, failed=str(e))
        label = _label(label, shared)
        if isinstance(code, LccCode) and not code.summary_reached:
            return Candidate(label, failed=f"target not reached: {code.reached_db:.2f} dB")
        layer.code = code
        plan_layer(layer, self.truncate, None if shared else self.sqnr_db)
        if not lower or layer.in_fmt is None or layer.out_fmt is None:  # not priced
            return Candidate(label, code=code)
        low = lower_layer(layer, layer.in_fmt)
        return Candidate(label, code, estimate(low.graph, family).luts, low.graph.adders, None, low)

    def code_one(self, layer: MatrixLayer, family: str) -> Candidate:
        """Code ``layer`` with its cheapest candidate; returns it (with its lowered layer when
        it was priced, valid while the layer's formats stay as they are)."""
        if layer.weight.size > self.full_entries:
            return self._code_sampled(layer, family)
        tries = [self._try(layer, label, b, family) for label, b in self.builders(layer, family)]
        ok = [c for c in tries if c.failed is None]
        if not ok:
            reasons = "; ".join(f"{c.label}: {c.failed}" for c in tries)
            raise BadInputError(f"layer {layer.name}: every auto coder failed ({reasons})")
        best = min(ok, key=lambda c: c.luts if c.luts is not None else 0)
        assert best.code is not None
        layer.code = best.code
        plan_layer(layer, self.truncate, None if layer.info.get(PLAN) else self.sqnr_db)
        record: dict[str, Any] = {
            "coder": best.label,
            "sqnr_db": self.sqnr_db,
            "family": family,
            "candidates": [c.record() for c in tries],
        }
        layer.info[AUTO] = record
        return best

    def _code_sampled(self, layer: MatrixLayer, family: str) -> Candidate:
        """A big layer: every candidate priced on a sample, the cheapest coded whole (its
        price in the record is the sample's, scaled)."""
        plan = layer.info.get(PLAN)
        m = plan.reduced if plan is not None else layer.weight
        target = self.coding_db
        priced = price_big(
            m,
            target,
            Pricing.for_layer(layer, family),
            weight_bits_for(m, target),
            set(self.coders.split("+")),
        )
        ok = [p for p in priced if p.cost is not None]
        if not ok:
            reasons = "; ".join(f"{p.label}: {p.failed}" for p in priced)
            raise BadInputError(f"layer {layer.name}: every auto coder failed ({reasons})")
        best = min(ok, key=lambda p: p.cost.luts if p.cost is not None else 0)
        found = self._try(layer, best.label, best.build, family, lower=False)
        if found.failed is not None:
            raise BadInputError(f"layer {layer.name}: {best.label}: {found.failed}")
        layer.info[AUTO] = {
            "coder": found.label,
            "sqnr_db": self.sqnr_db,
            "family": family,
            "candidates": [
                {**p.record(), "coder": _label(p.label, plan is not None)} for p in priced
            ],
            "note": f"{layer.weight.size} weights > full_entries={self.full_entries}: candidates"
            " priced on samples of the matrix (est_luts scaled, requantization not included)",
        }
        return found

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        family = self.family or ctx.family
        for layer in graph.matrix_layers():
            if ctx.progress:
                ctx.progress(layer.name)
            self.code_one(layer, family)


def _label(label: str, shared: bool) -> str:
    return f"share+{label}" if shared else label


def auto_facts(layer: MatrixLayer) -> dict[str, Any]:
    """The report's facts of an auto-coded layer: the coder chosen and the runners-up's
    estimated LUTs (or why they failed); empty for other layers."""
    rec = layer.info.get(AUTO)
    if not isinstance(rec, dict):
        return {}
    others = []
    for c in rec.get("candidates", []):
        if c["coder"] == rec["coder"]:
            continue
        cost = f"{c['est_luts']} LUTs" if "est_luts" in c else f"failed: {c['failed']}"
        others.append(f"{c['coder']} {cost}")
    return {
        "auto_coder": str(rec["coder"]),
        "auto_sqnr_db": rec.get("sqnr_db"),
        "auto_runners_up": "; ".join(others) or "none",
    }


def best_csd(layer: MatrixLayer, family: str) -> dict[str, Any] | None:
    """nnlcc's best CSD design of ``layer`` at the layer's own error: the baseline the report
    compares with.  An auto layer has priced it already (its ``csd`` candidate); another
    layer gets CSD with shared subexpressions at the fewest weight bits reaching the SQNR its
    truncation keeps (or, untruncated, its code's whole-matrix SQNR), lowered and priced like
    an auto candidate.  ``{"coder", "est_luts", "adders"}``, or None when no CSD width reaches
    that error."""
    rec = layer.info.get(AUTO)
    if isinstance(rec, dict):
        for c in rec.get("candidates", []):
            if c["coder"].split("+")[-1].startswith("csd") and c.get("est_luts") is not None:
                return dict(c)
        return None
    if layer.code is None or layer.weight.size > Auto.full_entries:
        return None
    budget = layer.info.get(TRUNCATION)
    if budget is not None:
        target, truncate = float(budget["target_db"]), "auto"
    else:
        target, truncate = sqnr_db(layer.weight, layer.code.implemented()), "off"
    if not (math.isfinite(target) and 0 < target <= 150 - RESERVE_DB):
        return None
    probe = copy.copy(layer)
    probe.info = {k: v for k, v in layer.info.items() if k != TRUNCATION}
    auto = Auto(sqnr_db=target, coders="csd", truncate=truncate)
    ((label, build),) = auto.builders(probe)
    found = auto._try(probe, label, build, family)
    return None if found.failed is not None or found.luts is None else found.record()
