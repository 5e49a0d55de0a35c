"""Running a pipeline: complete it, attach per-layer settings, run each pass.

Per-layer settings (from ``nnlcc.toml``, already validated by :mod:`nnlcc.config`) are each
layer's :class:`LayerSettings` note (key ``config``): its matrix pass and its passes' options.
:func:`layer_pass` gives a pass as configured for one layer.  Matrix passes code each layer on
its own, so :func:`run_pass` runs them once per layer, as configured for it, on a view of the
graph holding just that layer, as independent tasks (:mod:`nnlcc.jobs`: at once on a
cluster); the passes themselves know nothing about configs or jobs.
Passes that chain through the whole graph (``quantize``) call :func:`layer_pass` per layer.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from nnlcc.ir.family import Family
from nnlcc.ir.matrix import Layer, MatrixCode, MatrixGraph, MatrixLayer
from nnlcc.ir.notes import JsonNote, LayerNotes
from nnlcc.jobs import SERIAL, Jobs
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.pipeline import parse_pipeline
from nnlcc.passes.registry import Extras, add_extras, extras, names_of_kind

P = TypeVar("P", bound=Pass)
Log = Callable[[str], None]

DEFAULT_PIPELINE = "quantize,auto"


def _quiet(_: str) -> None:
    pass


@dataclass
class LayerSettings(JsonNote):
    """One layer's settings from ``nnlcc.toml``, its note (key ``config``): the matrix pass
    that codes it (None: the pipeline's), each pass's options for it, and the rules (layer
    names, patterns or kinds) they came from."""

    key: ClassVar[str] = "config"
    matrix: str | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"matrix": self.matrix, "options": self.options, "rules": self.rules}

    @classmethod
    def from_json(cls, obj: Any) -> LayerSettings:
        if not isinstance(obj, Mapping) or set(obj) - {"matrix", "options", "rules"}:
            raise ValueError("config must be a JSON object of matrix, options and rules")
        matrix, options, rules = obj.get("matrix"), obj.get("options", {}), obj.get("rules", [])
        if matrix is not None and not isinstance(matrix, str):
            raise ValueError("config: matrix must be a pass name or null")
        if not isinstance(options, dict) or not all(isinstance(o, dict) for o in options.values()):
            raise ValueError("config: options must map pass names to objects of options")
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise ValueError("config: rules must be a list of strings")
        return cls(matrix, {p: dict(o) for p, o in options.items()}, list(rules))


def resolve_pipeline(text: str | None, default: str = DEFAULT_PIPELINE) -> list[Pass]:
    """Parse the pipeline; put a format pass first (after any leading structural pass, which
    changes the activations it calibrates on) and a matrix pass last if the user left them
    out (the report stores the completed pipeline)."""
    passes = parse_pipeline(text if text else default)
    if not any(p.kind is PassKind.FORMAT for p in passes):
        at = next(
            (i for i, p in enumerate(passes) if p.kind is not PassKind.STRUCTURAL), len(passes)
        )
        fmt = [p for p in parse_pipeline(default) if p.kind is PassKind.FORMAT]
        passes = passes[:at] + fmt + passes[at:]
    if not any(p.kind is PassKind.MATRIX for p in passes):
        passes += [p for p in parse_pipeline(default) if p.kind is PassKind.MATRIX]
    return passes


def attach_layer_settings(
    graph: MatrixGraph, passes: list[Pass], settings: Mapping[str, LayerSettings]
) -> tuple[list[Pass], dict[str, dict[str, Any]]]:
    """Note each layer's settings on it (:class:`LayerSettings`); return the pipeline completed
    with the matrix passes that layers ask for (default options) and the applied settings by
    layer name (for the report).

    When any layer chooses its matrix pass, every other matrix layer is pinned to the
    pipeline's own (last) matrix pass, so each layer is coded by exactly one of them."""
    base = [p.name for p in passes if p.kind is PassKind.MATRIX]
    pin = any(s.matrix for s in settings.values())
    matrix_layers = graph.matrix_layers()
    applied: dict[str, dict[str, Any]] = {}
    for layer in graph.layers:
        s = settings.get(layer.name)
        is_matrix = layer in matrix_layers
        if is_matrix and (s is not None or pin) and (s is None or s.matrix is None) and base:
            s = dataclasses.replace(s or LayerSettings(), matrix=base[-1])
        if s is not None:
            layer.notes.put(s)
            applied[layer.name] = {
                "matrix": s.matrix if is_matrix else None,
                **{p: dict(o) for p, o in s.options.items()},
            }
    have = {p.name for p in passes}
    for s in settings.values():
        name = s.matrix
        if name and name not in have:
            passes = [*passes, *parse_pipeline(name)]
            have.add(name)
    return passes, applied


def layer_pass(p: P, layer: Layer) -> P | None:
    """Pass ``p`` as configured for ``layer``: ``p`` itself when the layer has no settings,
    a copy with the layer's options, or ``None`` when ``p`` is a matrix pass and the layer is
    implemented by another one."""
    cfg = layer.notes.get(LayerSettings)
    if cfg is None:
        return p
    if cfg.matrix is not None and p.kind is PassKind.MATRIX and p.name != cfg.matrix:
        return None
    opts = cfg.options.get(p.name)
    return dataclasses.replace(p, **opts) if opts else p  # type: ignore[type-var]


def run_pass(p: Pass, graph: MatrixGraph, ctx: PassContext) -> None:
    """Run pass ``p`` on ``graph`` honouring per-layer settings.  A matrix pass codes each
    matrix layer on its own: one task per layer (the pass as configured for it,
    :func:`layer_pass`; layers given to another matrix pass skipped) on a view of the graph
    holding just that layer, run by ``ctx.jobs`` (at once on a cluster, or one after
    another here); each layer's code and notes are installed in layer order, whatever the
    order the tasks finished in.  Other passes run on the whole graph."""
    if p.kind is not PassKind.MATRIX:
        p.apply(graph, ctx)
        return
    todo = [
        (v, layer) for layer in graph.matrix_layers() if (v := layer_pass(p, layer)) is not None
    ]
    views = []
    for variant, layer in todo:
        view = copy.copy(graph)
        view.layers = [layer]
        views.append((variant, view))
    shared = (dataclasses.replace(ctx, progress=None, jobs=SERIAL), extras())
    progress = ctx.progress
    coded = ctx.jobs.map(
        _code_layer,
        views,
        shared,
        [f"{p.name} {layer.name}" for _, layer in todo],
        None if progress is None else lambda i: progress(todo[i][1].name),
    )
    for (_, layer), (code, notes) in zip(todo, coded, strict=True):
        layer.code = code
        layer.notes = notes


def _code_layer(
    task: tuple[Pass, MatrixGraph], shared: tuple[PassContext, Extras]
) -> tuple[MatrixCode | None, LayerNotes]:
    """One task of :func:`run_pass`: the matrix pass on a one-layer view; what it left on the
    layer (its code, its notes)."""
    p, view = task
    ctx, found = shared
    add_extras(found)  # a user's own coders, in a worker process too
    p.apply(view, ctx)
    (layer,) = view.layers
    assert isinstance(layer, MatrixLayer)
    return layer.code, layer.notes


def run_passes(
    graph: MatrixGraph,
    passes: list[Pass],
    calibration: npt.NDArray[np.float64],
    family: Family,
    log: Log = _quiet,
    jobs: Jobs = SERIAL,
) -> None:
    """Run ``passes`` in order with progress per layer; the graph verifies after each.
    ``family``: the board's FPGA family (what the passes price and schedule on); ``jobs``:
    what runs a matrix pass's layers (:func:`run_pass`)."""
    n = len(graph.matrix_layers())
    for p in passes:
        done = [0]

        def layer_step(name: str, p: Pass = p, done: list[int] = done) -> None:
            done[0] += 1
            log(f"pass {p.name}: {name} ({done[0]}/{n})")

        log(f"pass {p.name}")
        run_pass(p, graph, PassContext(calibration, family, progress=layer_step, jobs=jobs))
        graph.verify()


def matrix_pass_names() -> tuple[str, ...]:
    return names_of_kind(PassKind.MATRIX)
