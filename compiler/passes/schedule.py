"""The ``schedule`` pass: where the hardware puts its registers.

``schedule{every=k}`` registers every ``k``-th adder (or clamp) level along each path;
``schedule{every=auto}`` (the default) registers a path only where the family's adder-delay
model (:attr:`nnlcc.ir.family.Family.adder_delay`: the board's family, or the one ``family``
names) says it would otherwise miss ``mhz`` (default 200); a family without a measured model
is refused.
The pass only records the setting on every layer; lowering applies it to each layer's adder
graph, whose :meth:`~nnlcc.ir.adder_graph.AdderGraph.schedule` both hardware writers and the
golden model's latency follow. Without this pass every adder is registered (``every=1``).
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
    """Register placement: ``every`` adder levels (an integer) or ``auto`` (from the adder
    delay of ``family``, empty: the board's, and the target clock ``mhz``). With an integer
    ``every`` and an ``mhz``, a setting the delay model says cannot reach ``mhz`` is refused."""

    name: ClassVar[str] = "schedule"
    kind: ClassVar[PassKind] = PassKind.SCHEDULE
    per_layer: ClassVar[bool] = True
    global_options: ClassVar[frozenset[str]] = frozenset({"family"})
    every: int | Literal["auto"] = "auto"
    mhz: float | None = None
    family: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.every, int) and self.every < 1:
            raise PassOptionError(f"schedule: every must be at least 1 or auto, not {self.every}")
        if self.mhz is not None and not 0 < self.mhz < 10_000:  # NaN fails too
            raise PassOptionError(f"schedule: mhz must be in (0, 10000), not {self.mhz}")
        family_option(self.name, self.family)

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        family = family_option(self.name, self.family) or ctx.family
        for layer in graph.layers:
            p = layer_pass(self, layer) or self
            every = None if p.every == "auto" else int(p.every)
            if every is None:
                delay_model(family)  # refused now, not when lowering
            layer.notes.put(ScheduleSetting(family, every=every, mhz=p.mhz))
