"""The IR text of a :class:`~nnlcc.passes.circulant.code.CirculantCode` (called by
:mod:`nnlcc.ir.text` through its table of codes)::

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
from collections.abc import Callable
from typing import Any

import numpy as np

from nnlcc.ir.text_syntax import (
    Line,
    child,
    fields,
    flag,
    keyword,
    matrix_lines,
    parse_matrix,
    parse_shape,
    rest_of,
)
from nnlcc.passes.circulant.blocks import Layout
from nnlcc.passes.circulant.code import FORMS, CirculantCode

__all__ = ["parse_code", "print_code"]


def _layout_text(lay: Layout) -> str:
    if len(lay.groups) == 1 and lay.n == lay.cols:
        return "dense"
    return f"conv{len(lay.groups)}x{lay.n}"


def print_code(
    code: CirculantCode, ind: str, code_lines: Callable[[Any, str, str | None], list[str]]
) -> list[str]:
    lay = code.layout
    lines = [
        f"{ind}code circulant shape={lay.rows}x{lay.cols} block={lay.b}"
        f" layout={_layout_text(lay)} form={code.form} frac={code.frac}"
        f" spectrum_frac={code.spectrum_frac} exact={int(code.exact_projection)}",
        f"{ind}  facts {json.dumps(code.facts)}",
        f"{ind}  vectors",
        *matrix_lines(code.vectors.reshape(-1, lay.b), ind + "    "),
    ]
    if code.spectrum is not None:
        lines += [f"{ind}  spectrum", *matrix_lines(code.spectrum.reshape(-1, lay.b), ind + "    ")]
    if code.inner is not None:
        lines += code_lines(code.inner, ind + "  ", None)
    return lines


def parse_code(
    line: Line,
    shape: tuple[int, int],
    parse_inner: Callable[[Line, tuple[int, int]], tuple[Any, str | None]],
) -> CirculantCode:
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
        code.inner, _ = parse_inner(rest[0], shape)
    return code
