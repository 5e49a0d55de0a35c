"""Where the hardware's registers go: a combinational-cost budget per register stage, the
fanout a register may drive, and the per-family delay model that turns a target clock into
both.

:class:`StageBudget` is the one fact :meth:`nnlcc.ir.adder_graph.AdderGraph.schedule` reads:
every ADD and CLAMP node costs ``fixed + per_bit * width`` (its output width); SHR and CONST
are wiring and cost nothing. Walking a path from the last register, a node is registered once
another node as costly as itself would no longer fit the budget, and a node that would not fit
behind its operands reads delayed (registered) copies of them instead. ``StageBudget.every(k)``
(unit cost, budget ``k``) is a register after every ``k``-th adder level; ``every(1)`` is a
register after every adder, what nnlcc always built before ``schedule{every=k}`` existed.
``fanout`` bounds the readers of one register: a register with more is duplicated, one copy
per group of readers (:mod:`nnlcc.ir.fanout`).

A family's delay model is measured on placed designs (``benchmarks/fmax.py``, fitted by
``benchmarks/delay_fit.py``) and has two parts. Its :class:`~nnlcc.ir.family.AdderDelay` is the
carry-chain adder: a fixed delay (entering and leaving the chain, the route from a register of
one reader) plus a delay per bit of carry, and a per-clock overhead (clock to out, setup). Its
:class:`~nnlcc.ir.family.RouteDelay` is the route from a register to its readers, longer the
more readers there are (up to a saturation). A stage launched by a register of ``r`` readers
through adders of widths ``w_i`` takes ``overhead + extra(r) + sum(fixed + per_bit * w_i)``.
The schedule keeps ``extra(r)`` down by bounding ``r`` (:func:`fanout_bound`: the most readers
at which one adder of the layer's widest still meets the clock, so registers are duplicated
only as far as the clock needs, since each copy costs flip-flops; none where the route of any
number of readers fits) and takes ``extra(bound)`` off every stage's budget. A family without a measured
model (``NotMeasured``) gets no ``every=auto`` and no fanout bound, rather than another
family's figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from nnlcc.errors import BadInputError
from nnlcc.ir.family import FAMILIES, AdderDelay, Family, NotMeasured, RouteDelay, get_family
from nnlcc.ir.notes import JsonNote

__all__ = [
    "ScheduleSetting",
    "StageBudget",
    "clock_stage_budget",
    "default_stage_budget",
    "delay_model",
    "fanout_bound",
    "stage_budget_for",
]


@dataclass(frozen=True)
class StageBudget:
    """A register once a path's combinational cost since its last register would exceed
    ``budget``; an ADD/CLAMP of ``w`` output bits costs ``fixed + per_bit * w``. ``fanout``:
    readers one register drives at most (a register with more is duplicated, one copy per
    group of readers: :mod:`nnlcc.ir.fanout`); 0 leaves fanout unbounded."""

    budget: float = 1.0
    fixed: float = 1.0
    per_bit: float = 0.0
    fanout: int = 0

    @classmethod
    def every(cls, k: int, fanout: int = 0) -> StageBudget:
        """A register after every ``k``-th adder/clamp level along each path."""
        if k < 1:
            raise ValueError(f"schedule every={k}: must be at least 1")
        return cls(budget=float(k), fixed=1.0, per_bit=0.0, fanout=fanout)

    def cost(self, width: int) -> float:
        return self.fixed + self.per_bit * width


def delay_model(family: Family) -> tuple[AdderDelay, RouteDelay]:
    """``family``'s adder and route delay models; :class:`BadInputError` in one line when it
    has none (``schedule{every=auto}`` needs both)."""
    adder, route = family.adder_delay, family.route_delay
    for model in (adder, route):
        if isinstance(model, NotMeasured):
            known = "|".join(
                f.name
                for f in FAMILIES.values()
                if isinstance(f.adder_delay, AdderDelay) and isinstance(f.route_delay, RouteDelay)
            )
            raise BadInputError(
                f"schedule{{every=auto}}: {family.name} has no adder-delay model, {model}; "
                f"give every=k, or schedule{{family={known}}} to schedule with that family's "
                "model"
            )
    assert isinstance(adder, AdderDelay) and isinstance(route, RouteDelay)
    return adder, route


def target_mhz(family: Family, mhz: float | None) -> float | None:
    """The clock a schedule aims at: ``mhz``, else the family's default (None: no model)."""
    if mhz is not None:
        return mhz
    adder = family.adder_delay
    return adder.target_mhz if isinstance(adder, AdderDelay) else None


def fanout_bound(family: Family, mhz: float | None, widest: int) -> int:
    """The most readers a register may drive so that one adder of ``widest`` bits behind it
    still meets ``mhz`` (the family's default clock when None), by the family's delay model.
    0 (unbounded) when the clock needs no bound (the route of any number of readers fits),
    when no bound would help (the adder misses the clock even behind a single-reader
    register), and on a family without a measured model. Each copy costs flip-flops: the
    bound is the loosest that meets the clock."""
    adder, route = family.adder_delay, family.route_delay
    target = target_mhz(family, mhz)
    if not isinstance(adder, AdderDelay) or not isinstance(route, RouteDelay) or target is None:
        return 0
    return route.readers_within(adder.budget_ns(target) - adder.fixed - adder.per_bit * widest)


