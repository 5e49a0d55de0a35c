"""How matrix codes take part in the IR text (:mod:`nnlcc.ir.text`), which knows no code kind.

Printing: a code prints its own ``code KIND ...`` block (:meth:`MatrixCode.text_lines`), asking
the :class:`CodeWriter` for what only the printer knows: the lines of a code nested in it and
the ``layer.info`` key of an object the layer also keeps there.  A ``layer.info`` value that is
not JSON prints itself as a block of the layer (a :class:`TextBlock`, e.g. a share plan).

Parsing: :func:`nnlcc.ir.text.parse_graph` reads ``code KIND`` blocks and those layer blocks
with the parsers of a :class:`Syntax` its caller gives; nnlcc's are the passes' coders
(:func:`nnlcc.passes.registry.text_syntax`, used by :func:`nnlcc.passes.text.parse_graph`).
A parser gets a :class:`CodeReader` for nested codes and for objects the layer's info shares.

Codes without a text form print as ``code NAME unsupported``, which does not parse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from nnlcc.ir.matrix import MatrixCode
from nnlcc.ir.text_syntax import TOKEN, Line, quote

__all__ = [
    "BlockParser",
    "CodeParser",
    "CodeReader",
    "CodeWriter",
    "Syntax",
    "TextBlock",
]


@runtime_checkable
class TextBlock(Protocol):
    """A ``layer.info`` value with its own text: a block of the layer, or of a code."""

    def block_lines(self, ind: str, key: str | None) -> list[str]:
        """The block at indent ``ind``; ``key`` (when not None) is its ``layer.info`` key,
        which the block must write so that its parser can return it."""
        ...


class CodeWriter:
    """What a code's :meth:`~nnlcc.ir.matrix.MatrixCode.text_lines` may ask the printer.

    ``shared`` are the layer's :class:`TextBlock` info values by key; a code that holds one of
    them names its key (:meth:`info_key`) instead of the layer printing it again."""

    def __init__(self, shared: Mapping[str, object] | None = None) -> None:
        self._shared = dict(shared or {})
        #: the info keys a code named (their blocks are the code's, not the layer's)
        self.used: set[str] = set()

    def info_key(self, obj: object) -> str | None:
        """The first ``layer.info`` key holding ``obj`` itself (None: none, or a nested code)."""
        key = next((k for k, v in self._shared.items() if v is obj), None)
        if key is not None:
            self.used.add(key)
        return key

    def code(self, code: MatrixCode, ind: str) -> list[str]:
        """The block of ``code`` nested in another code (it shares no info keys)."""
        return code_lines(code, ind, CodeWriter())


def code_lines(code: MatrixCode, ind: str, out: CodeWriter) -> list[str]:
    """``code``'s own block, or ``code NAME unsupported`` for a code without a text form."""
    if not callable(getattr(code, "text_lines", None)):
        return [f"{ind}code {quote(code.name)} unsupported"]
    return code.text_lines(ind, out)


#: reads the ``code KIND ...`` block ``line`` of a ``rows x cols`` matrix
CodeParser = Callable[[Line, tuple[int, int], "CodeReader"], MatrixCode]
#: reads a layer block of a non-JSON info value: ``(its layer.info key, the value)``
BlockParser = Callable[[Line], tuple[str, Any]]


@dataclass(frozen=True)
class Syntax:
    """The parsers :func:`~nnlcc.ir.text.parse_graph` knows besides the layers': of ``code
    KIND`` blocks by ``KIND`` and of the layer blocks of non-JSON info values by keyword."""

    codes: Mapping[str, CodeParser] = field(default_factory=dict)
    blocks: Mapping[str, BlockParser] = field(default_factory=dict)


class CodeReader:
    """What a :data:`CodeParser` may ask the parser: nested codes, and the ``layer.info``
    entries the layer shares with its code (:meth:`keep`)."""

    def __init__(self, syntax: Syntax) -> None:
        self.syntax = syntax
        #: ``layer.info`` entries the code's parsers kept
        self.kept: dict[str, Any] = {}

    def code(self, line: Line, shape: tuple[int, int]) -> MatrixCode:
        """The ``code KIND`` block ``line`` for a matrix of ``shape``."""
        toks = TOKEN.findall(line.text)
        kind = toks[1] if len(toks) > 1 else ""
        parse = self.syntax.codes.get(kind)
        if parse is None:
            known = ", ".join(self.syntax.codes) or "none (no code parsers were given)"
            line.fail(f"cannot rebuild code {kind!r}: the codes known are {known}")
        return parse(line, shape, self)

    def keep(self, key: str, obj: object) -> None:
        """The layer's ``info[key]`` is ``obj`` (which the code holds too)."""
        self.kept[key] = obj
