"""The IR text of an LCC code: :meth:`LccCode.text_lines <nnlcc.passes.lcc.code.LccCode.text_lines>`
prints it and :class:`~nnlcc.passes.lcc.coder.LccCoder` reads it back; the slice programs'
lines are written and read here::

    code lcc shape=10x16 algo=fp target_db=45.0 reached_db=45.3 transposed=0
      options {"nonzeros": 2, ...}
      slice cols=0,1,2,3 scale=-2 rounds=3 terms=2
        c4 = +c0<<-1 -c2<<3                  (one codeword per line; _ is an unused term slot)
        out 4 5 -1 ...                       (the codeword of each row, -1: none)

A slice's exact block and the code's ``exact`` matrix are recomputed from the programs (every
product is a power-of-two scaling of a sum, exact in float64); the cached costs are recomputed
when asked for.
"""

from __future__ import annotations

import re

import numpy as np

from nnlcc.ir.text_syntax import Line, child, fields, ints, numbers, rest_of, row_text
from nnlcc.passes.lcc.fp import SliceProgram

__all__ = ["parse_slice", "slice_lines"]


def _term(src: int, exp: int, neg: bool) -> str:
    if src < 0 and exp == 0 and not neg:
        return "_"
    return f"{'-' if neg else '+'}{'_' if src < 0 else f'c{src}'}<<{exp}"


def slice_lines(s: SliceProgram, ind: str) -> list[str]:
    """The ``slice`` block of one column slice at indent ``ind``."""
    k = len(s.cols)
    lines = [
        f"{ind}slice cols={','.join(map(str, s.cols.tolist()))} scale={s.scale}"
        f" rounds={s.rounds} terms={s.src.shape[1]}"
    ]
    for i, (src, exp, neg) in enumerate(
        zip(s.src.tolist(), s.exp.tolist(), s.neg.tolist(), strict=True)
    ):
        terms = " ".join(_term(*t) for t in zip(src, exp, neg, strict=True))
        lines.append(f"{ind}  c{k + i} = {terms}".rstrip())
    lines.append(f"{ind}  out {row_text(s.out)}".rstrip())
    return lines


_TERM = re.compile(r"_|([+-])(?:c(\d+)|_)<<(-?\d+)")


def parse_slice(line: Line, rows: int) -> SliceProgram:
    """The slice program of a ``slice`` block (``rows``: of the factored matrix)."""
    pos, kv = fields(line, ("cols", "scale", "rounds", "terms"))
    if pos:
        line.fail(f"unexpected {pos[0]!r}")
    with line.at():
        cols = np.array(ints(kv["cols"]), dtype=np.int64)
        scale, rounds, terms = int(kv["scale"]), int(kv["rounds"]), int(kv["terms"])
    k = len(cols)
    if not line.children:
        line.fail("a slice ends with an 'out' line")
    body, last = line.children[:-1], child(line, len(line.children) - 1, "out")
    src = np.full((len(body), terms), -1, dtype=np.int32)
    exp = np.zeros((len(body), terms), dtype=np.int16)
    neg = np.zeros((len(body), terms), dtype=np.bool_)
    values = np.zeros((k + len(body), k))
    values[:k] = np.eye(k)
    for i, cw in enumerate(body):
        lhs, eq, rhs = cw.leaf().text.partition(" =")
        if lhs != f"c{k + i}" or not eq:
            cw.fail(f"expected codeword line 'c{k + i} = ...'")
        toks = rhs.split()
        if len(toks) != terms:
            cw.fail(f"expected {terms} terms, got {len(toks)}")
        for t, tok in enumerate(toks):
            m = _TERM.fullmatch(tok)
            if not m:
                cw.fail(f"bad term {tok!r}")
            if m[1] is None:
                continue
            s, e, ng = (int(m[2]) if m[2] else -1), int(m[3]), m[1] == "-"
            if s >= k + i:
                cw.fail(f"c{s} is not defined before c{k + i}")
            src[i, t], exp[i, t], neg[i, t] = s, e, ng
            if s >= 0:
                part = np.ldexp(values[s], e)
                values[k + i] = values[k + i] - part if ng else values[k + i] + part
    out = np.array(numbers(last.leaf(), rest_of(last), rows, int), dtype=np.int32)
    if np.any(out >= k + len(body)) or np.any(out < -1):
        last.fail("out names an undefined codeword")
    block = np.zeros((rows, k))
    has = out >= 0
    block[has] = np.ldexp(values[out[has]], scale)
    return SliceProgram(
        cols=cols, scale=scale, src=src, exp=exp, neg=neg, out=out, block=block, rounds=rounds
    )
