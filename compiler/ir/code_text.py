"""How matrix codes and layer notes take part in the IR text (:mod:`nnlcc.ir.text`), which
knows no code kind and no pass's note.

Printing: a code prints its own ``code KIND ...`` block (:meth:`MatrixCode.text_lines`), asking
the :class:`CodeWriter` for what only the printer knows: the lines of a code nested in it and
the key of a layer note the code holds too.  A note that is not JSON prints itself as a block
of the layer (a :class:`~nnlcc.ir.notes.BlockNote`, e.g. a share plan).

Parsing: :func:`nnlcc.ir.text.parse_graph` reads ``code KIND`` blocks, those layer blocks and
the ``info`` entries of the notes it does not know itself with the parsers of a
:class:`Syntax` its caller gives; nnlcc's are the passes' coders and notes
(:func:`nnlcc.passes.registry.text_syntax`, used by :func:`nnlcc.passes.text.parse_graph`).
A parser gets a :class:`CodeReader` for nested codes and for notes the layer shares.

Codes without a text form print as ``code NAME unsupported``, which does not parse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from nnlcc.ir.matrix import MatrixCode
from nnlcc.ir.notes import BlockNote, JsonNote, Note
from nnlcc.ir.text_syntax import TOKEN, Line, quote

__all__ = [
    "BlockParser",
    "CodeParser",
    "CodeReader",
    "CodeWriter",
    "Syntax",
]


class CodeWriter:
    """What a code's :meth:`~nnlcc.ir.matrix.MatrixCode.text_lines` may ask the printer.

    ``shared`` are the layer's :class:`BlockNote` s; a code that holds one of them names its
    key (:meth:`note_key`) instead of the layer printing it again."""

    def __init__(self, shared: Iterable[BlockNote] = ()) -> None:
        self._shared = list(shared)
        #: the notes a code named (their blocks are the code's, not the layer's)
        self.used: list[Note] = []

    def note_key(self, obj: object) -> str | None:
        """The key of the layer note that is ``obj`` itself (None: none, or a nested code)."""
        found = [note for note in self._shared if id(note) == id(obj)]  # that very object
        self.used += found[:1]
        return found[0].key if found else None

    def code(self, code: MatrixCode, ind: str) -> list[str]:
        """The block of ``code`` nested in another code (it shares no notes)."""
        return code_lines(code, ind, CodeWriter())


def code_lines(code: MatrixCode, ind: str, out: CodeWriter) -> list[str]:
    """``code``'s own block, or ``code NAME unsupported`` for a code without a text form."""
    if not callable(getattr(code, "text_lines", None)):
        return [f"{ind}code {quote(code.name)} unsupported"]
    return code.text_lines(ind, out)


#: reads the ``code KIND ...`` block ``line`` of a ``rows x cols`` matrix
CodeParser = Callable[[Line, tuple[int, int], "CodeReader"], MatrixCode]
#: reads a layer block of a :class:`BlockNote` (the block names the note's key)
BlockParser = Callable[[Line], BlockNote]


@dataclass(frozen=True)
class Syntax:
    """The parsers :func:`~nnlcc.ir.text.parse_graph` knows besides the layers' and its own
    notes': of ``code KIND`` blocks by ``KIND``, of the layer blocks of block notes by
    keyword, and the classes of JSON notes by key."""

    codes: Mapping[str, CodeParser] = field(default_factory=dict)
    blocks: Mapping[str, BlockParser] = field(default_factory=dict)
    notes: Mapping[str, type[JsonNote]] = field(default_factory=dict)


class CodeReader:
    """What a :data:`CodeParser` may ask the parser: nested codes, and the layer notes the
    layer shares with its code (:meth:`keep`)."""

    def __init__(self, syntax: Syntax) -> None:
        self.syntax = syntax
        #: the layer notes the code's parsers kept
        self.kept: list[Note] = []

    def code(self, line: Line, shape: tuple[int, int]) -> MatrixCode:
        """The ``code KIND`` block ``line`` for a matrix of ``shape``."""
        toks = TOKEN.findall(line.text)
        kind = toks[1] if len(toks) > 1 else ""
        parse = self.syntax.codes.get(kind)
        if parse is None:
            known = ", ".join(self.syntax.codes) or "none (no code parsers were given)"
            line.fail(f"cannot rebuild code {kind!r}: the codes known are {known}")
        return parse(line, shape, self)

    def keep(self, note: Note) -> None:
        """``note`` (which the code holds too) is also one of the layer's notes."""
        self.kept.append(note)
