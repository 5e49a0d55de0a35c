"""The ``csd`` pass: every matrix layer's weights quantized to ``weight_bits`` signed bits (one
power-of-two scale per layer), written in canonical signed digits, and summed as shift-add
trees (an imported quantized model's layers keep their own integers, see :meth:`Csd.code`);
``cse`` shares common two-term subexpressions across rows, searched as
:func:`~nnlcc.passes.shift_add.share_pairs` does within ``cse_effort`` (the summary says whether
the search was full or partial).  This is the baseline every LCC result is compared with.

Its room: :class:`CsdCode` (the code, which prints its IR text) and :class:`CsdCoder` (reads
the text back; offers ``auto`` CSD at the fewest weight bits meeting the layer's SQNR, or an
imported model's integers as they are).  The IR
text is ``code csd frac=F cse=0|1`` with the integer weights below, one row per line.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.code_text import CodeReader, CodeWriter
from nnlcc.ir.csd import csd_adders, csd_nonzeros
from nnlcc.ir.fixed_point import quantize_weights, sqnr_db
from nnlcc.ir.imported import ImportedQuant, imported_ints
from nnlcc.ir.matrix import FloatArray, MatrixGraph, MatrixLayer, Term
from nnlcc.ir.text_syntax import Line, fields, flag, matrix_lines, parse_matrix
from nnlcc.ir.truncate import budget_layer, check_truncate_option
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.coder import Coder, CoderContext, Design
from nnlcc.passes.coding import code_layer
from nnlcc.passes.sampled import Sample, SampledCost, column_block, sampled_cost
from nnlcc.passes.shift_add import (
    CSE_EFFORT,
    MIN_WINDOW,
    CseStats,
    TermArrays,
    share_pairs,
    sum_rows,
)


def csd_terms(w_int: npt.NDArray[np.int64], inputs: list[int]) -> TermArrays:
    """Every nonzero CSD digit of ``w_int`` as a term ``±v[inputs[col]]·2**pos`` of its row,
    ordered by (row, column, position) like :func:`~nnlcc.ir.csd.csd_digits` per weight."""
    v = np.asarray(w_int, dtype=np.int64)
    digits: list[npt.NDArray[np.int64]] = []
    while np.any(v):  # csd_digits' recurrence on the whole matrix
        d = (v & 1) * (2 - (v & 3))
        digits.append(d)
        v = (v - d) >> 1
    if not digits:
        empty = np.zeros(0, dtype=np.int64)
        return TermArrays(v.shape[0], empty, empty, empty, np.zeros(0, dtype=bool))
    stack = np.stack(digits, axis=-1)  # (rows, cols, positions)
    r, c, pos = np.nonzero(stack)
    return TermArrays(
        n_rows=v.shape[0],
        row=r.astype(np.int64),
        node=np.asarray(inputs, dtype=np.int64)[c],
        shift=pos.astype(np.int64),
        neg=stack[r, c, pos] < 0,
    )


@dataclass
class CsdCode:
    """A layer's weights as ``weight_bits``-bit CSD integers with a shared scale."""

    w_int: npt.NDArray[np.int64]
    frac: int
    cse: bool = True
    cse_effort: int = CSE_EFFORT
    name: str = "csd"
    #: what sharing did at the last :meth:`lower` (``w_int`` is not changed after coding)
    _cse_stats: CseStats | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_weights(
        cls, weight: FloatArray, bits: int, cse: bool = True, cse_effort: int = CSE_EFFORT
    ) -> CsdCode:
        w_int, frac = quantize_weights(weight, bits)
        return cls(w_int=w_int, frac=frac, cse=cse, cse_effort=cse_effort)

    def implemented(self) -> FloatArray:
        return self.w_int.astype(np.float64) * 2.0**-self.frac

    def lower(self, graph: AdderGraph, inputs: list[int]) -> list[Term]:
        table = csd_terms(self.w_int, inputs)
        if self.cse:
            rows, self._cse_stats = share_pairs(graph, table, self.cse_effort)
        else:
            rows, self._cse_stats = table.to_rows(), CseStats("off")
        terms = sum_rows(graph, rows)
        return [Term(t.node, t.exp - self.frac, t.neg) for t in terms]

    def cse_stats(self) -> CseStats:
        """What sharing does to this code (from the last :meth:`lower`, else searched now)."""
        if self._cse_stats is None:
            cols = self.w_int.shape[1]
            table = csd_terms(self.w_int, list(range(cols)))
            scratch = AdderGraph.with_inputs([(-1, 1)] * cols)
            self._cse_stats = (
                share_pairs(scratch, table, self.cse_effort)[1] if self.cse else CseStats("off")
            )
        return self._cse_stats

    def text_lines(self, ind: str, out: CodeWriter) -> list[str]:
        return [
            f"{ind}code csd frac={self.frac} cse={int(self.cse)}",
            *matrix_lines(self.w_int, ind + "  "),
        ]

    def summary(self) -> dict[str, Any]:
        """Facts of the code; ``adders`` (what the lowered graph counts: the plain CSD adders
        less those sharing saved) spares a report from lowering the code again to count them."""
        plain, stats = csd_adders(self.w_int), self.cse_stats()
        return {
            "weight_frac_bits": self.frac,
            "csd_digits": int(csd_nonzeros(self.w_int).sum()),
            "csd_adders": plain,
            "adders": plain - stats.adders_saved,
            **stats.facts(),
        }


