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
* ``lcc``: LCC (``algo=fp``) in both orientations (``transpose=no`` and ``yes``), and
  ``algo=fs`` on layers of at most ``fs_entries`` weights;
* ``alkaid``: alkaid's CMVM solution (:mod:`nnlcc.passes.alkaid`) at the CSD weight bits, when
  alkaid is installed and the layer has at most ``peer_entries`` weights (seconds).

Compile time: a layer of more than ``full_entries`` weights (a ResNet-34 conv has 0.6 to 2.4
million) gets ``lcc`` alone with ``transpose=auto``, neither lowered nor priced here: lowering
and pricing every candidate of such a layer costs more than the whole compile, and LCC beat
every other coder on every tall matrix measured (README's table).

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
from nnlcc.ir.cost import estimate
from nnlcc.ir.family import Family, family_option
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
from nnlcc.passes.share import PLAN
from nnlcc.passes.truncation import RESERVE_DB, check_option, plan_layer

#: ``layer.info`` key of the choice record.
AUTO = "auto"

#: The coders ``auto`` knows, in the order ties are broken.
CODERS = ("csd", "lcc", "alkaid")

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
    ``csd+lcc+alkaid``; see the module doc), ``family`` (the FPGA family priced; empty: the
    board's), ``truncate`` (as for csd and lcc), ``full_entries`` (larger layers get lcc alone,
    unpriced), ``peer_entries`` (largest layer alkaid is tried on), ``fs_entries`` (largest
    layer lcc's ``algo=fs`` is tried on)."""

    name: ClassVar[str] = "auto"
    kind: ClassVar[PassKind] = PassKind.MATRIX
    per_layer: ClassVar[bool] = True
    global_options: ClassVar[frozenset[str]] = frozenset({"family"})
    sqnr_db: float = 45.0
    coders: str = "csd+lcc+alkaid"
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
        family_option(self.name, self.family)
        check_option("auto", self.truncate)
        if min(self.full_entries, self.peer_entries, self.fs_entries) < 0:
            raise PassOptionError("auto: full_entries, peer_entries and fs_entries must be >= 0")

    @property
    def coding_db(self) -> float:
        """The SQNR every candidate codes to (truncation takes the rest down to sqnr_db)."""
        return self.sqnr_db + (RESERVE_DB if self.truncate == "auto" else 0.0)

    def _lcc(self, **opts: Any) -> Lcc:
        return Lcc(sqnr_db=self.sqnr_db, truncate=self.truncate, **opts)

    def builders(self, layer: MatrixLayer) -> list[tuple[str, Callable[[FloatArray], MatrixCode]]]:
        """The candidates for ``layer``: labels and builders of a code for a matrix."""
        wanted = set(self.coders.split("+"))
        entries = layer.weight.size
        out: list[tuple[str, Callable[[FloatArray], MatrixCode]]] = []
        if entries > self.full_entries:
            return [("lcc", self._lcc().build)]
        target = self.coding_db
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
            if entries <= self.fs_entries:
                out.append(("lcc{algo=fs}", self._lcc(algo="fs").build))
        if "alkaid" in wanted and entries <= self.peer_entries and alkaid.available():
            span = (in_fmt.lo, in_fmt.hi) if in_fmt is not None else (-128, 127)
            out.append((f"alkaid{width}", lambda m: alkaid.AlkaidCode.build(m, bits_of(m), span)))
        return out

    def _try(
        self,
        layer: MatrixLayer,
        label: str,
        build: Callable[[FloatArray], MatrixCode],
        family: Family,
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
        big = layer.weight.size > self.full_entries
        if big or layer.in_fmt is None or layer.out_fmt is None:  # not priced
            return Candidate(label, code=code)
        low = lower_layer(layer, layer.in_fmt)
        return Candidate(label, code, estimate(low.graph, family).luts, low.graph.adders, None, low)

    def code_one(self, layer: MatrixLayer, family: Family) -> Candidate:
        """Code ``layer`` with its cheapest candidate; returns it (with its lowered layer when
        it was priced, valid while the layer's formats stay as they are)."""
        tries = [self._try(layer, label, b, family) for label, b in self.builders(layer)]
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
            "family": family.name,
            "candidates": [c.record() for c in tries],
        }
        if layer.weight.size > self.full_entries:
            record["note"] = (
                f"{layer.weight.size} weights > full_entries={self.full_entries}: lcc alone"
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


def best_csd(layer: MatrixLayer, family: Family) -> dict[str, Any] | None:
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
