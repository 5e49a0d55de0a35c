"""The ``schedule`` pass: where the hardware puts its registers.

``schedule{every=k}`` registers every ``k``-th adder (or clamp) level along each path;
``schedule{every=auto}`` (the default) registers a path only where the family's adder-delay
model (:data:`nnlcc.ir.timing.ADDER_DELAY`) says it would otherwise miss ``mhz`` (default 200).
The pass only records the setting on every layer; lowering applies it to each layer's adder
graph, whose :meth:`~nnlcc.ir.adder_graph.AdderGraph.schedule` both hardware writers and the
golden model's latency follow. Without this pass every adder is registered (``every=1``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal

from nnlcc.errors import PassOptionError
from nnlcc.ir.matrix import MatrixGraph
from nnlcc.ir.timing import ADDER_DELAY, SCHEDULE_INFO, ScheduleSetting
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.runner import layer_pass


@dataclass(frozen=True)
class Schedule(Pass):
    """Register placement: ``every`` adder levels (an integer) or ``auto`` (from the adder
    delay of ``family`` and the target clock ``mhz``). With an integer ``every`` and an
    ``mhz``, a setting the delay model says cannot reach ``mhz`` is refused."""

    name: ClassVar[str] = "schedule"
    kind: ClassVar[PassKind] = PassKind.SCHEDULE
    per_layer: ClassVar[bool] = True
    global_options: ClassVar[frozenset[str]] = frozenset({"family"})
    every: int | Literal["auto"] = "auto"
    mhz: float | None = None
    family: str = "ecp5"

    def __post_init__(self) -> None:
        if isinstance(self.every, int) and self.every < 1:
            raise PassOptionError(f"schedule: every must be at least 1 or auto, not {self.every}")
        if self.mhz is not None and not 0 < self.mhz < 10_000:  # NaN fails too
            raise PassOptionError(f"schedule: mhz must be in (0, 10000), not {self.mhz}")
        if self.family not in ADDER_DELAY:
            raise PassOptionError(
                f"schedule: no adder-delay model for family {self.family!r}"
                f" (modelled: {', '.join(sorted(ADDER_DELAY))})"
            )

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        for layer in graph.layers:
            p = layer_pass(self, layer) or self
            every = None if p.every == "auto" else int(p.every)
            # as plain JSON fields: the IR text prints layer.info as JSON and reads it back
            setting = ScheduleSetting(every=every, mhz=p.mhz, family=p.family)
            layer.info[SCHEDULE_INFO] = dataclasses.asdict(setting)
