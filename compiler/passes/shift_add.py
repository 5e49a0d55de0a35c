"""Sums of signed, shifted terms as adders, with shared subexpressions.

Every matrix code ends in rows of terms ``±v[node]·2**shift`` to be summed;
:func:`build_terms_sum` sums each row with a balanced adder tree after sharing frequent
two-term patterns ``±v[n1] ± v[n2]·2**d`` across rows (Hartley's common subexpression
elimination).  Sharing a pattern used ``k`` times costs one adder and saves ``k``, so it never
adds adders.  Two searches, chosen by ``effort`` (see :func:`share_pairs`):

- **full**: the exact greedy (:func:`_eliminate_common_pairs`) over every pair of terms of
  every row, one most-frequent pattern at a time; its work grows with the square of the row
  length, so it runs while ``sum(row terms**2) <= effort``;
- **partial** (above that): a batched greedy in numpy (:func:`_windowed_cse`) that pairs each
  term only with the next ``window`` terms of its row, ordered by (node, shift) -- the same
  and neighbouring columns -- and in each round shares, row by row, the most frequent patterns
  of a non-overlapping matching.  Its work is ``O(terms * window * log)`` per round and its
  memory is bounded by processing rows in chunks, so it runs on every layer size.

The returned :class:`CseStats` says which search ran and why, so a report never shows sharing
that silently switched off or was cut short.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.csd import csd_digits
from nnlcc.ir.matrix import Term

# A signed, shifted reference to a node: value = (-1 if neg else 1) * v[node] * 2**shift
SignedTerm = tuple[int, int, bool]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

CSE_EFFORT = 500_000
"""Default search budget: the exact greedy runs while ``sum(row terms**2)`` stays within it."""
MIN_WINDOW = 8
"""Fewest neighbours per term the partial search pairs with, whatever the effort."""
_CHUNK_PAIRS = 4_000_000  # candidate pairs held at once by the partial search (memory bound)
_MAX_ROUNDS = 200  # the search stops long before (typically 10-30 rounds)
# a round shares patterns counted at least alpha times the most frequent one's: closer to 1 is
# closer to the exact greedy (fewer adders) and takes more rounds, so alpha is _ALPHA_FINE
# while a round has at most _FINE_PAIRS candidate pairs (seconds), else _ALPHA
_ALPHA, _ALPHA_FINE, _FINE_PAIRS = 0.5, 0.8, 2_000_000
_MATCH_STEPS = 64  # steps of a round's matching (pairs left over wait for the next round)
_STOP = 1000  # a round saving under 1/_STOP of the terms left ends its count level


@dataclass(frozen=True)
class CseStats:
    """What common-subexpression sharing did to one set of rows.

    ``search``: ``"off"`` (not asked for), ``"full"`` (every pair of terms searched) or
    ``"partial"`` (pairs searched within a bounded neighbourhood, see ``reason``);
    ``pairs_shared``: shared two-term adders built; ``adders_saved``: adders fewer than
    summing the same rows without sharing.
    """

    search: str
    pairs_shared: int = 0
    adders_saved: int = 0
    reason: str = ""

    def facts(self) -> dict[str, int | str]:
        """Report facts: ``cse``, ``cse_pairs_shared``, ``cse_adders_saved``, ``cse_note``."""
        return {
            "cse": self.search,
            "cse_pairs_shared": self.pairs_shared,
            "cse_adders_saved": self.adders_saved,
            "cse_note": self.reason,
        }


@dataclass
class TermArrays:
    """Rows of signed shifted terms as flat arrays, grouped by row (rows ascending)."""

    n_rows: int
    row: I64
    node: I64
    shift: I64
    neg: Bools

    @classmethod
    def from_rows(cls, rows: list[list[SignedTerm]]) -> TermArrays:
        flat = [t for r in rows for t in r]
        lens = np.fromiter((len(r) for r in rows), np.int64, count=len(rows))
        return cls(
            n_rows=len(rows),
            row=np.repeat(np.arange(len(rows), dtype=np.int64), lens),
            node=np.fromiter((t[0] for t in flat), np.int64, count=len(flat)),
            shift=np.fromiter((t[1] for t in flat), np.int64, count=len(flat)),
            neg=np.fromiter((t[2] for t in flat), np.bool_, count=len(flat)),
        )

    def to_rows(self) -> list[list[SignedTerm]]:
        rows: list[list[SignedTerm]] = [[] for _ in range(self.n_rows)]
        for r, n, s, g in zip(
            self.row.tolist(),
            self.node.tolist(),
            self.shift.tolist(),
            self.neg.tolist(),
            strict=True,
        ):
            rows[r].append((n, s, g))
        return rows

    def search_work(self) -> int:
        """Steps of the exact pair search: the sum over rows of terms squared."""
        lens = np.bincount(self.row, minlength=self.n_rows)
        return int(np.sum(lens.astype(np.int64) ** 2))


def _add_terms(graph: AdderGraph, t1: SignedTerm, t2: SignedTerm) -> SignedTerm:
    """One adder computing ``t1 + t2``, returned as a signed shifted term."""
    (a, sa, na), (b, sb, nb) = t1, t2
    m = min(sa, sb)
    if na and nb:  # -(a + b): add positively, keep the sign on the term
        return graph.add(a, b, sa - m, sb - m), m, True
    if na:
        return graph.add(b, a, sb - m, sa - m, nb=True), m, False
    return graph.add(a, b, sa - m, sb - m, nb=nb), m, False


def _add_pattern(graph: AdderGraph, n1: int, n2: int, d: int, opposite: bool) -> int:
    """The shared node ``v[n1] ± v[n2]·2**d``, anchored at the member with the smaller shift
    (for ``d < 0`` it is ``v[n2] ± v[n1]·2**-d``)."""
    if d >= 0:
        return graph.add(n1, n2, 0, d, nb=opposite)
    return graph.add(n2, n1, 0, -d, nb=opposite)


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


def _merge_repeats(row: list[SignedTerm]) -> list[SignedTerm]:
    """The row with repeated ``(node, shift)`` terms merged exactly (per node, the signed sum
    rewritten in CSD); a row without repeats is returned unchanged, order included."""
    if len({(n, s) for n, s, _ in row}) == len(row):
        return row
    total: dict[int, int] = {}
    for n, s, g in row:
        total[n] = total.get(n, 0) + (-1 if g else 1) * (1 << s)
    return [(n, pos, d < 0) for n, v in total.items() for pos, d in csd_digits(v)]


def share_pairs(
    graph: AdderGraph, terms: TermArrays, effort: int = CSE_EFFORT
) -> tuple[list[list[SignedTerm]], CseStats]:
    """Share common two-term patterns across rows; returns the rows to sum and what was done.

    The exact greedy runs while the search work (``sum(row terms**2)``) is at most ``effort``;
    above it the partial search pairs each term with its next
    ``max(MIN_WINDOW, effort // terms)`` neighbours in its row.
    """
    work = terms.search_work()
    before = len(graph.nodes)
    if work <= effort:
        rows = [_merge_repeats(r) for r in terms.to_rows()]
        start = sum(max(len(r) - 1, 0) for r in rows)
        rows = _eliminate_common_pairs(graph, rows)
        shared = len(graph.nodes) - before
        saved = start - sum(max(len(r) - 1, 0) for r in rows) - shared
        return rows, CseStats("full", shared, saved, "")
    n_terms = len(terms.row)
    window = max(MIN_WINDOW, effort // max(n_terms, 1))
    rows, saved, converged = _windowed_cse(graph, terms, window)
    reason = (
        f"pairs searched within the next {window} terms of each row ({n_terms} terms; the full"
        f" search needs {work} steps > cse_effort={effort})"
    )
    if not converged:
        reason += f"; stopped after {_MAX_ROUNDS} rounds"
    return rows, CseStats("partial", len(graph.nodes) - before, saved, reason)


def sum_rows(graph: AdderGraph, rows: list[list[SignedTerm]]) -> list[Term]:
    """Sum each row with a balanced adder tree (depth ``ceil(log2(terms))``)."""
    terms: list[Term] = []
    for row in rows:
        if not row:
            terms.append(Term(None, 0))
            continue
        level = sorted(row, key=lambda t: t[1])
        while len(level) > 1:
            nxt = [_add_terms(graph, level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        node, shift, neg = level[0]
        terms.append(Term(node, shift, neg))
    return terms


def build_terms_sum(
    graph: AdderGraph, rows: list[list[SignedTerm]], cse: bool = True, cse_effort: int = CSE_EFFORT
) -> list[Term]:
    """Sum each row's signed shifted terms with adders, sharing common pairs across rows
    (``cse``, searched as :func:`share_pairs` does with ``cse_effort``)."""
    if cse:
        rows, _ = share_pairs(graph, TermArrays.from_rows(rows), cse_effort)
    return sum_rows(graph, rows)


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
        new = _add_pattern(graph, n1, n2, d, opposite)
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


# ---- the partial (scalable) search -----------------------------------------------------------
def _windowed_cse(
    graph: AdderGraph, terms: TermArrays, window: int
) -> tuple[list[list[SignedTerm]], int, bool]:
    """Batched greedy CSE over neighbouring terms: the rows, adders saved and ``converged``.

    Each round sorts every row's terms by (node, shift), takes as candidates the pairs of a
    term with its next ``window`` terms, counts their patterns over all rows, and lets each
    row pick a non-overlapping set of its pairs, most frequent pattern first (a locally
    dominant matching, ties broken by pattern so that rows agree).  Only patterns counted at
    least ``floor`` times take part (``alpha`` times the most frequent count, at least 2),
    and only those picked at least ``floor`` times become shared adders, so a round shares
    few, frequent patterns like the exact greedy does; the rest wait for the next round.  A
    round saving under ``1/_STOP`` of the terms left lowers the floor by one; the search ends
    when that happens at floor 2.  ``converged`` is False if ``_MAX_ROUNDS`` cut it short.
    """
    row, node, shift, neg = terms.row, terms.node, terms.shift, terms.neg
    order = np.lexsort((shift, node, row))
    r, n, s = row[order], node[order], shift[order]
    if np.any((r[1:] == r[:-1]) & (n[1:] == n[:-1]) & (s[1:] == s[:-1])):
        t = TermArrays.from_rows([_merge_repeats(x) for x in terms.to_rows()])
        row, node, shift, neg = t.row, t.node, t.shift, t.neg
    alpha = _ALPHA_FINE if len(row) * window <= _FINE_PAIRS else _ALPHA
    saved_total, cap, converged = 0, 1 << 62, False
    for _ in range(_MAX_ROUNDS):
        order = np.lexsort((shift, node, row))
        row, node, shift, neg = row[order], node[order], shift[order], neg[order]
        sel_i, sel_j, pat, n_pat, floor = _round_matching(row, node, shift, neg, window, cap, alpha)
        usage = np.bincount(pat, minlength=n_pat)
        ok = usage[pat] >= floor
        sel_i, sel_j, pat = sel_i[ok], sel_j[ok], pat[ok]
        if not len(pat):
            if floor <= 2:
                converged = True
                break
            cap = floor - 1
            continue
        used = np.flatnonzero(usage >= floor)
        at = np.zeros(n_pat, dtype=np.int64)
        at[pat] = np.arange(len(pat))  # one pair of each pattern (any one: all are alike)
        new_ids = np.zeros(n_pat, dtype=np.int64)
        for p in used[np.argsort(-usage[used], kind="stable")].tolist():
            a, b = int(sel_i[at[p]]), int(sel_j[at[p]])
            d, opp = int(shift[b] - shift[a]), bool(neg[a] != neg[b])
            new_ids[p] = _add_pattern(graph, int(node[a]), int(node[b]), d, opp)
        d_sel = shift[sel_j] - shift[sel_i]
        first = d_sel >= 0
        node[sel_i] = new_ids[pat]
        shift[sel_i] = np.where(first, shift[sel_i], shift[sel_j])
        neg[sel_i] = np.where(first, neg[sel_i], neg[sel_j])
        keep = np.ones(len(row), dtype=bool)
        keep[sel_j] = False
        row, node, shift, neg = row[keep], node[keep], shift[keep], neg[keep]
        saved = len(pat) - len(used)
        saved_total += saved
        if saved * _STOP < len(row):  # little left at this level: go down one
            if floor <= 2:
                converged = True
                break
            cap = floor - 1
    out = TermArrays(terms.n_rows, row, node, shift, neg)
    return out.to_rows(), saved_total, converged


def _pairs(row: I64, lo: int, hi: int, window: int) -> tuple[I64, I64]:
    """Candidate pairs ``(i, j)``: ``lo <= i < j < hi``, ``j - i <= window``, same row."""
    ii, jj = [], []
    for k in range(1, window + 1):
        i = np.arange(lo, hi - k, dtype=np.int64)
        if not len(i):
            break
        i = i[row[i] == row[i + k]]
        ii.append(i)
        jj.append(i + k)
    if not ii:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(ii), np.concatenate(jj)


def _chunks(row: I64, window: int) -> list[tuple[int, int]]:
    """Row-aligned slices of the sorted terms, each with about ``_CHUNK_PAIRS`` candidates."""
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]]) if len(row) else np.zeros(0, int)
    bounds = np.r_[starts, len(row)]
    out: list[tuple[int, int]] = []
    lo = 0
    per = max(_CHUNK_PAIRS // max(window, 1), 1)
    for b in bounds[1:].tolist():
        if b - lo >= per:
            out.append((lo, b))
            lo = b
    if lo < len(row):
        out.append((lo, len(row)))
    return out


def _round_matching(
    row: I64, node: I64, shift: I64, neg: Bools, window: int, cap: int, alpha: float
) -> tuple[I64, I64, I64, int, int]:
    """One round's matching among patterns counted at least ``floor`` times, ``floor`` =
    ``max(2, min(cap, ceil(alpha * most)))``: the selected pairs ``(i, j)``, their pattern
    ids (``< n_patterns``), ``n_patterns`` and ``floor``."""
    span = 2 * int(np.max(np.abs(shift))) + 1 if len(shift) else 1
    local = node
    n_nodes = int(node.max()) + 1 if len(node) else 1
    if n_nodes * n_nodes * span * 2 >= 2**62:  # compact the node ids (order kept)
        _, local = np.unique(node, return_inverse=True)
        n_nodes = int(local.max()) + 1
    chunks = _chunks(row, window)
    # pass 1: pattern counts over all rows; each chunk keeps its pairs' pattern index (int32)
    parts: list[tuple[I64, npt.NDArray[np.int64] | npt.NDArray[np.int32], I64]] = []
    for lo, hi in chunks:
        i, j = _pairs(row, lo, hi, window)
        key = (local[i] * n_nodes + local[j]) * span + (shift[j] - shift[i] + span // 2)
        key = key * 2 + (neg[i] != neg[j])  # the pattern (n1, n2, d, opposite) as one int
        k, inv, c = np.unique(key, return_inverse=True, return_counts=True)
        parts.append((k, inv.astype(np.int32), c))
    if len(parts) == 1:
        keys, counts = parts[0][0], parts[0][2]
        to_global = [np.arange(len(keys), dtype=np.int64)]
    else:
        keys = np.unique(np.concatenate([k for k, _, _ in parts]))
        to_global = [np.searchsorted(keys, k) for k, _, _ in parts]
        counts = np.zeros(len(keys), dtype=np.int64)
        for g, (_, _, c) in zip(to_global, parts, strict=True):
            counts[g] += c
    # rank: most frequent pattern highest; equal counts ordered by key so rows agree
    rank = np.empty(len(keys), dtype=np.int64)
    rank[np.lexsort((-keys, counts))] = np.arange(len(keys), dtype=np.int64)
    floor = max(2, min(cap, int(np.ceil(alpha * counts.max())))) if len(counts) else 2
    # pass 2: per chunk, a locally dominant matching by pattern rank
    out_i, out_j, out_k = [], [], []
    for (lo, hi), (_, local_p, _), g in zip(chunks, parts, to_global, strict=True):
        i, j = _pairs(row, lo, hi, window)
        p = g[local_p]
        good = counts[p] >= floor
        i, j, p = i[good], j[good], p[good]
        prio = rank[p] * (len(i) + 1) + np.arange(len(i), dtype=np.int64)
        taken = np.zeros(hi - lo, dtype=bool)
        for _ in range(_MATCH_STEPS):  # each step takes at least the best pair left
            if not len(i):
                break
            best = np.full(hi - lo, -1, dtype=np.int64)
            np.maximum.at(best, i - lo, prio)
            np.maximum.at(best, j - lo, prio)
            win = (best[i - lo] == prio) & (best[j - lo] == prio)
            out_i.append(i[win])
            out_j.append(j[win])
            out_k.append(p[win])
            taken[i[win] - lo] = True
            taken[j[win] - lo] = True
            free = ~(taken[i - lo] | taken[j - lo])
            i, j, p, prio = i[free], j[free], p[free], prio[free]
    if not out_i:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, len(keys), floor
    sel = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_k)
    return *sel, len(keys), floor
