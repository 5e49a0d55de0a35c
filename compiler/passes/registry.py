"""The registry: pass names to classes, and code kinds to coders, imported only when asked for.

Like xDSL's ``get_all_passes``, these are plain tables of loaders, so importing nnlcc registers
nothing by side effect and a pass module is imported the first time a pipeline names it.  A
user's own pass is added explicitly with :func:`register_pass` (and removed with
:func:`unregister_pass`), a user's own coder with :func:`register_coder`.

The coders (:class:`~nnlcc.passes.coder.Coder`: one per matrix code) give the IR text its
codes (:func:`text_syntax`) and ``auto`` its candidates (:func:`auto_coders`); ``_NOTES`` gives
it the classes of the layer notes the passes record (:mod:`nnlcc.ir.notes`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from nnlcc.ir.code_text import Syntax
from nnlcc.ir.notes import JsonNote
from nnlcc.passes.base import Pass, PassKind
from nnlcc.passes.coder import Coder

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
    "schedule": ("nnlcc.passes.schedule", "Schedule"),
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


#: code kind -> (module, class) of its coder: every matrix code of nnlcc, one line each.
#: The order is auto's order of candidates (ties go to the earlier).
_CODERS: dict[str, tuple[str, str]] = {
    "csd": ("nnlcc.passes.csd", "CsdCoder"),
    "lcc": ("nnlcc.passes.lcc.coder", "LccCoder"),
    "alkaid": ("nnlcc.passes.alkaid", "AlkaidCoder"),
    "share": ("nnlcc.passes.share", "ShareCoder"),
    "circulant": ("nnlcc.passes.circulant.text_form", "CirculantCoder"),
    "lowrank": ("nnlcc.passes.lowrank.coder", "LowrankCoder"),
}

#: coders added by :func:`register_coder` (a user's own)
_EXTRA_CODERS: dict[str, Coder] = {}


@functools.cache
def _load_coder(module: str, cls: str) -> Coder:
    coder: Coder = getattr(importlib.import_module(module), cls)()
    return coder


def coder_kinds() -> tuple[str, ...]:
    """Every code kind with a coder, in registry order (imports nothing)."""
    return (*_CODERS, *(k for k in _EXTRA_CODERS if k not in _CODERS))


def get_coder(kind: str) -> Coder:
    """The coder of code ``kind``; ``KeyError`` for unknown kinds."""
    if kind in _EXTRA_CODERS:
        return _EXTRA_CODERS[kind]
    return _load_coder(*_CODERS[kind])


def register_coder(coder: Coder) -> Coder:
    """Make a coder of one's own known to the IR text and (when ``in_auto``) to ``auto``."""
    if coder.kind in _CODERS:
        raise ValueError(f"code kind {coder.kind!r} is taken by a built-in coder")
    _EXTRA_CODERS[coder.kind] = coder
    return coder


def unregister_coder(kind: str) -> None:
    _EXTRA_CODERS.pop(kind, None)


def auto_coders() -> tuple[str, ...]:
    """The kinds whose coders ``auto`` tries, in registry order (imports those modules)."""
    return tuple(k for k in coder_kinds() if get_coder(k).in_auto)


#: note key -> (module, class): the JSON layer notes of nnlcc's passes, one line each (the
#: notes of :mod:`nnlcc.ir`'s own classes are :data:`nnlcc.ir.text.IR_NOTES`; a block note,
#: the share plan, comes with its coder's ``blocks``).
_NOTES: dict[str, tuple[str, str]] = {
    "config": ("nnlcc.passes.runner", "LayerSettings"),
    "kept_column_indices": ("nnlcc.passes.prune", "KeptColumns"),
    "column_origin": ("nnlcc.passes.prune", "ColumnOrigin"),
    "auto": ("nnlcc.passes.auto", "AutoRecord"),
}

#: notes added by :func:`register_note` (a user's own pass's)
_EXTRA_NOTES: dict[str, type[JsonNote]] = {}


@functools.cache
def _load_note(module: str, cls: str) -> type[JsonNote]:
    loaded: type[JsonNote] = getattr(importlib.import_module(module), cls)
    return loaded


def note_classes() -> dict[str, type[JsonNote]]:
    """Every pass's JSON note class by key (imports their modules)."""
    return {key: _load_note(*where) for key, where in _NOTES.items()} | _EXTRA_NOTES


def register_note(cls: type[JsonNote]) -> type[JsonNote]:
    """Make the IR text read back a note of one's own pass (usable as a decorator)."""
    if cls.key in _NOTES:
        raise ValueError(f"note key {cls.key!r} is taken by a built-in note")
    _EXTRA_NOTES[cls.key] = cls
    return cls


def unregister_note(key: str) -> None:
    _EXTRA_NOTES.pop(key, None)


@dataclass(frozen=True)
class Extras:
    """The passes, coders and notes a user registered (what a worker process must know to
    run a task the same as this process)."""

    passes: dict[str, type[Pass]]
    coders: dict[str, Coder]
    notes: dict[str, type[JsonNote]]


def extras() -> Extras:
    """This process's user registrations (:func:`register_pass`, ...)."""
    return Extras(dict(_EXTRA), dict(_EXTRA_CODERS), dict(_EXTRA_NOTES))


def add_extras(found: Extras) -> None:
    """Register ``found`` here too (a worker's registry, before a task; in the process that
    took them, a no-op)."""
    _EXTRA.update(found.passes)
    _EXTRA_CODERS.update(found.coders)
    _EXTRA_NOTES.update(found.notes)


def text_syntax() -> Syntax:
    """The parsers of every coder's code and layer blocks and the passes' note classes, for
    :func:`nnlcc.ir.text.parse_graph` (imports every coder's and noting pass's module)."""
    coders = [get_coder(k) for k in coder_kinds()]
    return Syntax(
        codes={c.kind: c.parse for c in coders},
        blocks={word: parse for c in coders for word, parse in c.blocks.items()},
        notes=note_classes(),
    )
