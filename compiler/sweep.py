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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnlcc.ir.lower import lower_network
from nnlcc.jobs import SERIAL, Jobs
from nnlcc.passes import (
    Pass,
    PassKind,
    attach_layer_settings,
    format_pipeline,
    parse_pipeline,
    run_passes,
)
from nnlcc.passes.registry import Extras, add_extras, extras
from nnlcc.report.accuracy import accuracy_report
from nnlcc.report.schema import Accuracy, AccuracyDrop, DropPoint, SweepPoint

if TYPE_CHECKING:
    from nnlcc.config import Config
    from nnlcc.data import Dataset
    from nnlcc.ir.family import Family
    from nnlcc.ir.fixed_point import FixedFormat
    from nnlcc.ir.lowered import LoweredNetwork
    from nnlcc.ir.matrix import MatrixGraph, MatrixLayer


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
    graph: MatrixGraph, net: LoweredNetwork, passes: list[Pass], accuracy: Accuracy
) -> SweepPoint:
    """One point of the trade-off for a graph whose passes have run."""
    weights = sum(la.weight.size for la in graph.matrix_layers())
    adders = sum(low.graph.adders for low in net.layers)
    return SweepPoint(
        passes=format_pipeline(passes),
        setting=short_pipeline(passes),
        pass_name="+".join(p.name for p in passes if p.kind is PassKind.MATRIX),
        adders=adders,
        adders_per_weight=round(adders / max(weights, 1), 4),
        weight_sqnr_db=round(matrix_sqnr_db(graph), 2),
        output_sqnr_db=accuracy.sqnr_db,
        golden=accuracy.golden,
    )


def run_sweep(
    pristine: MatrixGraph,
    base: list[Pass],
    entries: list[str],
    data: Dataset,
    config: Config | None = None,
    log: Callable[[str], None] | None = None,
    *,
    family: Family,
    jobs: Jobs = SERIAL,
) -> list[SweepPoint]:
    """Points for every entry, each on a fresh copy of ``pristine`` (the graph before passes
    and config); ``base`` is the pipeline as the user wrote it (before config completion).
    Each point is a task of ``jobs`` (its passes run one layer after another)."""
    shared = _SweepInputs(pristine, base, data, config, family, extras())
    return jobs.map(
        _sweep_task,
        entries,
        shared,
        [f"sweep {entry}" for entry in entries],
        None if log is None else lambda i: log(f"sweep {i + 1}/{len(entries)}: {entries[i]}"),
    )


@dataclass(frozen=True)
class _SweepInputs:
    """What every sweep point reads (sent to each worker once)."""

    pristine: MatrixGraph
    base: list[Pass]
    data: Dataset
    config: Config | None
    family: Family
    extras: Extras


def _sweep_task(entry: str, shared: _SweepInputs) -> SweepPoint:
    add_extras(shared.extras)
    graph = copy.deepcopy(shared.pristine)
    passes = edit_pipeline(shared.base, entry)
    if shared.config is not None:
        passes, _ = attach_layer_settings(graph, passes, shared.config.layer_settings(graph))
    run_passes(graph, passes, shared.data.x_calib, family=shared.family)
    net = lower_network(graph, shared.family)
    return sweep_point(graph, net, passes, accuracy_report(graph, net, shared.data))


# --------------------------------------------------------------------- --accuracy-drop

#: Per-layer SQNR targets (dB) ``--accuracy-drop`` chooses from, highest first; the first is
#: the fixed default every layer gets without data.
TARGET_LEVELS = (45.0, 40.0, 35.0, 31.0, 27.0, 24.0, 21.0, 18.0, 15.0, 12.0)

#: Fewer test samples than this make an accuracy too coarse to trade against (a warning).
MIN_SAMPLES = 100


