"""The low-rank code's room in the registry: :class:`LowrankCoder` reads a
:class:`~nnlcc.passes.lowrank.code.LowRankCode` back from the IR text (:mod:`.text_form`) and
offers ``auto`` one design, ``W = U V + E`` searched over ranks and factor coders
(:func:`~nnlcc.passes.lowrank.code.build`), on layers whose singular spectrum has a rank
worth pricing (:meth:`~nnlcc.passes.lowrank.spectrum.Spectrum.paying_rank`) and that are small
enough to price whole."""

from __future__ import annotations

from typing import ClassVar

from nnlcc.ir.code_text import CodeReader
from nnlcc.ir.matrix import FloatArray, MatrixLayer
from nnlcc.ir.text_syntax import Line
from nnlcc.passes.coder import Coder, CoderContext, Design
from nnlcc.passes.lowrank.code import LowRankCode, build
from nnlcc.passes.lowrank.spectrum import Spectrum
from nnlcc.passes.lowrank.text_form import parse_code

__all__ = ["LowrankCoder"]


class LowrankCoder(Coder):
    """The low-rank code's IR text and its design for ``auto`` (see the module doc)."""

    kind: ClassVar[str] = "lowrank"
    in_auto: ClassVar[bool] = True

    def parse(self, line: Line, shape: tuple[int, int], reader: CodeReader) -> LowRankCode:
        return parse_code(line, shape, reader)

    def candidates(self, layer: MatrixLayer, ctx: CoderContext) -> list[Design]:
        if not ctx.priced or not Spectrum.of(ctx.matrix).paying_rank(ctx.coding_db)[0]:
            return []

        def design(m: FloatArray) -> LowRankCode:
            return build(m, ctx.coding_db, ctx.pricing)

        return [Design("lowrank", design)]
