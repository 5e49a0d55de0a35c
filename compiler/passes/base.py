"""What every pass is: a frozen dataclass whose fields are its options (xDSL's ``ModulePass``
style), with its own metadata as class variables.

- ``name``: how a pipeline writes it (``lcc{sqnr_db=45}``);
- ``kind``: where it may stand in a pipeline (:class:`PassKind`);
- ``per_layer``: whether ``nnlcc.toml`` may set its options for single layers, and
  ``global_options``: the options that stay global even then.

Nothing else in nnlcc keeps lists of passes: the registry (:mod:`nnlcc.passes.registry`) maps
names to classes lazily, and the pipeline parser, the runner, the TOML validator and the
reports all read a pass's facts from its class.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from nnlcc.ir.family import Family
from nnlcc.ir.matrix import MatrixGraph
from nnlcc.jobs import SERIAL, Jobs


class PassKind(enum.Enum):
    """Where a pass stands in a pipeline."""

    #: changes the network's structure (removes neurons); calibrated formats come after it
    STRUCTURAL = "structural"
    #: chooses fixed-point formats of inputs and activations
    FORMAT = "format"
    #: plans what the matrix pass codes (shared columns); must precede it
    PLAN = "plan"
    #: codes every matrix layer as a shift-add program (exactly one per layer)
    MATRIX = "matrix"
    #: places the hardware's registers (recorded per layer, applied when lowering)
    SCHEDULE = "schedule"


@dataclass
class PassContext:
    """What passes may read besides the graph: calibration inputs (float, batch-first), the
    board's FPGA family (:mod:`nnlcc.ir.family`: what ``auto`` and ``circulant`` price their
    candidates on and ``pipeline`` schedules with), a progress callback
    ``progress(layer_name)`` and the jobs that run a matrix pass's layers
    (:func:`nnlcc.passes.runner.run_pass`: at once on a cluster, or one after another)."""

    calibration: npt.NDArray[np.float64]
    family: Family
    progress: Callable[[str], None] | None = None
    jobs: Jobs = SERIAL


class Pass:
    """Base of every pass.  Subclasses are ``@dataclass(frozen=True)``; their fields are their
    options and :meth:`apply` transforms the graph in place."""

    name: ClassVar[str]
    kind: ClassVar[PassKind]
    per_layer: ClassVar[bool] = False
    global_options: ClassVar[frozenset[str]] = frozenset()

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        raise NotImplementedError

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def layer_options(cls) -> frozenset[str]:
        """Options that ``nnlcc.toml`` may set for single layers (empty: none)."""
        if not cls.per_layer:
            return frozenset()
        return frozenset(cls.option_names()) - cls.global_options
