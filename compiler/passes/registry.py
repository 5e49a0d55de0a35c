"""The pass registry: pass names to classes, imported only when asked for.

Like xDSL's ``get_all_passes``, this is a plain table of loaders, so importing nnlcc registers
nothing by side effect and a pass module is imported the first time a pipeline names it.  A
user's own pass is added explicitly with :func:`register_pass` (and removed with
:func:`unregister_pass`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

from nnlcc.passes.base import Pass, PassKind

#: name -> (module, class). The one list of nnlcc's passes.
_PASSES: dict[str, tuple[str, str]] = {
    "prune": ("nnlcc.passes.prune", "Prune"),
    "quantize": ("nnlcc.passes.quantize", "Quantize"),
    "share": ("nnlcc.passes.share", "Share"),
    "csd": ("nnlcc.passes.csd", "Csd"),
    "lcc": ("nnlcc.passes.lcc", "Lcc"),
    "lowrank": ("nnlcc.passes.lowrank", "Lowrank"),
    "circulant": ("nnlcc.passes.circulant", "Circulant"),
    "auto": ("nnlcc.passes.auto", "Auto"),
    "pipeline": ("nnlcc.passes.schedule", "Pipeline"),
}


#: passes added by :func:`register_pass` (a user's own)
_EXTRA: dict[str, type[Pass]] = {}


@functools.cache
def _load(module: str, cls: str) -> type[Pass]:
    loaded: type[Pass] = getattr(importlib.import_module(module), cls)
    return loaded


def _extra(cls: type[Pass]) -> type[Pass]:
    return cls


def get_all_passes() -> dict[str, Callable[[], type[Pass]]]:
    """Every pass name with a loader of its class (nothing is imported until called)."""
    table: dict[str, Callable[[], type[Pass]]] = {
        name: functools.partial(_load, *where) for name, where in _PASSES.items()
    }
    table.update({name: functools.partial(_extra, cls) for name, cls in _EXTRA.items()})
    return table


def pass_names() -> tuple[str, ...]:
    return (*_PASSES, *(n for n in _EXTRA if n not in _PASSES))


def get_pass(name: str) -> type[Pass]:
    """The class of pass ``name``; ``KeyError`` for unknown names (the parser says which)."""
    if name in _EXTRA:
        return _EXTRA[name]
    return _load(*_PASSES[name])


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Make a pass class of one's own available by its ``name`` (usable as a decorator)."""
    if cls.name in _PASSES:
        raise ValueError(f"pass name {cls.name!r} is taken by a built-in pass")
    _EXTRA[cls.name] = cls
    return cls


def unregister_pass(name: str) -> None:
    _EXTRA.pop(name, None)


def names_of_kind(kind: PassKind) -> tuple[str, ...]:
    """Names of the passes of one kind, in registry order (imports those modules)."""
    return tuple(n for n in _PASSES if get_pass(n).kind is kind)
