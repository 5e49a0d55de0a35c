"""The ``csd`` pass: every matrix layer's weights quantized to ``weight_bits`` signed bits (one
power-of-two scale per layer), written in canonical signed digits, and summed as shift-add
trees; ``cse`` shares common two-term subexpressions across rows.  This is the baseline every
LCC result is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from nnlcc.errors import PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.csd import csd_adders, csd_digits, csd_nonzeros
from nnlcc.ir.fixed_point import quantize_weights
from nnlcc.ir.matrix import FloatArray, MatrixGraph, Term
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.coding import code_layer
from nnlcc.passes.shift_add import SignedTerm, build_terms_sum
from nnlcc.passes.truncation import check_option, plan_layer


@dataclass
class CsdCode:
    """A layer's weights as ``weight_bits``-bit CSD integers with a shared scale."""

    w_int: npt.NDArray[np.int64]
    frac: int
    cse: bool = True
    name: str = "csd"

    @classmethod
    def from_weights(cls, weight: FloatArray, bits: int, cse: bool = True) -> CsdCode:
        w_int, frac = quantize_weights(weight, bits)
        return cls(w_int=w_int, frac=frac, cse=cse)

    def implemented(self) -> FloatArray:
        return self.w_int.astype(np.float64) * 2.0**-self.frac

    def lower(self, graph: AdderGraph, inputs: list[int]) -> list[Term]:
        rows: list[list[SignedTerm]] = []
        for r in range(self.w_int.shape[0]):
            row: list[SignedTerm] = []
            for c in np.nonzero(self.w_int[r])[0]:
                for pos, d in csd_digits(int(self.w_int[r, c])):
                    row.append((inputs[int(c)], pos, d < 0))
            rows.append(row)
        terms = build_terms_sum(graph, rows, cse=self.cse)
        return [Term(t.node, t.exp - self.frac, t.neg) for t in terms]

    def summary(self) -> dict[str, Any]:
        return {
            "weight_frac_bits": self.frac,
            "csd_digits": int(csd_nonzeros(self.w_int).sum()),
            "csd_adders": csd_adders(self.w_int),
        }


@dataclass(frozen=True)
class Csd(Pass):
    """Quantize weights to ``weight_bits`` and implement them as CSD shift-add trees;
    ``cse`` shares common two-term subexpressions across rows; ``truncate`` (``auto``, ``off``
    or an SQNR in dB) lets partial sums drop the low bits the output cannot see, within an
    SQNR budget (:mod:`nnlcc.passes.truncation`)."""

    name: ClassVar[str] = "csd"
    kind: ClassVar[PassKind] = PassKind.MATRIX
    per_layer: ClassVar[bool] = True
    weight_bits: int = 8
    cse: bool = True
    truncate: str = "auto"

    def __post_init__(self) -> None:
        if not 2 <= self.weight_bits <= 24:
            raise PassOptionError("csd: weight_bits must be in 2..24")
        check_option("csd", self.truncate)

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        for layer in graph.matrix_layers():
            if ctx.progress:
                ctx.progress(layer.name)
            layer.code = code_layer(
                layer, lambda w: CsdCode.from_weights(w, self.weight_bits, cse=self.cse)
            )
            plan_layer(layer, self.truncate)
