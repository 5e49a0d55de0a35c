"""The ``csd`` pass: every matrix layer's weights quantized to ``weight_bits`` signed bits (one
power-of-two scale per layer), written in canonical signed digits, and summed as shift-add
trees; ``cse`` shares common two-term subexpressions across rows, searched as
:func:`~nnlcc.passes.shift_add.share_pairs` does within ``cse_effort`` (the summary says whether
the search was full or partial).  This is the baseline every LCC result is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from nnlcc.errors import PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.csd import csd_adders, csd_nonzeros
from nnlcc.ir.fixed_point import quantize_weights
from nnlcc.ir.matrix import FloatArray, MatrixGraph, Term
from nnlcc.ir.truncate import budget_layer, check_truncate_option
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.coding import code_layer
from nnlcc.passes.shift_add import (
    CSE_EFFORT,
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

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        for layer in graph.matrix_layers():
            if ctx.progress:
                ctx.progress(layer.name)
            layer.code = code_layer(
                layer,
                lambda w: CsdCode.from_weights(w, self.weight_bits, self.cse, self.cse_effort),
            )
            budget_layer(layer, self.truncate)
