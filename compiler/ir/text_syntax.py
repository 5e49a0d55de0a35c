"""The syntax of the matrix IR text (:mod:`nnlcc.ir.text`): lines nested by indentation,
``key=value`` fields, names, formats, shapes and rows of numbers, written and read back.

Floats are written as Python's ``repr``: the shortest text that reads back to the same
float64.  A name that is not a plain word (spaces, quotes, ``=`` or ``,``) is a JSON string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.matrix import Shape
from nnlcc.ir.window import Window

_WORD = re.compile(r"[^\s\"=,]+")


def quote(s: str) -> str:
    return s if _WORD.fullmatch(s) else json.dumps(s)


def fmt_text(f: FixedFormat | None) -> str:
    return "-" if f is None else str(f)


def shape_text(s: Shape) -> str:
    return "x".join(map(str, s))


def row_text(a: npt.NDArray[Any]) -> str:
    return " ".join(map(repr, a.tolist()))


def matrix_lines(a: npt.NDArray[Any], ind: str) -> list[str]:
    return [ind + row_text(r) for r in a] if a.shape[1] else []


class LineError(BadInputError):
    """A parse error that already names its line."""


@dataclass
class Line:
    no: int
    indent: int
    text: str
    children: list[Line] = field(default_factory=list)

    def fail(self, why: str) -> NoReturn:
        raise LineError(f"IR text line {self.no}: {why}")

    @contextmanager
    def at(self) -> Iterator[None]:
        """Errors raised inside name this line."""
        try:
            yield
        except LineError:
            raise
        except (BadInputError, ValueError, KeyError, IndexError, TypeError) as e:
            self.fail(str(e) or type(e).__name__)

    def leaf(self) -> Line:
        if self.children:
            self.children[0].fail("unexpected indented line")
        return self


def line_tree(text: str) -> list[Line]:
    root = Line(0, -1, "")
    stack = [root]
    for no, raw in enumerate(text.splitlines(), 1):
        body = raw.strip()
        if not body or body.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if raw[indent] == "\t":
            raise LineError(f"IR text line {no}: indent with spaces, not tabs")
        while stack[-1].indent >= indent:
            stack.pop()
        node = Line(no, indent, body)
        stack[-1].children.append(node)
        stack.append(node)
    return root.children


TOKEN = re.compile(r'(?:"(?:[^"\\]|\\.)*"|[^\s"])+')


def unquote(s: str) -> str:
    if s.startswith('"'):
        value = json.loads(s)
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {s}")
        return value
    return s


def fields(line: Line, keys: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """Positional tokens after the keyword, and the ``key=value`` ones (exactly ``keys``)."""
    pos: list[str] = []
    kv: dict[str, str] = {}
    for tok in TOKEN.findall(line.text)[1:]:
        key, eq, value = tok.partition("=")
        if eq and not tok.startswith('"'):
            if key not in keys or key in kv:
                line.fail(f"unexpected or repeated field {key!r}")
            kv[key] = unquote(value)
        else:
            pos.append(unquote(tok))
    missing = [k for k in keys if k not in kv]
    if missing:
        line.fail(f"missing field {missing[0]}=")
    return pos, kv


def keyword(line: Line) -> str:
    return line.text.split(None, 1)[0]


def rest_of(line: Line) -> str:
    parts = line.text.split(None, 1)
    return parts[1] if len(parts) > 1 else ""


def parse_fmt(s: str) -> FixedFormat | None:
    return None if s == "-" else FixedFormat.parse(s)


def parse_shape(s: str) -> Shape:
    return tuple(int(v) for v in s.split("x"))


def flag(s: str) -> bool:
    if s not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, got {s!r}")
    return s == "1"


def ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",")] if s else []


def parse_window(kv: dict[str, str]) -> Window:
    kh, kw = parse_shape(kv["k"])
    sh, sw = parse_shape(kv["s"])
    pt, pl, pb, pr = ints(kv["p"])
    return Window((kh, kw), (sh, sw), (pt, pl, pb, pr))


def numbers(line: Line, text: str, n: int, conv: Callable[[str], Any]) -> list[Any]:
    vals = text.split()
    if len(vals) != n:
        line.fail(f"expected {n} numbers, got {len(vals)}")
    with line.at():
        return [conv(v) for v in vals]


def parse_matrix(
    line: Line, shape: tuple[int, int], conv: Callable[[str], Any], dtype: Any
) -> npt.NDArray[Any]:
    """The rows below ``line`` (none when the matrix has no columns)."""
    rows, cols = shape
    want = rows if cols else 0
    if len(line.children) != want:
        line.fail(f"expected {want} matrix rows, got {len(line.children)}")
    out = np.zeros(shape, dtype=dtype)
    for i, row in enumerate(line.children):
        out[i] = numbers(row.leaf(), row.text, cols, conv)
    return out


def child(line: Line, i: int, word: str) -> Line:
    """Line ``i`` below ``line``, which must start with ``word``."""
    if not 0 <= i < len(line.children):
        line.fail(f"expected a '{word}' line below")
    below = line.children[i]
    if keyword(below) != word:
        below.fail(f"expected '{word}', got '{keyword(below)}'")
    return below
