"""Typed layer notes: the facts frontends and passes record about a layer for later steps.

Every layer has ``notes``, a :class:`LayerNotes`: at most one note of each class, in the order
they were first recorded.  A note is a small typed object whose class is owned by the module
that produces it, or by :mod:`nnlcc.ir` where layers below the producer read it:

======================  ======================  ==========================  =======================
key (IR text)           class                   module                      recorded by
======================  ======================  ==========================  =======================
``onnx_nodes``          :class:`OnnxNodes`      :mod:`nnlcc.ir.notes`       the ONNX frontend
``batchnorm``           :class:`BatchNormLayer` :mod:`nnlcc.ir.notes`       the ONNX frontend
``config``              ``LayerSettings``       ``nnlcc.passes.runner``     per-layer settings
``column_origin``       ``ColumnOrigin``        ``nnlcc.passes.prune``      prune
``kept_column_indices`` ``KeptColumns``         ``nnlcc.passes.prune``      prune
``input_ms``            ``InputPower``          :mod:`nnlcc.ir.truncate`    quantize
``share_plan``          ``SharePlan``           ``nnlcc.passes.share``      share (a block)
``truncation``          ``TruncationBudget``    :mod:`nnlcc.ir.truncate`    csd, lcc, auto
``auto``                ``AutoRecord``          ``nnlcc.passes.auto``       auto
``schedule``            ``ScheduleSetting``     :mod:`nnlcc.ir.timing`      schedule
``imported``            ``ImportedQuant``       :mod:`nnlcc.ir.imported`    the ONNX frontend
======================  ======================  ==========================  =======================

A step reads a note by its class, and the type checker knows what it gets::

    budget = layer.notes.get(TruncationBudget)   # TruncationBudget | None
    layer.notes.put(InputPower(0.33))            # replaces one of its class, in place
    layer.notes.pop(TruncationBudget)

The IR text carries every note (:mod:`nnlcc.ir.text`): a :class:`JsonNote` is one entry of
the layer's ``info {...}`` JSON line under its :attr:`Note.key`; a :class:`BlockNote` (a
share plan) prints its own block.  The parser finds a key's class in the notes of
:data:`nnlcc.ir.text.IR_NOTES` and those its caller gives (``Syntax.notes``: nnlcc's passes'
are the registry's ``_NOTES``).  A new note: a class here or beside its producer, with a
``key``, ``to_json`` and ``from_json``, and one line in one of those two tables
(``docs/architecture.md``, "How to add a layer note").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar, cast

__all__ = [
    "BatchNormLayer",
    "BlockNote",
    "JsonNote",
    "LayerNotes",
    "Note",
    "OnnxNodes",
]


class Note(ABC):
    """Base of every layer note (subclass :class:`JsonNote` or :class:`BlockNote`)."""

    #: the note's name in the IR text (its ``info`` key, or its block's ``key=``); unique
    key: ClassVar[str]
    #: the note was derived from the layer's weights as they are: a pass that changes the
    #: weights (prune) must come before whatever recorded it
    of_weights: ClassVar[bool] = False


class JsonNote(Note):
    """A note written as JSON: one entry of the layer's ``info`` line."""

    @abstractmethod
    def to_json(self) -> Any:
        """The note as JSON data (what the ``info`` line holds under :attr:`key`)."""

    @classmethod
    @abstractmethod
    def from_json(cls, obj: Any) -> Self:
        """The note :meth:`to_json` wrote; ``ValueError`` (naming the problem) otherwise."""


class BlockNote(Note):
    """A note with a text block of its own (not JSON): a block of the layer, or of the code
    that holds the same object (:class:`nnlcc.ir.code_text.CodeWriter`)."""

    @abstractmethod
    def block_lines(self, ind: str, key: str | None) -> list[str]:
        """The block at indent ``ind``; ``key`` (when not None) must be written in it so that
        its parser (``Syntax.blocks``) knows the block is the layer's note."""


N = TypeVar("N", bound=Note)


class LayerNotes:
    """A layer's notes: at most one of each class, in the order first recorded (replacing
    one keeps its place, as the IR text prints them)."""

    __slots__ = ("_notes",)

    def __init__(self, *notes: Note) -> None:
        self._notes: dict[type[Note], Note] = {}
        for note in notes:
            self.put(note)

    def get(self, kind: type[N]) -> N | None:
        """The note of class ``kind``, or None."""
        return cast("N | None", self._notes.get(kind))

    def __getitem__(self, kind: type[N]) -> N:
        """The note of class ``kind`` (``KeyError`` naming its key when absent)."""
        note = self.get(kind)
        if note is None:
            raise KeyError(f"no {kind.key!r} note")
        return note

    def put(self, note: Note) -> None:
        """Record ``note``, replacing the one of its class (in place) if any."""
        kind = type(note)
        clash = next((k for k in self._notes if k.key == kind.key and k is not kind), None)
        if clash is not None:
            raise ValueError(f"notes {clash.__name__} and {kind.__name__} share key {kind.key!r}")
        self._notes[kind] = note

    def pop(self, kind: type[N]) -> N | None:
        """Remove and return the note of class ``kind`` (None: there was none)."""
        return cast("N | None", self._notes.pop(kind, None))

    def __contains__(self, kind: object) -> bool:
        return kind in self._notes

    def __iter__(self) -> Iterator[Note]:
        return iter(list(self._notes.values()))

    def __len__(self) -> int:
        return len(self._notes)

    def copy(self) -> LayerNotes:
        """A new container holding the same note objects."""
        return LayerNotes(*self._notes.values())

    def without(self, *kinds: type[Note]) -> LayerNotes:
        """A new container without the notes of ``kinds`` (the others are the same objects)."""
        return LayerNotes(*(n for k, n in self._notes.items() if k not in kinds))

    def of_weights(self) -> list[Note]:
        """The notes derived from the weights as they are (:attr:`Note.of_weights`)."""
        return [n for n in self._notes.values() if n.of_weights]

    def __repr__(self) -> str:
        return f"LayerNotes({', '.join(map(repr, self._notes.values()))})"


# ------------------------------------------------------------------ the frontend's notes


def _strings(obj: Any, what: str) -> list[str]:
    if not isinstance(obj, list) or not all(isinstance(s, str) for s in obj):
        raise ValueError(f"{what} must be a list of strings")
    return list(obj)


@dataclass
class OnnxNodes(JsonNote):
    """The ONNX nodes a layer implements, in model order (a Gemm and the BatchNormalization
    and Add folded into it), as ``op name`` labels for messages and ``nnlcc inspect``."""

    key: ClassVar[str] = "onnx_nodes"
    nodes: list[str]

    def to_json(self) -> list[str]:
        return list(self.nodes)

    @classmethod
    def from_json(cls, obj: Any) -> OnnxNodes:
        return cls(_strings(obj, "onnx_nodes"))


@dataclass(frozen=True)
class BatchNormLayer(JsonNote):
    """The layer is a BatchNormalization of its own (a diagonal matrix), one the frontend could
    not fold into the layer before it."""

    key: ClassVar[str] = "batchnorm"

    def to_json(self) -> bool:
        return True

    @classmethod
    def from_json(cls, obj: Any) -> BatchNormLayer:
        if obj is not True:
            raise ValueError("batchnorm must be true (absent: not a batch norm of its own)")
        return cls()
