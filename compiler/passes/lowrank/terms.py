"""Lowering a factor's code on signed, shifted input terms.

A matrix code lowers on input *nodes*: column ``c`` multiplies ``v[inputs[c]]``.  The second
factor of a low-rank code multiplies the first factor's outputs, which are terms
``±v[node]·2**exp`` (:class:`~nnlcc.ir.matrix.Term`): exact, but with a shift and a sign
that no node holds.  Rather than spending an adder on each sign, the factor codes nnlcc knows
(CSD with sharing, LCC, alkaid) are lowered here on :data:`SignedTerm` inputs directly: the
input's shift and sign fold into every term that reads it, which is free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnlcc.errors import BadInputError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.matrix import MatrixCode, Term
from nnlcc.passes.alkaid import AlkaidCode
from nnlcc.passes.csd import CsdCode, csd_terms
from nnlcc.passes.lcc.code import LccCode
from nnlcc.passes.lcc.lowering import lower_straight, lower_transposed
from nnlcc.passes.shift_add import CseStats, SignedTerm, TermArrays, share_pairs, sum_rows

#: The codes a factor may have (what :func:`lower_on_terms` knows how to lower).
FACTOR_CODES = (CsdCode, LccCode, AlkaidCode)


def lower_on_terms(code: MatrixCode, graph: AdderGraph, inputs: Sequence[SignedTerm]) -> list[Term]:
    """``code`` lowered with column ``c`` multiplying the value of ``inputs[c]``."""
    if isinstance(code, LccCode):
        rows = code.shape[0]
        if code.transposed:
            return lower_transposed(code.slices, rows, graph, inputs)
        return lower_straight(code.slices, rows, graph, inputs)
    if isinstance(code, CsdCode):
        return _lower_csd(code, graph, inputs)
    if isinstance(code, AlkaidCode):
        return _lower_alkaid(code, graph, inputs)
    raise BadInputError(f"a low-rank factor cannot be coded by {code.name}")


def _lower_csd(code: CsdCode, graph: AdderGraph, inputs: Sequence[SignedTerm]) -> list[Term]:
    """:meth:`CsdCode.lower` on signed shifted inputs (sharing searched the same way)."""
    cols = code.w_int.shape[1]
    table = csd_terms(code.w_int, list(range(cols)))
    node = np.array([t[0] for t in inputs], dtype=np.int64)
    shift = np.array([t[1] for t in inputs], dtype=np.int64)
    neg = np.array([t[2] for t in inputs], dtype=np.bool_)
    base = int(shift.min()) if len(shift) else 0  # sharing keys want shifts >= 0
    c = table.node
    mapped = TermArrays(
        n_rows=table.n_rows,
        row=table.row,
        node=node[c],
        shift=table.shift + shift[c] - base,
        neg=table.neg != neg[c],
    )
    if code.cse:
        rows, code._cse_stats = share_pairs(graph, mapped, code.cse_effort)
    else:
        rows, code._cse_stats = mapped.to_rows(), CseStats("off")
    return [Term(t.node, t.exp + base - code.frac, t.neg) for t in sum_rows(graph, rows)]


def _lower_alkaid(code: AlkaidCode, graph: AdderGraph, inputs: Sequence[SignedTerm]) -> list[Term]:
    """:meth:`AlkaidCode.lower` on signed shifted inputs (its stages read terms already)."""
    rows = code.w_int.shape[0]
    if not code.stages:
        return [Term(None, 0) for _ in range(rows)]
    terms: list[SignedTerm | None] = list(inputs)
    for stage in code.stages:
        terms = stage.lower(graph, terms)
    return [Term(None, 0) if t is None else Term(t[0], t[1] - code.frac, t[2]) for t in terms]