@dataclass(frozen=True)
class Csd(Pass):
    """Quantize weights to ``weight_bits`` and implement them as CSD shift-add trees;
    ``cse`` shares common two-term subexpressions across rows: an exact greedy search while
    ``sum(row terms**2) <= cse_effort``, above it a search over each term's
    ``max(8, cse_effort // terms)`` row neighbours (reported as partial); ``truncate``
    (``auto``, ``off`` or an SQNR in dB) lets partial sums drop the low bits the output cannot
    see, within an SQNR budget (:mod:`nnlcc.ir.truncate`)."""

    name: ClassVar[str] = "csd"
    kind: ClassVar[PassKind] = PassKind.MATRIX
    per_layer: ClassVar[bool] = True
    weight_bits: int = 8
    cse: bool = True
    truncate: str = "auto"
    cse_effort: int = CSE_EFFORT

    def __post_init__(self) -> None:
        if not 2 <= self.weight_bits <= 24:
            raise PassOptionError("csd: weight_bits must be in 2..24")
        check_truncate_option("csd", self.truncate)
        if self.cse_effort < 0:
            raise PassOptionError("csd: cse_effort must be >= 0")

    def code(self, layer: MatrixLayer, w: FloatArray) -> CsdCode:
        """The code of matrix ``w`` of ``layer``: an imported model's integers as they are,
        unless ``weight_bits`` is below their width (then rounded, as any float weights)."""
        got = imported_ints(layer) if w is layer.weight else None
        facts = layer.notes.get(ImportedQuant)
        bits = facts.weight.bits if facts is not None and facts.weight is not None else None
        if got is not None and bits is not None and bits <= self.weight_bits:
            return CsdCode(w_int=got[0], frac=got[1], cse=self.cse, cse_effort=self.cse_effort)
        return CsdCode.from_weights(w, self.weight_bits, self.cse, self.cse_effort)

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        for layer in graph.matrix_layers():
            if ctx.progress:
                ctx.progress(layer.name)
            layer.code = code_layer(layer, functools.partial(self.code, layer))
            budget_layer(layer, self.truncate)


#: Weight bits tried for the fewest meeting an SQNR (:func:`weight_bits_for`).
MAX_WEIGHT_BITS = 20


def weight_bits_for(m: FloatArray, target_db: float) -> int | None:
    """The fewest signed weight bits whose rounding keeps ``m``'s SQNR at ``target_db``."""
    if not (m != 0).any():
        return 2
    for bits in range(2, MAX_WEIGHT_BITS + 1):
        w_int, frac = quantize_weights(m, bits)
        if sqnr_db(m, w_int * 2.0**-frac) >= target_db:
            return bits
    return None


@dataclass(frozen=True)
class WeightWidth:
    """The fewest weight bits at which a matrix reaches ``target_db`` (None: none up to
    :data:`MAX_WEIGHT_BITS`), for a candidate that rounds the weights (csd, alkaid)."""

    bits: int | None
    target_db: float

    @classmethod
    def of(cls, ctx: CoderContext) -> WeightWidth:
        return cls(weight_bits_for(ctx.matrix, ctx.coding_db), ctx.coding_db)

    @property
    def label(self) -> str:
        """The candidate label's suffix: ``{weight_bits=N}`` (empty without a width)."""
        return f"{{weight_bits={self.bits}}}" if self.bits is not None else ""

    def need(self) -> int:
        """The width, or the error that fails the candidate."""
        if self.bits is None:
            raise BadInputError(
                f"no weight width up to {MAX_WEIGHT_BITS} bits reaches {self.target_db:.2f} dB"
            )
        return self.bits


class CsdCoder(Coder):
    """CSD's room in the registry: its IR text, and for ``auto`` CSD with shared
    subexpressions at the fewest weight bits meeting the SQNR."""

    kind: ClassVar[str] = "csd"
    in_auto: ClassVar[bool] = True

    def parse(self, line: Line, shape: tuple[int, int], reader: CodeReader) -> CsdCode:
        _, kv = fields(line, ("frac", "cse"))
        with line.at():
            frac, cse = int(kv["frac"]), flag(kv["cse"])
        return CsdCode(w_int=parse_matrix(line, shape, int, np.int64), frac=frac, cse=cse)

    def candidates(self, layer: MatrixLayer, ctx: CoderContext) -> list[Design]:
        if ctx.exact is not None:  # an imported model's integers, kept (priced or not)
            w_int, frac = ctx.exact
            return [Design("csd{imported}", lambda m: CsdCode(w_int=w_int, frac=frac, cse=True))]
        width = WeightWidth.of(ctx)

        def build(m: FloatArray) -> CsdCode:
            return CsdCode.from_weights(m, width.need(), cse=True)

        if ctx.priced:
            return [Design(f"csd{width.label}", build)]
        return [Design(f"csd{width.label}", build, sample=lambda m: _sampled(m, width, ctx))]


def _sampled(m: FloatArray, width: WeightWidth, ctx: CoderContext) -> SampledCost:
    """CSD with sharing of a big matrix priced on a block of its columns, quantized on the
    whole matrix's grid, its shared pairs searched in the whole matrix's window
    (:mod:`nnlcc.passes.sampled`)."""
    w_int, frac = quantize_weights(m, width.need())
    terms = int(csd_nonzeros(w_int).sum())
    window = max(MIN_WINDOW, CSE_EFFORT // max(terms, 1))

    def block(_: FloatArray, s: Sample) -> CsdCode:
        sub = w_int[np.ix_(s.rows, s.cols)]
        n = int(csd_nonzeros(sub).sum())
        return CsdCode(w_int=sub, frac=frac, cse=True, cse_effort=window * max(n, 1))

    shape = (int(m.shape[0]), int(m.shape[1]))
    return sampled_cost(m, column_block(shape), block, ctx.pricing, ctx.coding_db)
