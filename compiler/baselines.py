"""The compile step before reporting: the baselines every layer is compared with, and the
facts the passes recorded, as the typed records the report renders (:mod:`nnlcc.ir.facts`).

The report computes nothing of its own: :func:`layer_facts` gives it, per matrix layer, the
compression (:func:`nnlcc.passes.share.compression_facts`), auto's choice
(:func:`nnlcc.passes.auto.auto_choice`), a quantized model's imported formats and whether the
code keeps its integers (:func:`coded_exactly`) and, when a family is given, :func:`csd_best`:
nnlcc's best CSD design at the layer's own error, which codes, truncates, lowers and prices a
design; and, with the lowered network and data, each layer's SQNR after truncation as the
hardware computes it.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import numpy.typing as npt

from nnlcc.ir.facts import CsdBest, LayerFacts
from nnlcc.ir.family import Family
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.imported import ImportedQuant
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import MatrixCode, MatrixGraph, MatrixLayer
from nnlcc.ir.truncate import RESERVE_DB, TruncationBudget, hardware_sqnr
from nnlcc.jobs import SERIAL, Jobs
from nnlcc.passes.auto import Auto, AutoRecord, auto_choice
from nnlcc.passes.share import compression_facts

__all__ = ["coded_exactly", "csd_best", "facts_of", "layer_facts"]


def csd_best(layer: MatrixLayer, family: Family) -> CsdBest | None:
    """nnlcc's best CSD design of ``layer`` at the layer's own error: the baseline the report
    compares with.  An auto layer has priced it already (its ``csd`` candidate); another
    layer gets CSD with shared subexpressions at the fewest weight bits reaching the SQNR its
    truncation keeps (or, untruncated, its code's whole-matrix SQNR), lowered and priced like
    an auto candidate on ``family``.  None when no CSD width reaches that error."""
    rec = layer.notes.get(AutoRecord)
    if rec is not None:
        for c in rec.candidates:
            if c.coder.split("+")[-1].startswith("csd") and c.est_luts is not None:
                assert c.adders is not None  # priced: both counted
                return CsdBest(c.coder, c.adders, c.est_luts)
        return None
    if layer.code is None or layer.weight.size > Auto.full_entries:
        return None
    budget = layer.notes.get(TruncationBudget)
    if budget is not None:
        target, truncate = budget.target_db, "auto"
    else:
        target, truncate = sqnr_db(layer.weight, layer.code.implemented()), "off"
    if not (math.isfinite(target) and 0 < target <= 150 - RESERVE_DB):
        return None
    probe = copy.copy(layer)  # coding it leaves the layer as it is
    probe.notes = layer.notes.without(TruncationBudget)
    (found,) = Auto(sqnr_db=target, coders="csd", truncate=truncate).price(probe, family)
    if found.failed is not None or found.luts is None or found.adders is None:
        return None
    return CsdBest(found.label, found.adders, found.luts)


def coded_exactly(layer: MatrixLayer) -> bool:
    """The layer's code computes its weights exactly and its partial sums are not truncated."""
    return (
        layer.code is not None
        and TruncationBudget not in layer.notes
        and np.array_equal(layer.code.implemented(), layer.weight)
    )


def facts_of(
    layer: MatrixLayer, family: Family | None = None, hw_sqnr_db: float | None = None
) -> LayerFacts:
    """The report's facts of matrix layer ``layer``; with ``family`` also the CSD baseline
    priced on it (:func:`csd_best`); ``hw_sqnr_db``: its measured hardware SQNR."""
    compression = compression_facts(layer)
    assert compression is not None  # a matrix layer
    best = csd_best(layer, family) if family is not None else None
    imported = layer.notes.get(ImportedQuant)
    shown = imported.report_facts(coded_exactly(layer)) if imported is not None else None
    return LayerFacts(compression, auto_choice(layer), best, hw_sqnr_db, imported=shown)


def layer_facts(
    graph: MatrixGraph,
    family: Family | None = None,
    net: LoweredNetwork | None = None,
    x_int: npt.NDArray[np.int64] | None = None,
    jobs: Jobs = SERIAL,
) -> dict[str, LayerFacts]:
    """:func:`facts_of` every matrix layer of ``graph``, by name, each layer a task of
    ``jobs``: with ``family``, a layer that was not auto-coded (auto has priced its CSD
    candidate already) has its baseline coded and priced (seconds per layer); and the task
    computes the code's summary, whose caches (a CSD code's shared subexpressions: minutes on
    ResNet-34's big layers) come back with the code, so the report's rows find them.  With
    its lowered ``net`` and network inputs ``x_int`` (the calibration data, quantized) also
    each layer's SQNR after truncation (:func:`nnlcc.ir.truncate.hardware_sqnr`, here)."""
    hw = hardware_sqnr(graph, net, x_int) if net is not None and x_int is not None else {}
    layers = graph.matrix_layers()
    done = jobs.map(
        _facts_task,
        [(layer, hw.get(layer.name)) for layer in layers],
        family,
        [f"baseline {la.name}" for la in layers],
    )
    for layer, (_, code) in zip(layers, done, strict=True):
        layer.code = code
    return {layer.name: facts for layer, (facts, _) in zip(layers, done, strict=True)}


def _facts_task(
    task: tuple[MatrixLayer, float | None], family: Family | None
) -> tuple[LayerFacts, MatrixCode | None]:
    layer, hw_sqnr_db = task
    if layer.code is not None:
        layer.code.summary()
    return facts_of(layer, family, hw_sqnr_db), layer.code
