"""Settings sweeps: compile the same network with other pass settings (passes and golden model
only, no hardware) to place the compiled design on the accuracy-vs-additions trade-off.

A sweep entry is pipeline text that *edits* the compiled pipeline: each pass it names
replaces the pass of the same name, and a matrix pass replaces the pipeline's matrix pass
(``"csd{weight_bits=6}"`` swaps LCC for CSD, ``"lcc{sqnr_db=35}"`` only changes the target).
The report's ``sweep`` list holds one point per entry plus the compiled design (``chosen``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from nnlcc.ir.lower import lower_network
from nnlcc.passes import (
    Pass,
    PassKind,
    attach_layer_settings,
    format_pipeline,
    parse_pipeline,
    run_passes,
)
from nnlcc.report.accuracy import accuracy_report

if TYPE_CHECKING:
    from nnlcc.config import Config
    from nnlcc.data import Dataset
    from nnlcc.ir.lowered import LoweredNetwork
    from nnlcc.ir.matrix import MatrixGraph


def edit_pipeline(base: list[Pass], entry: str) -> list[Pass]:
    """``base`` with the passes of ``entry`` swapped in (see the module docstring)."""
    new = parse_pipeline(entry)
    by_name = {p.name: p for p in new}
    new_matrix = [p for p in new if p.kind is PassKind.MATRIX]
    out: list[Pass] = []
    placed: set[str] = set()
    for p in base:
        if p.name in placed:
            continue
        if p.name in by_name:
            out.append(by_name[p.name])
            placed.add(p.name)
        elif p.kind is PassKind.MATRIX and new_matrix:
            if new_matrix[0].name not in placed:
                out.append(new_matrix[0])
                placed.add(new_matrix[0].name)
        else:
            out.append(p)
    return out + [p for p in new if p.name not in placed]


def short_pipeline(passes: list[Pass]) -> str:
    """Pipeline text with only the options that differ from their defaults (for tables)."""
    items = []
    for p in passes:
        changed = [
            f"{f.name}={getattr(p, f.name)}"
            for f in dataclasses.fields(p)  # type: ignore[arg-type]
            if f.default is not dataclasses.MISSING and getattr(p, f.name) != f.default
        ]
        items.append(f"{p.name}{{{','.join(changed)}}}" if changed else p.name)
    return ",".join(items)


def matrix_sqnr_db(graph: MatrixGraph) -> float:
    """Weight SQNR of the whole network: all matrix entries against what the codes compute."""
    sig = err = 0.0
    for layer in graph.matrix_layers():
        assert layer.code is not None
        w = layer.weight
        sig += float(np.sum(w * w))
        err += float(np.sum((w - layer.code.implemented()) ** 2))
    return math.inf if err == 0 else 10 * math.log10(sig / err)


def sweep_point(
    graph: MatrixGraph, net: LoweredNetwork, passes: list[Pass], accuracy: dict[str, Any]
) -> dict[str, Any]:
    """One point of the trade-off for a graph whose passes have run."""
    weights = sum(la.weight.size for la in graph.matrix_layers())
    adders = sum(low.graph.adders for low in net.layers)
    return {
        "passes": format_pipeline(passes),
        "setting": short_pipeline(passes),
        "pass": "+".join(p.name for p in passes if p.kind is PassKind.MATRIX),
        "adders": adders,
        "adders_per_weight": round(adders / max(weights, 1), 4),
        "weight_sqnr_db": round(matrix_sqnr_db(graph), 2),
        "output_sqnr_db": accuracy.get("sqnr_db"),
        "golden": accuracy.get("golden"),
    }


def run_sweep(
    pristine: MatrixGraph,
    base: list[Pass],
    entries: list[str],
    data: Dataset,
    config: Config | None = None,
    log: Callable[[str], None] | None = None,
    family: str = "ecp5",
) -> list[dict[str, Any]]:
    """Points for every entry, each on a fresh copy of ``pristine`` (the graph before passes
    and config); ``base`` is the pipeline as the user wrote it (before config completion)."""
    points = []
    for i, entry in enumerate(entries, 1):
        if log:
            log(f"sweep {i}/{len(entries)}: {entry}")
        graph = copy.deepcopy(pristine)
        passes = edit_pipeline(base, entry)
        if config is not None:
            passes, _ = attach_layer_settings(graph, passes, config.layer_settings(graph))
        run_passes(graph, passes, data.x_calib, family=family)
        net = lower_network(graph)
        points.append(sweep_point(graph, net, passes, accuracy_report(graph, net, data)))
    return points
