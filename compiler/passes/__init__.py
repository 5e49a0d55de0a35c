"""Passes over the matrix IR, and how a pipeline of them is written and run.

Each pass is a module of its own (``prune``, ``quantize``, ``share``, ``csd``, ``lcc/``); a pass
class carries its metadata (:class:`~nnlcc.passes.base.Pass`), the registry loads classes by
name on demand, and :mod:`~nnlcc.passes.runner` runs a pipeline honouring per-layer settings.
Each matrix code's room has a :class:`~nnlcc.passes.coder.Coder` in the registry too (its IR
text, its designs for ``auto``); :func:`parse_graph` reads IR text with all of them.
"""

from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.pipeline import format_pass, format_pipeline, parse_pipeline
from nnlcc.passes.registry import (
    get_all_passes,
    get_coder,
    get_pass,
    names_of_kind,
    pass_names,
    register_coder,
    register_note,
    register_pass,
    unregister_coder,
    unregister_note,
    unregister_pass,
)
from nnlcc.passes.runner import (
    LayerSettings,
    attach_layer_settings,
    layer_pass,
    resolve_pipeline,
    run_pass,
    run_passes,
)
from nnlcc.passes.text import parse_graph, print_graph

__all__ = [
    "LayerSettings",
    "Pass",
    "PassContext",
    "PassKind",
    "attach_layer_settings",
    "format_pass",
    "format_pipeline",
    "get_all_passes",
    "get_coder",
    "get_pass",
    "layer_pass",
    "names_of_kind",
    "parse_graph",
    "parse_pipeline",
    "pass_names",
    "print_graph",
    "register_coder",
    "register_note",
    "register_pass",
    "resolve_pipeline",
    "run_pass",
    "run_passes",
    "unregister_coder",
    "unregister_note",
    "unregister_pass",
]
