"""LCC's room in the registry: :class:`LccCoder` reads an LCC code back from the IR text
(:mod:`nnlcc.passes.lcc.text_form`) and offers ``auto`` its designs: ``algo=fp`` in both
orientations (``transpose=no`` and ``yes``) and ``algo=fs`` on layers of at most ``fs_entries``
weights; a layer too big to price gets ``transpose=auto`` alone (LCC beat every other coder on
every tall matrix measured, README's table)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np

from nnlcc.ir.code_text import CodeReader
from nnlcc.ir.matrix import MatrixCode, MatrixLayer
from nnlcc.ir.text_syntax import Line, child, fields, flag, keyword, parse_shape, rest_of
from nnlcc.passes.coder import Coder, CoderContext, Design
from nnlcc.passes.lcc.code import Lcc, LccCode
from nnlcc.passes.lcc.text_form import parse_slice

__all__ = ["LccCoder"]


def _unreached(code: MatrixCode) -> str | None:
    """An LCC code that stopped short of its target does not count.  Only a bare LCC code is
    checked: a shared layer's code is the share code around it, which auto lets through."""
    if isinstance(code, LccCode) and not code.summary_reached:
        return f"target not reached: {code.reached_db:.2f} dB"
    return None


class LccCoder(Coder):
    """LCC's IR text and its designs for ``auto`` (see the module doc)."""

    kind: ClassVar[str] = "lcc"
    in_auto: ClassVar[bool] = True

    def parse(self, line: Line, shape: tuple[int, int], reader: CodeReader) -> LccCode:
        pos, kv = fields(line, ("shape", "algo", "target_db", "reached_db", "transposed"))
        if pos[1:]:
            line.fail(f"unexpected {pos[1]!r}")
        with line.at():
            r, c = parse_shape(kv["shape"])
            target, reached = float(kv["target_db"]), float(kv["reached_db"])
            transposed = flag(kv["transposed"])
        if (r, c) != shape:
            line.fail(f"lcc shape {r}x{c} for a {shape[0]}x{shape[1]} matrix")
        opt = child(line, 0, "options").leaf()
        with opt.at():
            options = json.loads(rest_of(opt))
        fr, fc = (c, r) if transposed else (r, c)
        slices = []
        for s in line.children[1:]:
            if keyword(s) != "slice":
                s.fail(f"expected 'slice', got '{keyword(s)}'")
            slices.append(parse_slice(s, fr))
        exact = np.zeros((fr, fc))
        for p in slices:
            if np.any(p.cols >= fc) or np.any(p.cols < 0):
                line.fail("a slice reads a column outside the matrix")
            exact[:, p.cols] += p.block
        if transposed:
            exact = np.ascontiguousarray(exact.T)
        return LccCode(
            shape=(r, c),
            slices=slices,
            exact=exact,
            target_db=target,
            reached_db=reached,
            algo=kv["algo"],
            options=options,
            transposed=transposed,
        )

    def candidates(self, layer: MatrixLayer, ctx: CoderContext) -> list[Design]:
        def design(label: str, **opts: Any) -> Design:
            # Lcc.build codes to the truncation reserve above sqnr_db itself (truncate=auto)
            lcc = Lcc(sqnr_db=ctx.sqnr_db, truncate=ctx.truncate, **opts)
            return Design(label, lcc.build, _unreached)

        if ctx.exact is not None:  # an imported model's integers: lcc approximates them
            return []
        if not ctx.priced:
            return [design("lcc")]
        out = [design("lcc{transpose=no}", transpose="no")]
        out.append(design("lcc{transpose=yes}", transpose="yes"))
        if layer.weight.size <= ctx.fs_entries:
            out.append(design("lcc{algo=fs}", algo="fs"))
        return out
