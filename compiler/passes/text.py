"""The IR text with nnlcc's matrix codes: :mod:`nnlcc.ir.text` knows no code kind, so this is
where a graph is read back with the parsers of every registered coder (a user's own too)."""

from __future__ import annotations

from nnlcc.ir import text as _text
from nnlcc.ir.matrix import MatrixGraph
from nnlcc.passes.registry import text_syntax

__all__ = ["parse_graph", "print_graph"]

print_graph = _text.print_graph


def parse_graph(text: str) -> MatrixGraph:
    """The graph :func:`print_graph` wrote, its codes rebuilt by the registry's coders
    (:class:`~nnlcc.errors.BadInputError` names the offending line)."""
    return _text.parse_graph(text, text_syntax())
