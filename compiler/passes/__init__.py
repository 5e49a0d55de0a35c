"""Passes over the matrix IR, and how a pipeline of them is written and run.

Each pass is a module of its own (``prune``, ``quantize``, ``share``, ``csd``, ``lcc/``); a pass
class carries its metadata (:class:`~nnlcc.passes.base.Pass`), the registry loads classes by
name on demand, and :mod:`~nnlcc.passes.runner` runs a pipeline honouring per-layer settings.
"""

from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.pipeline import format_pass, format_pipeline, parse_pipeline
from nnlcc.passes.registry import (
    get_all_passes,
    get_pass,
    names_of_kind,
    pass_names,
    register_pass,
    unregister_pass,
)
from nnlcc.passes.runner import (
    attach_layer_settings,
    layer_pass,
    resolve_pipeline,
    run_pass,
    run_passes,
)

__all__ = [
    "Pass",
    "PassContext",
    "PassKind",
    "attach_layer_settings",
    "format_pass",
    "format_pipeline",
    "get_all_passes",
    "get_pass",
    "layer_pass",
    "names_of_kind",
    "parse_pipeline",
    "pass_names",
    "register_pass",
    "resolve_pipeline",
    "run_pass",
    "run_passes",
    "unregister_pass",
]
