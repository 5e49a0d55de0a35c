"""The IR text of a :class:`~nnlcc.passes.circulant.code.CirculantCode`, which prints it
(:meth:`~nnlcc.passes.circulant.code.CirculantCode.text_lines`), and :class:`CirculantCoder`,
the circulant code's room in the registry, which reads it back::

    code circulant shape=16x64 block=4 layout=dense form=fft frac=7 spectrum_frac=8 exact=0
      facts {"projection_sqnr_db": 1.17, ...}
      vectors
        12 -3 0 7                    (one line per block: groups x p x q lines of b integers)
      spectrum                       (fft only: the rounded CRT spectrum, same layout)
        ...
      code lcc ...                   (lcc only: the LCC code of the expanded projection)

``layout`` is ``dense`` (one group of all columns) or ``convTxC`` (T taps of C channels).
The structure is the block vectors, never a dense matrix.
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

import numpy as np

from nnlcc.ir.code_text import CodeReader
from nnlcc.ir.text_syntax import (
    Line,
    child,
    fields,
    flag,
    keyword,
    parse_matrix,
    parse_shape,
    rest_of,
)
from nnlcc.passes.circulant.blocks import Layout
from nnlcc.passes.circulant.code import FORMS, CirculantCode
from nnlcc.passes.coder import Coder

__all__ = ["CirculantCoder", "parse_code"]


def parse_code(line: Line, shape: tuple[int, int], reader: CodeReader) -> CirculantCode:
    keys = ("shape", "block", "layout", "form", "frac", "spectrum_frac", "exact")
    pos, kv = fields(line, keys)
    if pos[1:]:
        line.fail(f"unexpected {pos[1]!r}")
    with line.at():
        r, c = parse_shape(kv["shape"])
        b, frac, sfrac = int(kv["block"]), int(kv["frac"]), int(kv["spectrum_frac"])
        exact = flag(kv["exact"])
    if (r, c) != shape:
        line.fail(f"circulant shape {r}x{c} for a {shape[0]}x{shape[1]} matrix")
    if not 2 <= b <= 64:
        line.fail(f"circulant block {b} is not in 2..64")
    form = kv["form"]
    if form not in FORMS:
        line.fail(f"circulant form {form!r} is not one of {', '.join(FORMS)}")
    m = re.fullmatch(r"conv(\d+)x(\d+)", kv["layout"])
    if kv["layout"] == "dense":
        lay = Layout.dense(r, c, b)
    elif m and int(m[1]) * int(m[2]) == c:
        lay = Layout.conv(r, int(m[1]), int(m[2]), b)
    else:
        line.fail(f"bad circulant layout {kv['layout']!r} for {c} columns")
    facts_line = child(line, 0, "facts").leaf()
    with facts_line.at():
        facts = json.loads(rest_of(facts_line))
        if not isinstance(facts, dict):
            raise ValueError("facts must be a JSON object")
    blocks = lay.stored // b
    vectors = parse_matrix(child(line, 1, "vectors"), (blocks, b), int, np.int64)
    code = CirculantCode(lay, vectors.reshape(lay.shape), frac, form, exact, facts=facts)
    code.spectrum_frac = sfrac
    rest = line.children[2:]
    want = {"fft": "spectrum", "lcc": "code"}.get(form)
    if len(rest) != (1 if want else 0) or (want and keyword(rest[0]) != want):
        line.fail(f"a circulant {form} code holds " + (f"a '{want}' block" if want else "no more"))
    if form == "fft":
        spec = parse_matrix(rest[0], (blocks, b), int, np.int64)
        code.spectrum = spec.reshape(lay.shape)
    elif form == "lcc":
        code.inner = reader.code(rest[0], shape)
    return code


class CirculantCoder(Coder):
    """The circulant code's room in the registry: its IR text (the ``circulant`` pass codes,
    with its own choice of form; ``auto`` does not try it)."""

    kind: ClassVar[str] = "circulant"

    def parse(self, line: Line, shape: tuple[int, int], reader: CodeReader) -> CirculantCode:
        return parse_code(line, shape, reader)