def clock_stage_budget(
    adder: AdderDelay, route: RouteDelay, mhz: float, fanout: int
) -> StageBudget:
    """The schedule meeting ``mhz`` by the delay model: the clock period less its overhead
    and the extra route of a register of at most ``fanout`` readers (0, unbounded: of any
    number) is the budget, an ADD/CLAMP costs the adder."""
    return StageBudget(
        budget=adder.budget_ns(mhz) - route.extra(fanout),
        fixed=adder.fixed,
        per_bit=adder.per_bit,
        fanout=fanout,
    )


def stage_budget_for(
    layer: str,
    widths: list[int],
    every: int | None,
    mhz: float | None,
    family: Family,
    fanout: int | None = None,
) -> StageBudget:
    """The schedule of one layer whose ADD/CLAMP nodes have ``widths``: a register after every
    ``every`` levels, or (``every`` None) wherever ``family``'s delay model says a path would
    miss ``mhz`` (the family's default clock when None); registers drive at most ``fanout``
    readers (None: :func:`fanout_bound`; 0: unbounded). Raises :class:`BadInputError`, in one
    line naming the layer and the figure reached, when the model says ``mhz`` cannot be met
    with that setting."""
    widest = max(widths, default=0)
    bound = fanout_bound(family, mhz, widest) if fanout is None else fanout
    if every is not None:
        adder, route = family.adder_delay, family.route_delay
        if mhz is not None and isinstance(adder, AdderDelay) and isinstance(route, RouteDelay):
            # k levels of the widest adder: what the model promises for this layer
            path = every * (adder.fixed + adder.per_bit * widest) + route.extra(bound)
            reach = adder.fmax_mhz(path)
            if reach < mhz:
                raise BadInputError(
                    f"layer {layer}: schedule{{every={every}}} reaches about {reach:.0f} MHz "
                    f"on {family.name}, below the {mhz:g} MHz asked for"
                )
        return StageBudget.every(every, bound)
    adder, route = delay_model(family)
    target = target_mhz(family, mhz)
    assert target is not None
    reach = adder.fmax_mhz(adder.fixed + adder.per_bit * widest)  # a copy for every reader
    if reach < target:
        raise BadInputError(
            f"layer {layer}: schedule{{mhz={target:g}}} cannot be met on {family.name}: even a "
            f"register after every adder reaches about {reach:.0f} MHz (its widest adder has "
            f"{widest} bits)"
        )
    return clock_stage_budget(adder, route, target, bound)


def default_stage_budget(layer: str, widths: list[int], family: Family) -> StageBudget:
    """The schedule of a layer no ``schedule`` pass set: a register after every adder, each
    driving at most the family's fanout bound at its default clock (unbounded without a
    measured model)."""
    return stage_budget_for(layer, widths, 1, None, family)


@dataclass(frozen=True)
class ScheduleSetting(JsonNote):
    """What ``schedule{every=..,mhz=..,fanout=..,family=..}`` asked of one layer, the layer's note
    (``info`` key ``schedule``); lowering turns it into the layer graph's :class:`StageBudget`
    (:func:`stage_budget_for`) once widths are known.  ``family``: the board's, or the one the
    pass's ``family`` option names; ``fanout`` None: the family model's bound."""

    key: ClassVar[str] = "schedule"
    family: Family
    every: int | None = None
    mhz: float | None = None
    fanout: int | None = None

    def stage_budget(self, layer: str, widths: list[int]) -> StageBudget:
        return stage_budget_for(layer, widths, self.every, self.mhz, self.family, self.fanout)

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON, the family by name (the IR text's ``info`` entry)."""
        return {
            "every": self.every,
            "mhz": self.mhz,
            "fanout": self.fanout,
            "family": self.family.name,
        }

    @classmethod
    def from_json(cls, obj: Any) -> ScheduleSetting:
        if not isinstance(obj, Mapping) or "family" not in obj:
            raise ValueError("schedule must be a JSON object with every, mhz, fanout and family")
        every, mhz, fanout = obj.get("every"), obj.get("mhz"), obj.get("fanout")
        if every is not None and (isinstance(every, bool) or not isinstance(every, int)):
            raise ValueError(f"schedule: every must be an integer or null, not {every!r}")
        if mhz is not None and (isinstance(mhz, bool) or not isinstance(mhz, int | float)):
            raise ValueError(f"schedule: mhz must be a number or null, not {mhz!r}")
        if fanout is not None and (isinstance(fanout, bool) or not isinstance(fanout, int)):
            raise ValueError(f"schedule: fanout must be an integer or null, not {fanout!r}")
        return cls(get_family(str(obj["family"])), every, mhz, fanout)
