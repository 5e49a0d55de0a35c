"""LCC slice programs as adder graphs, summed where the adders are narrowest.

An adder's carry chain runs from the higher of its operands' lowest bits to the top bit of
its sum, so adding a small correction to a large value costs the large value's whole width.
A matching-pursuit codeword is exactly that, a chain ``((t1 + t2) + t3) + ...`` of ever
smaller terms, and every adder of the chain is as wide as ``t1``.  Two rewrites, both exact
(the graph computes the same integers, the adder count does not change):

* **small first**: a sum of several terms is built as a Huffman tree on the terms' magnitudes
  (the largest ``|value|`` a term can take): the two smallest are added first, so only the
  last adders are wide (:func:`sum_small_first`);
* **inlined chains**: a codeword used once, as a term of one other codeword, and by no output
  is not built on its own: its terms join its user's sum (:func:`expanded_terms`).  Codewords
  that other rows use (matching pursuit reuses a third of them) stay, so the sharing LCC
  relies on is kept.

On a 128x128 Gaussian matrix at 40 dB (ECP5 cost model) the straight program goes from 290k to
273k estimated LUTs and the transposed one from 286k to 278k, with the same adders.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.matrix import Term
from nnlcc.passes.lcc.fp import SliceProgram
from nnlcc.passes.shift_add import SignedTerm

#: A term of a codeword's sum: (codeword id, exponent, negated).
Ref = tuple[int, int, bool]


def add_terms(graph: AdderGraph, t1: SignedTerm, t2: SignedTerm) -> SignedTerm:
    """One adder computing ``t1 + t2`` (shifts may be negative: the common one is factored)."""
    (a, sa, na), (b, sb, nb) = t1, t2
    m = min(sa, sb)
    if na and nb:
        return graph.add(a, b, sa - m, sb - m), m, True
    if na:
        return graph.add(b, a, sb - m, sa - m, nb=True), m, False
    return graph.add(a, b, sa - m, sb - m, nb=nb), m, False


def magnitude(graph: AdderGraph, t: SignedTerm) -> float:
    """The largest absolute value term ``t`` can take (its node's range, shifted)."""
    n = graph.nodes[t[0]]
    return float(max(abs(n.lo), abs(n.hi))) * 2.0 ** t[1]


def sum_small_first(graph: AdderGraph, parts: list[SignedTerm]) -> SignedTerm:
    """``sum(parts)`` (at least one) as a Huffman tree on the terms' magnitudes."""
    if len(parts) == 1:
        return parts[0]
    heap = [(magnitude(graph, t), i, t) for i, t in enumerate(parts)]
    heapq.heapify(heap)
    count = len(heap)
    while len(heap) > 1:
        _, _, t1 = heapq.heappop(heap)
        _, _, t2 = heapq.heappop(heap)
        t = add_terms(graph, t1, t2)
        heapq.heappush(heap, (magnitude(graph, t), count, t))
        count += 1
    return heap[0][2]


def sum_rows_small_first(graph: AdderGraph, rows: list[list[SignedTerm]]) -> list[Term]:
    """Each row's terms summed small first (an empty row is the zero term)."""
    out: list[Term] = []
    for row in rows:
        if not row:
            out.append(Term(None, 0))
            continue
        node, shift, neg = sum_small_first(graph, row)
        out.append(Term(node, shift, neg))
    return out


def expanded_terms(s: SliceProgram) -> tuple[npt.NDArray[np.bool_], list[list[Ref]]]:
    """Which codewords are built (``kept``) and, for each kept one, its terms over kept
    codewords and inputs: codewords used exactly once, as a term, by no output, are inlined
    into their user."""
    k = s.width
    n = k + len(s.src)
    uses = np.zeros(n, dtype=np.int64)
    live = s.src >= 0
    np.add.at(uses, s.src[live], 1)
    outs = np.zeros(n, dtype=np.int64)
    np.add.at(outs, s.out[s.out >= 0], 1)
    kept = (uses != 1) | (outs > 0)
    kept[:k] = True
    terms: list[list[Ref]] = [[] for _ in range(n)]
    for i in range(len(s.src)):
        c = k + i
        row: list[Ref] = []
        for src, e, ng in zip(s.src[i].tolist(), s.exp[i].tolist(), s.neg[i].tolist(), strict=True):
            if src < 0:
                continue
            if kept[src]:
                row.append((src, e, ng))
            else:  # inline: every term of the single-use codeword, scaled and signed
                row.extend((j, e + f, ng != g) for j, f, g in terms[src])
        terms[c] = row
    return kept, terms


def as_term(x: int | SignedTerm) -> SignedTerm:
    """An input given as a node id or as a signed shifted term."""
    return (x, 0, False) if isinstance(x, int) else x


def lower_straight(
    slices: list[SliceProgram],
    n_rows: int,
    graph: AdderGraph,
    inputs: Sequence[int | SignedTerm],
) -> list[Term]:
    """The slice programs computing ``W`` (rows = outputs), then each row's slice results;
    ``inputs`` are node ids or signed shifted terms (the value a column multiplies)."""
    rows: list[list[SignedTerm]] = [[] for _ in range(n_rows)]
    for s in slices:
        k = s.width
        kept, terms = expanded_terms(s)
        node: list[SignedTerm | None] = [None] * (k + len(s.src))
        for j in range(k):
            node[j] = as_term(inputs[int(s.cols[j])])
        for c in np.nonzero(kept[k:])[0] + k:
            parts: list[SignedTerm] = []
            for j, e, ng in terms[c]:
                base = node[j]
                assert base is not None
                parts.append((base[0], base[1] + e, base[2] != ng))
            node[c] = sum_small_first(graph, parts)
        for r in np.nonzero(s.out >= 0)[0]:
            t = node[int(s.out[r])]
            assert t is not None
            rows[int(r)].append((t[0], t[1] + s.scale, t[2]))
    return sum_rows_small_first(graph, rows)


def lower_transposed(
    slices: list[SliceProgram],
    n_rows: int,
    graph: AdderGraph,
    inputs: Sequence[int | SignedTerm],
) -> list[Term]:
    """The slices factor ``W.T``; the transposed program computes ``W`` (Tellegen's
    principle): every adder of the slice becomes a fan-out and every fan-out a sum, walked
    from the slice's outputs back to its inputs.  ``adj[j]`` collects the signed shifted
    contributions to codeword ``j``'s adjoint, summed (small first) once it is needed."""
    rows: list[list[SignedTerm]] = [[] for _ in range(n_rows)]
    for s in slices:
        k = s.width
        adj: list[list[SignedTerm]] = [[] for _ in range(k + len(s.src))]
        for r in np.nonzero(s.out >= 0)[0]:
            node, sh, neg = as_term(inputs[int(r)])
            adj[int(s.out[r])].append((node, sh + s.scale, neg))
        for i in range(len(s.src) - 1, -1, -1):
            if not adj[k + i]:
                continue
            node, sh, neg = sum_small_first(graph, adj[k + i])
            for src, e, ng in zip(s.src[i], s.exp[i], s.neg[i], strict=True):
                if src >= 0:
                    adj[int(src)].append((node, sh + int(e), neg != bool(ng)))
        for j in range(k):
            if adj[j]:
                rows[int(s.cols[j])].append(sum_small_first(graph, adj[j]))
    return sum_rows_small_first(graph, rows)
