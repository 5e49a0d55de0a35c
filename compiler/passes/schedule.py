"""The ``schedule`` pass: where the hardware puts its registers.

``schedule{every=k}`` registers every ``k``-th adder (or clamp) level along each path;
``schedule{every=auto}`` (the default) registers a path only where the family's delay model
(:attr:`nnlcc.ir.family.Family.adder_delay` and ``route_delay``: the board's family, or the
one ``family`` names) says it would otherwise miss ``mhz`` (default: the family's target
clock); a family without a measured model is refused. ``fanout=n`` duplicates a register
read by more than ``n`` readers, one copy per group of readers; ``fanout=auto`` (the default)
takes the bound from the family's model (:func:`nnlcc.ir.timing.fanout_bound`: as many
readers as still meet the clock, so no copy is made that the clock does not need; none on a
family without a model); ``fanout=0`` leaves fanout unbounded.
The pass only records the setting on every layer; lowering applies it to each layer's adder
graph, whose :meth:`~nnlcc.ir.adder_graph.AdderGraph.schedule` both hardware writers and the
golden model's latency follow. Without this pass every adder is registered and fanout is
bounded as ``fanout=auto`` says for the board's family (``every=1,fanout=auto``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from nnlcc.errors import PassOptionError
from nnlcc.ir.family import family_option
from nnlcc.ir.matrix import MatrixGraph
from nnlcc.ir.timing import ScheduleSetting, delay_model
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.runner import layer_pass


@dataclass(frozen=True)
class Schedule(Pass):
    """Register placement: ``every`` adder levels (an integer) or ``auto`` (from the delay
    model of ``family``, empty: the board's, and the target clock ``mhz``), each register
    driving at most ``fanout`` readers (``auto``: the model's bound; 0: unbounded). With an
    integer ``every`` and an ``mhz``, a setting the delay model says cannot reach ``mhz`` is
    refused."""

    name: ClassVar[str] = "schedule"
    kind: ClassVar[PassKind] = PassKind.SCHEDULE
    per_layer: ClassVar[bool] = True
    global_options: ClassVar[frozenset[str]] = frozenset({"family"})
    every: int | Literal["auto"] = "auto"
    mhz: float | None = None
    fanout: int | Literal["auto"] = "auto"
    family: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.every, int) and self.every < 1:
            raise PassOptionError(f"schedule: every must be at least 1 or auto, not {self.every}")
        if isinstance(self.fanout, int) and self.fanout < 0:
            raise PassOptionError(
                f"schedule: fanout must be 0 (unbounded), a bound or auto, not {self.fanout}"
            )
        if self.mhz is not None and not 0 < self.mhz < 10_000:  # NaN fails too
            raise PassOptionError(f"schedule: mhz must be in (0, 10000), not {self.mhz}")
        family_option(self.name, self.family)

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        family = family_option(self.name, self.family) or ctx.family
        for layer in graph.layers:
            p = layer_pass(self, layer) or self
            every = None if p.every == "auto" else int(p.every)
            fanout = None if p.fanout == "auto" else int(p.fanout)
            if every is None:
                delay_model(family)  # refused now, not when lowering
            layer.notes.put(ScheduleSetting(family, every=every, mhz=p.mhz, fanout=fanout))
