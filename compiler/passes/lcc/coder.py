"""LCC's room in the registry: :class:`LccCoder` reads an LCC code back from the IR text
(:mod:`nnlcc.passes.lcc.text_form`) and offers ``auto`` its designs: ``algo=fp`` in both
orientations at the published slice width (``transpose=no`` and ``yes``), the cost-driven
search over orientation and slice width (``objective=luts``, :mod:`.search`) and ``algo=fs``
on layers of at most ``fs_entries`` weights.  A layer too big to price whole gets the designs
of :data:`BIG_VARIANTS`, each priced on whole slices sampled from its matrix
(:mod:`nnlcc.passes.sampled`)."""

from __future__ import annotations

import functools
import json
from typing import Any, ClassVar, Literal

import numpy as np

from nnlcc.ir.code_text import CodeReader
from nnlcc.ir.matrix import FloatArray, MatrixCode, MatrixLayer
from nnlcc.ir.text_syntax import Line, child, fields, flag, keyword, parse_shape, rest_of
from nnlcc.passes.coder import Coder, CoderContext, Design
from nnlcc.passes.lcc.code import Lcc, LccCode
from nnlcc.passes.lcc.options import TILE_ROWS
from nnlcc.passes.lcc.search import base_width
from nnlcc.passes.lcc.text_form import parse_slice
from nnlcc.passes.sampled import Sample, SampledCost, lcc_sample, sampled_cost, straight_sums

__all__ = ["BIG_VARIANTS", "LccCoder"]

#: The LCC designs of a layer too big to price whole: (transposed, slice width over
#: ``round(log2 N)``, ``tile_rows``).  On a Laplace 256x2304 matrix at 40 dB (ECP5, against
#: CSD with sharing): transposed width 11 tiled 0.767, width 15 tiled 0.757, width 11 untiled
#: 0.720, width 15 untiled 0.702.
BIG_VARIANTS = ((True, 0, TILE_ROWS), (True, 4, 0), (True, 0, 0), (False, 0, TILE_ROWS))


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
            return [_big(ctx, *v) for v in BIG_VARIANTS]
        out = [design("lcc{transpose=no}", transpose="no")]
        out.append(design("lcc{transpose=yes}", transpose="yes"))
        searched = Lcc(sqnr_db=ctx.sqnr_db, truncate=ctx.truncate, objective="luts")
        out.append(
            Design(
                "lcc{objective=luts}",
                functools.partial(searched.build_priced, pricing=ctx.pricing),
                _unreached,
            )
        )
        if layer.weight.size <= ctx.fs_entries:
            out.append(design("lcc{algo=fs}", algo="fs"))
        return out


def _big(ctx: CoderContext, transposed: bool, step: int, tiles: int) -> Design:
    """One design of :data:`BIG_VARIANTS` for the matrix of ``ctx``, with its sampled price."""
    side: Literal["yes", "no"] = "yes" if transposed else "no"
    rows, cols = (int(n) for n in ctx.matrix.shape)
    width = base_width(cols if transposed else rows) + step
    opts = {"transpose": side, "slice": str(width), "tile_rows": tiles}
    label = "lcc{" + ",".join(f"{k}={v}" for k, v in opts.items()) + "}"
    lcc = Lcc(
        sqnr_db=ctx.sqnr_db,
        truncate=ctx.truncate,
        transpose=side,
        slice=str(width),
        tile_rows=tiles,
    )

    def sample(m: FloatArray) -> SampledCost:
        shape = (int(m.shape[0]), int(m.shape[1]))
        smp = lcc_sample(shape, transposed, width)
        extra = 0 if transposed else straight_sums(shape, smp, width)

        def coded(sub: FloatArray, _: Sample) -> LccCode:
            return LccCode.build(sub, lcc.coding_options())

        return sampled_cost(m, smp, coded, ctx.pricing, ctx.coding_db, extra)

    return Design(label, lcc.build, _unreached, sample)
