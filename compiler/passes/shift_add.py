"""Sums of signed, shifted terms as adders, with shared subexpressions.

Every matrix code ends in rows of terms ``±v[node]·2**shift`` to be summed;
:func:`build_terms_sum` sums each row with a balanced adder tree after sharing the most frequent
two-term patterns across rows (Hartley's common subexpression elimination) when that is cheap
enough to search.
"""

from __future__ import annotations

import heapq
from collections import Counter

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.matrix import Term

# A signed, shifted reference to a node: value = (-1 if neg else 1) * v[node] * 2**shift
SignedTerm = tuple[int, int, bool]


def _add_terms(graph: AdderGraph, t1: SignedTerm, t2: SignedTerm) -> SignedTerm:
    """One adder computing ``t1 + t2``, returned as a signed shifted term."""
    (a, sa, na), (b, sb, nb) = t1, t2
    m = min(sa, sb)
    if na and nb:  # -(a + b): add positively, keep the sign on the term
        return graph.add(a, b, sa - m, sb - m), m, True
    if na:
        return graph.add(b, a, sb - m, sa - m, nb=True), m, False
    return graph.add(a, b, sa - m, sb - m, nb=nb), m, False


PairKey = tuple[int, int, int, bool]


def _pattern(t1: SignedTerm, t2: SignedTerm) -> PairKey | None:
    """Key of a pair of terms, independent of their common shift and sign.

    ``(n1, n2, d, opposite)`` with ``(n1, s1) <= (n2, s2)``, ``d = s2 - s1``: the pair equals
    ``±2**s * (v[n1] ± v[n2] * 2**d)``.  ``None`` for a term paired with itself.
    """
    if (t1[0], t1[1]) > (t2[0], t2[1]):
        t1, t2 = t2, t1
    if t1[0] == t2[0] and t1[1] == t2[1]:
        return None
    return (t1[0], t2[0], t2[1] - t1[1], t1[2] != t2[2])


def build_terms_sum(
    graph: AdderGraph, rows: list[list[SignedTerm]], cse: bool = True, cse_budget: int = 500_000
) -> list[Term]:
    """Sum each row's signed shifted terms with adders, sharing common pairs across rows.

    ``cse_budget`` bounds the pair-search work (sum over rows of terms squared); above it the
    rows are summed without sharing.
    """
    rows = [list(r) for r in rows]
    if cse and sum(len(r) ** 2 for r in rows) <= cse_budget:
        rows = _eliminate_common_pairs(graph, rows)
    terms: list[Term] = []
    for row in rows:
        if not row:
            terms.append(Term(None, 0))
            continue
        level = sorted(row, key=lambda t: t[1])
        while len(level) > 1:  # balanced tree: depth ceil(log2(terms))
            nxt = [_add_terms(graph, level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        node, shift, neg = level[0]
        terms.append(Term(node, shift, neg))
    return terms


def _eliminate_common_pairs(
    graph: AdderGraph, rows: list[list[SignedTerm]]
) -> list[list[SignedTerm]]:
    """Greedy CSE: repeatedly compute the most frequent pair once and substitute it.

    Rows are kept as ``{node: {shift: neg}}`` so a pattern's occurrences are found by lookup,
    and pair counts are updated incrementally (a lazy max-heap finds the most frequent pair).
    """
    table: list[dict[int, dict[int, bool]]] = []
    for row in rows:
        t: dict[int, dict[int, bool]] = {}
        for node, shift, neg in row:
            t.setdefault(node, {})[shift] = neg
        table.append(t)
    total: Counter[PairKey] = Counter()
    heap: list[tuple[int, PairKey]] = []

    def bump(key: PairKey | None, by: int) -> None:
        if key is not None:
            total[key] += by
            heapq.heappush(heap, (-total[key], key))

    def row_terms(t: dict[int, dict[int, bool]]) -> list[SignedTerm]:
        return [(n, s, g) for n, sh in t.items() for s, g in sh.items()]

    for t in table:
        terms = row_terms(t)
        for i in range(len(terms)):
            for j in range(i + 1, len(terms)):
                key = _pattern(terms[i], terms[j])
                if key is not None:
                    total[key] += 1
    heap = [(-c, k) for k, c in total.items() if c >= 2]
    heapq.heapify(heap)

    while heap:
        negc, key = heapq.heappop(heap)
        if -negc != total[key] or -negc < 2:
            continue
        n1, n2, d, opposite = key
        # The shared node is anchored at the pair member with the smaller shift.
        if d >= 0:
            new = graph.add(n1, n2, 0, d, nb=opposite)
        else:
            new = graph.add(n2, n1, 0, -d, nb=opposite)
        for t in table:
            if n1 not in t or n2 not in t:
                continue
            for s1 in sorted(t[n1]):
                g1 = t.get(n1, {}).get(s1)
                s2 = s1 + d
                g2 = t.get(n2, {}).get(s2)
                if g1 is None or g2 is None or (n1 == n2 and s1 == s2) or (g1 != g2) != opposite:
                    continue
                anchor = (n1, s1, g1) if d >= 0 else (n2, s2, g2)
                for node, shift in ((n1, s1), (n2, s2)):
                    gone = (node, shift, t[node].pop(shift))
                    if not t[node]:
                        del t[node]
                    for other in row_terms(t):
                        bump(_pattern(gone, other), -1)
                placed = (new, anchor[1], anchor[2])
                for other in row_terms(t):
                    bump(_pattern(placed, other), 1)
                t.setdefault(new, {})[anchor[1]] = anchor[2]
    return [row_terms(t) for t in table]
