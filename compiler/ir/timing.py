"""Where the hardware's registers go: a combinational-cost budget per register stage, and the
per-family adder delay model that turns a target clock into such a budget.

:class:`StageBudget` is the one fact :meth:`nnlcc.ir.adder_graph.AdderGraph.schedule` reads:
every ADD and CLAMP node costs ``fixed + per_bit * width`` (its output width); SHR and CONST
are wiring and cost nothing. Walking a path from the last register, a node is registered once
another node as costly as itself would no longer fit the budget, and a node that would not fit
behind its operands reads delayed (registered) copies of them instead. ``StageBudget.every(k)``
(unit cost, budget ``k``) is a register after every ``k``-th adder level; ``every(1)`` is a
register after every adder, what nnlcc always built before ``schedule{every=k}`` existed.

:class:`AdderDelay` is a family's carry-chain adder: a fixed delay (LUT in front of the carry
chain, the net into it) plus a delay per bit of carry, and a per-clock overhead (clock to out,
setup, the route out of the register). The ECP5 figures are fitted to nextpnr-ecp5 runs of the
digits MLP's LCC network (see ``benchmarks/fmax.py`` and its results).
"""

from __future__ import annotations

from dataclasses import dataclass

from nnlcc.errors import BadInputError

__all__ = ["ADDER_DELAY", "AdderDelay", "StageBudget", "stage_budget_for"]


@dataclass(frozen=True)
class StageBudget:
    """A register once a path's combinational cost since its last register would exceed
    ``budget``; an ADD/CLAMP of ``w`` output bits costs ``fixed + per_bit * w``."""

    budget: float = 1.0
    fixed: float = 1.0
    per_bit: float = 0.0

    @classmethod
    def every(cls, k: int) -> StageBudget:
        """A register after every ``k``-th adder/clamp level along each path."""
        if k < 1:
            raise ValueError(f"schedule every={k}: must be at least 1")
        return cls(budget=float(k), fixed=1.0, per_bit=0.0)

    def cost(self, width: int) -> float:
        return self.fixed + self.per_bit * width


@dataclass(frozen=True)
class AdderDelay:
    """A family's adder delay in ns: ``fixed + per_bit * width`` per adder on a path, plus
    ``overhead`` once per clock period."""

    family: str
    fixed: float
    per_bit: float
    overhead: float

    def budget_ns(self, mhz: float) -> float:
        return 1000.0 / mhz - self.overhead

    def stage_budget(self, mhz: float) -> StageBudget:
        return StageBudget(budget=self.budget_ns(mhz), fixed=self.fixed, per_bit=self.per_bit)

    def fmax_mhz(self, path_ns: float) -> float:
        """The clock a path of ``path_ns`` of adder delay allows."""
        return 1000.0 / (path_ns + self.overhead)


#: Per-family delay models (only families whose figures were fitted to place-and-route runs).
#: ECP5 (LFE5U-85F-6, nextpnr-ecp5 out of context): a CCU2C carries two bits in 0.07 ns
#: (``per_bit`` 0.035); ``fixed`` (entering and leaving the chain, 0.45 + 0.44 ns, and the net
#: into it) and ``overhead`` (clock to out 0.52 ns, the last net, the nets the path shares) are
#: the least-squares fit to the critical paths of the digits MLP's fc2 (adders of ~22 bits)
#: with a register after every 1, 2 and 3 adder levels: 4.22, 5.99 and 8.99 ns measured,
#: 4.02, 6.40 and 8.79 ns modelled (-5 %, +7 %, -2 %).
ADDER_DELAY: dict[str, AdderDelay] = {
    "ecp5": AdderDelay("ecp5", fixed=1.6, per_bit=0.035, overhead=1.65),
}


def stage_budget_for(
    layer: str, widths: list[int], every: int | None, mhz: float | None, family: str
) -> StageBudget:
    """The schedule of one layer whose ADD/CLAMP nodes have ``widths``: a register after every
    ``every`` levels, or (``every`` None) wherever ``family``'s delay model says a path would
    miss ``mhz``. Raises :class:`BadInputError`, in one line naming the layer and the figure
    reached, when no modelled family can meet ``mhz`` with that setting."""
    model = ADDER_DELAY[family]
    if every is not None:
        if mhz is not None:
            # k levels of the widest adder: what the model promises for this layer
            reach = max(
                m.fmax_mhz(every * m.fixed + m.per_bit * max(widths, default=0) * every)
                for m in ADDER_DELAY.values()
            )
            if reach < mhz:
                raise BadInputError(
                    f"layer {layer}: schedule{{every={every}}} reaches about {reach:.0f} MHz "
                    f"on the best modelled family, below the {mhz:g} MHz asked for"
                )
        return StageBudget.every(every)
    target = 200.0 if mhz is None else mhz
    widest = max(widths, default=0)
    reach = max(m.fmax_mhz(m.fixed + m.per_bit * widest) for m in ADDER_DELAY.values())
    if reach < target:
        raise BadInputError(
            f"layer {layer}: schedule{{mhz={target:g}}} cannot be met: even a register after "
            f"every adder reaches about {reach:.0f} MHz (its widest adder has {widest} bits)"
        )
    return model.stage_budget(target)


#: ``layer.info`` key under which the ``schedule`` pass leaves a layer's :class:`ScheduleSetting`
#: (as a dict of its fields, which the IR text carries as JSON)
SCHEDULE_INFO = "schedule"


@dataclass(frozen=True)
class ScheduleSetting:
    """What ``schedule{every=..,mhz=..,family=..}`` asked of one layer; lowering turns it into
    the layer graph's :class:`StageBudget` (:func:`stage_budget_for`) once widths are known."""

    every: int | None = None
    mhz: float | None = None
    family: str = "ecp5"

    def stage_budget(self, layer: str, widths: list[int]) -> StageBudget:
        return stage_budget_for(layer, widths, self.every, self.mhz, self.family)