def choose_targets(
    graph: MatrixGraph,
    auto: Any,
    data: Dataset,
    drop: float,
    family: Family,
    log: Callable[[str], None] | None = None,
    jobs: Jobs = SERIAL,
    trade_imported: bool = False,
    default: bool = False,
) -> AccuracyDrop:
    """Code the matrix layers of ``graph`` (formats set, no codes yet) with ``auto`` at
    per-layer SQNR targets from :data:`TARGET_LEVELS` minimizing the estimated LUTs subject to
    golden accuracy >= float - ``drop`` points on ``data``'s validation data (its
    ``x_val``/``y_val``; the test set when it has none, and the record says the figure is
    optimistic), then measures the choice on the test set (``default``: the drop is
    :data:`nnlcc.driver.DEFAULT_DROP`, not the user's).  A layer of an imported quantized
    model starts at its exact integers (level ``exact``) and leaves them only when
    ``trade_imported`` (an explicit ``--accuracy-drop``).

    Greedy descent: every layer starts at the highest level; each round lowers, by one level,
    the layer whose step saves the most LUTs while the whole network still meets the floor
    (every layer at every level is coded and lowered once, then cached: each round's new
    levels as tasks of ``jobs``; a point costs one golden evaluation).  Leaves the chosen codes
    in ``graph``; returns the report's record: the floor, the targets and every point tried
    (targets, est. LUTs, golden accuracy)."""
    from nnlcc.ir.imported import imported_ints
    from nnlcc.ir.lower import boundary, lower_any
    from nnlcc.ir.lowered import LoweredNetwork
    from nnlcc.ir.matrix import MatrixLayer
    from nnlcc.ir.notes import Note
    from nnlcc.ir.recurrent import RecurrentLayer
    from nnlcc.ir.truncate import TruncationBudget

    assert data.y_test is not None
    # chosen on the validation data when there is some, else on the test set (optimistic)
    x_sel, y_sel = (
        (data.x_val, data.y_val) if data.x_val is not None else (data.x_test, data.y_test)
    )
    assert y_sel is not None
    x_int: Any = None
    matrix = graph.matrix_layers()
    by_name = {la.name: la for la in matrix}
    cache: dict[tuple[str, float], tuple[Any, list[Note], Any, int]] = {}
    levels = {
        la.name: (
            (EXACT, *(TARGET_LEVELS if trade_imported else ()))
            if imported_ints(la) is not None
            else TARGET_LEVELS
        )
        for la in matrix
    }

    def fill(wanted: list[tuple[str, float]]) -> None:
        """Code every (layer, level) of ``wanted`` not cached yet, as tasks of ``jobs``."""
        todo = [k for k in dict.fromkeys(wanted) if k not in cache]
        done = jobs.map(
            _code_at,
            [(by_name[name], level) for name, level in todo],
            (auto, family, extras()),
            [f"auto {name} at {level:g} dB" for name, level in todo],
            None
            if log is None
            else lambda i: log(f"accuracy-drop: {todo[i][0]} at {todo[i][1]:g} dB"),
        )
        cache.update(zip(todo, done, strict=True))

    def coded(layer: MatrixLayer, level: float) -> tuple[Any, list[Note], Any, int]:
        fill([(layer.name, level)])
        return cache[(layer.name, level)]

    def install(targets: dict[str, float], layers: list[MatrixLayer] = matrix) -> None:
        for layer in layers:
            code, notes, _, _ = coded(layer, targets[layer.name])
            layer.notes.pop(TruncationBudget)
            layer.code = code
            for note in notes:
                layer.notes.put(note)

    fixed: dict[str, Any] = {}  # lowered non-matrix layers, formats never change

    def golden(targets: dict[str, float]) -> tuple[float, int]:
        nonlocal x_int
        assert graph.input_fmt is not None  # quantize ran
        fmts: dict[str, FixedFormat] = {graph.input_name: graph.input_fmt}
        layers = []
        for i, layer in enumerate(graph.layers):
            if isinstance(layer, MatrixLayer):
                low = coded(layer, targets[layer.name])[2]
            elif isinstance(layer, RecurrentLayer):  # its gate matrices' codes at the targets
                install(targets, layer.matrices())
                low = lower_any(layer, [fmts[t] for t in graph.inputs_of(i)])
            else:
                if layer.name not in fixed:
                    fixed[layer.name] = lower_any(layer, [fmts[t] for t in graph.inputs_of(i)])
                low = fixed[layer.name]
            layers.append(low)
            fmts[layer.name] = low.out_fmt
        net = LoweredNetwork(graph.name, graph.input_fmt, layers, graph.input_shape,
                             graph.input_name, **boundary(graph))  # fmt: skip
        if x_int is None:
            x_int = net.quantize_input(x_sel)
        y = net.output_real(net.evaluate(x_int))
        acc = float(np.mean(y.argmax(1) == y_sel))
        luts = sum(coded(la, targets[la.name])[3] for la in matrix)
        return acc, luts

    def reference(x: Any) -> Any:
        """The float network's outputs (a quantized model's: its own arithmetic)."""
        if graph.source and any(imported_ints(la) is not None for la in matrix):
            from nnlcc.frontends import onnx_reference

            return onnx_reference(graph.source, x)
        return graph.forward_float(x)

    y_float = reference(x_sel)
    float_acc = float(np.mean(np.asarray(y_float).argmax(1) == y_sel))
    floor = float_acc - drop / 100.0
    targets = {la.name: levels[la.name][0] for la in matrix}
    fill([(la.name, levels[la.name][0]) for la in matrix])
    acc, luts = golden(targets)
    points = [DropPoint(_shown(targets), luts, round(acc, 4))]
    while True:
        best: tuple[int, dict[str, float], float] | None = None
        nxt = [(la.name, levels[la.name].index(targets[la.name]) + 1) for la in matrix]
        fill([(name, levels[name][k]) for name, k in nxt if k < len(levels[name])])
        for layer in matrix:
            mine = levels[layer.name]
            at = mine.index(targets[layer.name])
            if at + 1 == len(mine):
                continue
            trial = {**targets, layer.name: mine[at + 1]}
            a, n = golden(trial)
            points.append(DropPoint(_shown(trial), n, round(a, 4)))
            if a >= floor - 1e-12 and (best is None or n < best[0]):
                best = (n, trial, a)
        if best is None or best[0] >= luts:
            break
        luts, targets, acc = best
    install(targets)
    test: tuple[float, float] | None = None
    if data.x_val is not None:  # the test set, seen only now
        x_int = None
        y_sel = data.y_test
        x_sel = data.x_test
        test_golden, _ = golden(targets)
        test_float = float(np.mean(np.asarray(reference(x_sel)).argmax(1) == y_sel))
        test = (test_float, test_golden)
    return AccuracyDrop(
        drop_points=drop,
        chosen_on=data.val_source or f"the test set of {data.name}",
        optimistic=data.x_val is None,
        default_drop=default,
        test_float=round(test[0], 4) if test is not None else None,
        test_golden=round(test[1], 4) if test is not None else None,
        float_accuracy=round(float_acc, 4),
        floor=round(floor, 4),
        golden=round(acc, 4),
        est_luts=luts,
        family=family.name,
        targets=_shown(targets),
        points=points,
    )


def _code_at(task: tuple[MatrixLayer, float], shared: tuple[Any, Family, Extras]) -> Any:
    """One layer coded by ``auto`` at one SQNR level: its code, the notes auto leaves on it
    (frozen: cached as they are), its lowered layer and estimated LUTs."""
    from nnlcc.ir.truncate import TruncationBudget
    from nnlcc.passes.auto import AutoRecord

    layer, level = task
    auto, family, found = shared
    add_extras(found)
    if level == EXACT:  # an imported model's layer, its integers kept
        best = auto.code_one(layer, family)
    else:
        best = dataclasses.replace(auto, sqnr_db=level).code_one(layer, family, False)
    kept = [layer.notes.get(AutoRecord), layer.notes.get(TruncationBudget)]
    return layer.code, [n for n in kept if n is not None], best.lowered, best.luts or 0


#: The level of a layer that keeps an imported model's integers exactly.
EXACT = math.inf


def _shown(targets: dict[str, float]) -> dict[str, float | str]:
    """Targets as the report writes them (``exact``: an imported layer's own integers)."""
    return {k: "exact" if v == EXACT else v for k, v in targets.items()}
