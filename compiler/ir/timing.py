"""Where the hardware's registers go: a combinational-cost budget per register stage, and the
per-family adder delay model that turns a target clock into such a budget.

:class:`StageBudget` is the one fact :meth:`nnlcc.ir.adder_graph.AdderGraph.schedule` reads:
every ADD and CLAMP node costs ``fixed + per_bit * width`` (its output width); SHR and CONST
are wiring and cost nothing. Walking a path from the last register, a node is registered once
another node as costly as itself would no longer fit the budget, and a node that would not fit
behind its operands reads delayed (registered) copies of them instead. ``StageBudget.every(k)``
(unit cost, budget ``k``) is a register after every ``k``-th adder level; ``every(1)`` is a
register after every adder, what nnlcc always built before ``schedule{every=k}`` existed.

A family's :class:`~nnlcc.ir.family.AdderDelay` (its :attr:`~nnlcc.ir.family.Family.adder_delay`)
is its carry-chain adder: a fixed delay (LUT in front of the carry chain, the net into it) plus
a delay per bit of carry, and a per-clock overhead (clock to out, setup, the route out of the
register). Only ECP5's is measured (nextpnr-ecp5 runs of the digits MLP's LCC network, see
``benchmarks/fmax.py`` and its results); on the other families ``every=auto`` is refused rather
than scheduled with another family's figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nnlcc.errors import BadInputError
from nnlcc.ir.family import FAMILIES, AdderDelay, Family, NotMeasured, get_family

__all__ = [
    "ScheduleSetting",
    "StageBudget",
    "clock_stage_budget",
    "delay_model",
    "measured_delays",
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
    def every(cls, k: int) -> StageBudget:
        """A register after every ``k``-th adder/clamp level along each path."""
        if k < 1:
            raise ValueError(f"schedule every={k}: must be at least 1")
        return cls(budget=float(k), fixed=1.0, per_bit=0.0)

    def cost(self, width: int) -> float:
        return self.fixed + self.per_bit * width


def clock_stage_budget(delay: AdderDelay, mhz: float) -> StageBudget:
    """The schedule meeting ``mhz`` by ``delay``'s model: the clock period less its overhead
    is the budget, an ADD/CLAMP costs the model's delay."""
    return StageBudget(budget=delay.budget_ns(mhz), fixed=delay.fixed, per_bit=delay.per_bit)


def _measured() -> dict[str, AdderDelay]:
    return {n: f.adder_delay for n, f in FAMILIES.items() if isinstance(f.adder_delay, AdderDelay)}


def measured_delays() -> list[AdderDelay]:
    """The adder-delay models measured on some family (the others are :class:`NotMeasured`)."""
    return list(_measured().values())


def delay_model(family: Family) -> AdderDelay:
    """``family``'s adder-delay model; :class:`BadInputError` in one line when it has none
    (``schedule{every=auto}`` needs one)."""
    model = family.adder_delay
    if isinstance(model, NotMeasured):
        known = "|".join(_measured())
        raise BadInputError(
            f"schedule{{every=auto}}: {family.name} has no adder-delay model, {model}; give "
            f"every=k, or schedule{{family={known}}} to schedule with that family's model"
        )
    return model


def stage_budget_for(
    layer: str, widths: list[int], every: int | None, mhz: float | None, family: Family
) -> StageBudget:
    """The schedule of one layer whose ADD/CLAMP nodes have ``widths``: a register after every
    ``every`` levels, or (``every`` None) wherever ``family``'s delay model says a path would
    miss ``mhz``. Raises :class:`BadInputError`, in one line naming the layer and the figure
    reached, when no modelled family can meet ``mhz`` with that setting."""
    if every is not None:
        if mhz is not None:
            # k levels of the widest adder: what the model promises for this layer
            reach = max(
                m.fmax_mhz(every * m.fixed + m.per_bit * max(widths, default=0) * every)
                for m in measured_delays()
            )
            if reach < mhz:
                raise BadInputError(
                    f"layer {layer}: schedule{{every={every}}} reaches about {reach:.0f} MHz "
                    f"on the best modelled family, below the {mhz:g} MHz asked for"
                )
        return StageBudget.every(every)
    model = delay_model(family)
    target = 200.0 if mhz is None else mhz
    widest = max(widths, default=0)
    reach = max(m.fmax_mhz(m.fixed + m.per_bit * widest) for m in measured_delays())
    if reach < target:
        raise BadInputError(
            f"layer {layer}: schedule{{mhz={target:g}}} cannot be met: even a register after "
            f"every adder reaches about {reach:.0f} MHz (its widest adder has {widest} bits)"
        )
    return clock_stage_budget(model, target)


#: ``layer.info`` key under which the ``schedule`` pass leaves a layer's :class:`ScheduleSetting`
#: (as a dict of its fields, which the IR text carries as JSON)
SCHEDULE_INFO = "schedule"


@dataclass(frozen=True)
class ScheduleSetting:
    """What ``schedule{every=..,mhz=..,family=..}`` asked of one layer; lowering turns it into
    the layer graph's :class:`StageBudget` (:func:`stage_budget_for`) once widths are known.
    ``family``: the board's, or the one the pass's ``family`` option names."""

    family: Family
    every: int | None = None
    mhz: float | None = None

    def stage_budget(self, layer: str, widths: list[int]) -> StageBudget:
        return stage_budget_for(layer, widths, self.every, self.mhz, self.family)

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON (the family by name): what ``layer.info`` and the IR text hold."""
        return {"every": self.every, "mhz": self.mhz, "family": self.family.name}

    @classmethod
    def from_json(cls, fields: Mapping[str, Any]) -> ScheduleSetting:
        return cls(get_family(str(fields["family"])), fields.get("every"), fields.get("mhz"))
