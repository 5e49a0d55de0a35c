"""Weight sharing: similar columns of a layer are replaced by one centroid column.

``W`` (rows x cols) becomes ``W_reduced @ G``: ``G`` (clusters x cols) has one entry per used
column, ``±2**k``, so ``z = G @ x`` is computed by *pre-adders* (a cluster of ``m`` inputs costs
``m - 1`` additions, shifts and signs are wiring) and the matrix pass (CSD or LCC) codes only
``W_reduced``.  Columns that are equal up to sign, or up to sign and a power-of-two factor
(``mode``), fall into one cluster; they are found by scikit-learn's k-means (weighted so the
error it minimizes is the error in ``W``) or affinity propagation.

The share pass only plans: it notes a :class:`SharePlan` on the layer.  The matrix pass
that follows asks :func:`code_layer` for the code, which codes ``W_reduced`` and wraps it in a
:class:`ShareCode`: ``lower()`` emits the pre-adders, then the inner code on their outputs, and
``implemented()`` is the exact expanded matrix, so the golden model stays bit-exact.

Its IR text (:class:`ShareCoder` reads it back): a plan is a block ``plan rows= cols=
clusters= error_sqnr_db=`` with the ``reduced`` rows below and one ``kJ = 1.0*x3 -0.5*x7`` line
per cluster (``expand`` and ``members``); the share code is ``code share [plan=KEY]`` holding
its plan and the inner ``code`` on the reduced matrix, where ``plan=share_plan`` says the same
plan object is the layer's note (``share_plan`` is the note's key).  A plan no code holds yet
(the share pass ran, no matrix pass after it) is a block of the layer with ``key=share_plan``
at the end of its line.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.code_text import BlockParser, CodeReader, CodeWriter
from nnlcc.ir.facts import Compression
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.matrix import (
    DenseLayer,
    FloatArray,
    MatrixCode,
    MatrixGraph,
    MatrixLayer,
    Term,
)
from nnlcc.ir.notes import BlockNote
from nnlcc.ir.text_syntax import Line, child, fields, matrix_lines, parse_matrix, quote
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.coder import Coder
from nnlcc.passes.prune import used_columns
from nnlcc.passes.shift_add import SignedTerm, build_terms_sum

Mode = Literal["plain", "sign", "pow2"]


@dataclass
class SharePlan(BlockNote):
    """``W ≈ reduced @ expand``; ``members[k]`` are the columns of cluster ``k``: the layer
    note (key ``share_plan``) the share pass leaves for the matrix pass.

    ``expand`` holds one ``±2**-s`` (``s >= 0``) per used column: each cluster is scaled to its
    largest member, so the reduced matrix keeps the precision of the big columns when the
    matrix pass quantizes it.
    """

    key: ClassVar[str] = "share_plan"
    of_weights: ClassVar[bool] = True
    reduced: FloatArray
    expand: FloatArray
    members: list[list[int]]
    error_sqnr_db: float

    @property
    def clusters(self) -> int:
        return len(self.members)

    @property
    def pre_adders(self) -> int:
        return sum(len(m) - 1 for m in self.members)

    @property
    def frac(self) -> int:
        """Fractional bits of the pre-adder outputs: ``2**frac * expand`` is an integer."""
        nz = np.abs(self.expand[self.expand != 0])
        return int(-np.log2(nz).min()) if nz.size else 0

    def lower_pre_adders(self, graph: AdderGraph, inputs: list[int]) -> list[int]:
        """One node per cluster computing ``(2**frac * expand @ x)[k]`` exactly.

        Within a cluster every member is ``±x[j] << k`` with at least as many ``+`` as ``-``
        (the plan guarantees it), so each negative member is first subtracted from a positive
        one and the rest is a tree of plain additions: the result is the cluster sum itself,
        never its negation; a common shift left over is wiring.
        """
        nodes: list[int] = []
        frac = self.frac
        for k, cols in enumerate(self.members):
            pos: list[SignedTerm] = []
            neg: list[SignedTerm] = []
            for j in cols:
                g = float(self.expand[k, j])
                exp = round(math.log2(abs(g))) + frac
                (neg if g < 0 else pos).append((inputs[j], exp, False))
            level: list[SignedTerm] = []
            for (pn, ps, _), (nn, ns, _) in zip(pos, neg, strict=False):
                m = min(ps, ns)
                level.append((graph.add(pn, nn, ps - m, ns - m, nb=True), m, False))
            level += pos[len(neg) :]
            (term,) = build_terms_sum(graph, [level], cse=False)
            assert term.node is not None and term.exp >= 0 and not term.neg, term
            nodes.append(graph.shr(term.node, -term.exp) if term.exp else term.node)
        return nodes

    def block_lines(self, ind: str, key: str | None) -> list[str]:
        """The ``plan`` block (``key``: its note key, for a plan no code holds)."""
        rows, clusters = self.reduced.shape
        head = (
            f"{ind}plan rows={rows} cols={self.expand.shape[1]} clusters={clusters}"
            f" error_sqnr_db={self.error_sqnr_db!r}" + (f" key={quote(key)}" if key else "")
        )
        lines = [head, f"{ind}  reduced", *matrix_lines(self.reduced, ind + "    ")]
        for k, cols in enumerate(self.members):
            if np.count_nonzero(self.expand[k]) != len(cols):
                raise ValueError(f"share plan cluster {k}: expand has entries outside its members")
            terms = " ".join(f"{float(self.expand[k, j])!r}*x{j}" for j in cols)
            lines.append(f"{ind}  k{k} = {terms}".rstrip())
        return lines


@dataclass
class ShareCode:
    """A matrix code on the reduced matrix behind the pre-adders of a :class:`SharePlan`."""

    plan: SharePlan
    inner: MatrixCode
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"share+{self.inner.name}"

    def implemented(self) -> FloatArray:
        # one nonzero ±2**k per column of expand: every product is exact in float64
        return self.inner.implemented() @ self.plan.expand

    def lower(self, graph: AdderGraph, inputs: list[int]) -> list[Term]:
        terms = self.inner.lower(graph, self.plan.lower_pre_adders(graph, inputs))
        frac = self.plan.frac  # the pre-adder outputs are integers worth 2**-frac
        return [Term(t.node, t.exp - frac, t.neg) for t in terms]

    def text_lines(self, ind: str, out: CodeWriter) -> list[str]:
        key = out.note_key(self.plan)  # the layer notes the same plan: named, not repeated
        head = f"{ind}code share" + (f" plan={quote(key)}" if key else "")
        return [head, *self.plan.block_lines(ind + "  ", None), *out.code(self.inner, ind + "  ")]

    def summary(self) -> dict[str, Any]:
        return {
            **self.inner.summary(),
            "clusters": self.plan.clusters,
            "share_sqnr_db": round(self.plan.error_sqnr_db, 2)
            if math.isfinite(self.plan.error_sqnr_db)
            else self.plan.error_sqnr_db,
        }


def compression_facts(layer: Any) -> Compression | None:
    """The per-layer compression facts of the report: used columns, distinct columns after
    sharing (equal to the used ones without it) and pre-adders (the part of the layer's
    adders that sums shared inputs).  None for layers without a matrix."""
    if not isinstance(layer, MatrixLayer):
        return None
    kept = len(used_columns(layer.weight))
    plan = layer.notes.get(SharePlan)
    if plan is None:
        return Compression(kept, kept, 0)
    return Compression(kept, plan.clusters, plan.pre_adders)


def _parse_plan(line: Line, key_field: bool) -> tuple[SharePlan, str | None]:
    keys = ("rows", "cols", "clusters", "error_sqnr_db")
    pos, kv = fields(line, (*keys, "key") if key_field else keys)
    key = kv.get("key")
    if pos:
        line.fail(f"unexpected {pos[0]!r}")
    with line.at():
        rows, cols, n = int(kv["rows"]), int(kv["cols"]), int(kv["clusters"])
        sqnr = float(kv["error_sqnr_db"])
    reduced = parse_matrix(child(line, 0, "reduced"), (rows, n), float, np.float64)
    if len(line.children) != n + 1:
        line.fail(f"expected {n} cluster lines, got {len(line.children) - 1}")
    expand = np.zeros((n, cols))
    members: list[list[int]] = []
    for k, cl in enumerate(line.children[1:]):
        m = re.fullmatch(rf"k{k} =(.*)", cl.leaf().text)
        if not m:
            cl.fail(f"expected cluster line 'k{k} = ...'")
        cluster: list[int] = []
        for tok in m[1].split():
            tm = re.fullmatch(r"(\S+)\*x(\d+)", tok)
            if not tm or int(tm[2]) >= cols:
                cl.fail(f"bad cluster term {tok!r}")
            with cl.at():
                expand[k, int(tm[2])] = float(tm[1])
            cluster.append(int(tm[2]))
        members.append(cluster)
    return SharePlan(reduced=reduced, expand=expand, members=members, error_sqnr_db=sqnr), key


def _plan_block(line: Line) -> SharePlan:
    """A layer's ``plan ... key=share_plan`` block: the layer's note."""
    plan, key = _parse_plan(line, True)
    _check_key(line, key)
    return plan


def _check_key(line: Line, key: str | None) -> None:
    if key != SharePlan.key:
        line.fail(f"a share plan's note key is {SharePlan.key}, not {key!r}")


class ShareCoder(Coder):
    """Sharing's room in the registry: the IR text of its code and of its plan (a plan is not a
    coder of its own: ``auto`` codes the reduced matrix with the other coders)."""

    kind: ClassVar[str] = "share"
    blocks: ClassVar[Mapping[str, BlockParser]] = {"plan": _plan_block}

    def parse(self, line: Line, shape: tuple[int, int], reader: CodeReader) -> ShareCode:
        has_key = "plan=" in line.text
        _, kv = fields(line, ("plan",) if has_key else ())
        if len(line.children) != 2:
            line.fail("a share code holds a 'plan' and a 'code' block")
        plan, _ = _parse_plan(child(line, 0, "plan"), False)
        if plan.expand.shape[1] != shape[1] or plan.reduced.shape[0] != shape[0]:
            line.fail(f"share plan does not fit a {shape[0]}x{shape[1]} matrix")
        code = ShareCode(plan, reader.code(child(line, 1, "code"), plan.reduced.shape))
        if "plan" in kv:
            _check_key(line, kv["plan"])
            reader.keep(plan)
        return code


# --------------------------------------------------------------------------- clustering


def normalize_columns(
    w: FloatArray, mode: str
) -> tuple[FloatArray, npt.NDArray[np.int64], FloatArray]:
    """Columns ``w[:, j] = sign[j] * 2**exp[j] * u[:, j]``; returns ``(u, exp, sign)``.

    ``plain``: ``u = w``.  ``sign``: the largest-magnitude entry of ``u`` is positive.
    ``pow2``: also ``max |u| in [1, 2)``, so columns equal up to sign and a power of two have
    the same ``u``.  Every column must be nonzero.
    """
    n = w.shape[1]
    exp = np.zeros(n, dtype=np.int64)
    sign = np.ones(n)
    if mode == "plain":
        return w.copy(), exp, sign
    peak = w[np.argmax(np.abs(w), axis=0), np.arange(n)]
    sign = np.where(peak < 0, -1.0, 1.0)
    if mode == "pow2":
        exp = np.floor(np.log2(np.abs(peak))).astype(np.int64)
    return w / (sign * np.ldexp(1.0, exp)), exp, sign


def _kmeans(u: FloatArray, weight: FloatArray, k: int, seed: int) -> npt.NDArray[np.int64]:
    from sklearn.cluster import KMeans

    with warnings.catch_warnings():  # fewer distinct columns than k: fine, clusters coincide
        warnings.simplefilter("ignore")
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(u.T, sample_weight=weight)
    return np.asarray(km.labels_, dtype=np.int64)


def _affinity(u: FloatArray, seed: int) -> npt.NDArray[np.int64]:
    from sklearn.cluster import AffinityPropagation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ap = AffinityPropagation(random_state=seed).fit(u.T)
    labels = np.asarray(ap.labels_, dtype=np.int64)
    if np.any(labels < 0):  # did not converge: every column its own cluster
        labels = np.arange(u.shape[1], dtype=np.int64)
    return labels


def column_weights(exp: npt.NDArray[np.int64], power: FloatArray) -> FloatArray:
    """k-means sample weights making its objective the (input-power weighted) error in ``W``:
    a normalized column stands for ``2**exp`` times itself, fed by an input of mean square
    ``power``.  A tiny floor keeps clusters of never-active inputs well defined."""
    w = np.ldexp(1.0, 2 * exp) * power
    return np.maximum(w, 1e-12 * max(float(np.max(w, initial=0.0)), 1e-300))


def build_plan(
    w: FloatArray, labels: npt.NDArray[np.int64], mode: str, power: FloatArray
) -> SharePlan:
    """Centroids (weighted means in the normalized space) and pre-adder signs for ``labels``
    (one per used column of ``w``; unused, all-zero columns belong to no cluster).
    ``power`` is the mean square of each column's input (ones when unknown)."""
    rows, cols = w.shape
    used = used_columns(w)
    u, exp, sign = normalize_columns(w[:, used], mode)
    weight = column_weights(exp, power[used])
    members: list[list[int]] = []
    reduced: list[FloatArray] = []
    expand_rows: list[FloatArray] = []
    for lab in np.unique(labels):
        idx = np.nonzero(labels == lab)[0]
        centroid = np.average(u[:, idx], axis=1, weights=weight[idx])
        emax = int(exp[idx].max())
        # more '-' than '+' members: flip the cluster, so the pre-adder sum needs no negation
        flip = -1.0 if np.sum(sign[idx] < 0) > np.sum(sign[idx] > 0) else 1.0
        g = np.zeros(cols)
        g[used[idx]] = flip * sign[idx] * np.ldexp(1.0, exp[idx] - emax)
        members.append(sorted(int(c) for c in used[idx]))
        reduced.append(flip * math.ldexp(1.0, emax) * centroid)
        expand_rows.append(g)
    red = np.stack(reduced, axis=1) if reduced else np.zeros((rows, 0))
    expand = np.stack(expand_rows) if expand_rows else np.zeros((0, cols))
    rms = np.sqrt(power)
    return SharePlan(
        reduced=red,
        expand=expand,
        members=members,
        error_sqnr_db=sqnr_db(w * rms, (red @ expand) * rms),
    )


def plan_layer(
    w: FloatArray,
    clusters: int,
    tolerance: float,
    mode: str,
    algo: str,
    seed: int,
    where: str,
    power: FloatArray | None = None,
) -> SharePlan:
    """Cluster the used columns of ``w``: ``clusters`` of them, or (``clusters == 0``) the
    fewest whose relative error ``|(W - W_shared) D|_F / |W D|_F`` stays within
    ``tolerance``, or (``algo=affinity``) as many as affinity propagation finds.  ``D`` is the
    RMS of each column's input (``power`` = mean squares; ``None``: all ones), so columns fed
    by quiet inputs may be approximated more coarsely."""
    pw = np.ones(w.shape[1]) if power is None else np.asarray(power, dtype=np.float64)
    used = used_columns(w)
    n = len(used)
    if n == 0:
        return build_plan(w, np.zeros(0, dtype=np.int64), mode, pw)
    u, exp, _ = normalize_columns(w[:, used], mode)
    weight = column_weights(exp, pw[used])
    if algo == "affinity":
        return build_plan(w, _affinity(u, seed), mode, pw)
    if clusters:
        if clusters > n:
            raise BadInputError(
                f"share: {clusters} clusters asked for {where}, which has only {n} used columns"
            )
        return build_plan(w, _kmeans(u, weight, clusters, seed), mode, pw)
    limit = -20.0 * math.log10(tolerance)  # relative error as an SQNR in dB
    lo, hi = 1, n  # the fewest clusters meeting the limit, by bisection (n always meets it)
    best = build_plan(w, np.arange(n, dtype=np.int64), mode, pw)
    while lo < hi:
        mid = (lo + hi) // 2
        plan = build_plan(w, _kmeans(u, weight, mid, seed), mode, pw)
        if plan.error_sqnr_db >= limit:
            best, hi = plan, mid
        else:
            lo = mid + 1
    return best


def input_power(graph: MatrixGraph, x: FloatArray) -> dict[str, FloatArray]:
    """Mean square of every input of each dense layer on the calibration data ``x`` (conv
    layers are left out: their columns are window taps, weighted alike)."""
    acts = graph.activations_float(x)
    by_tensor = {graph.input_name: acts[0]}
    by_tensor.update({layer.name: a for layer, a in zip(graph.layers, acts[1:], strict=True)})
    out: dict[str, FloatArray] = {}
    for i, layer in enumerate(graph.layers):
        if isinstance(layer, DenseLayer):
            a = by_tensor[graph.inputs_of(i)[0]]
            out[layer.name] = np.mean(a.reshape(len(a), -1) ** 2, axis=0)
    return out


@dataclass(frozen=True)
class Share(Pass):
    """Weight sharing on the columns of the selected ``layers`` (``all``, or names joined by
    ``+``; with ``all`` and a cluster count, the layers wider than the count): k-means into ``clusters`` clusters, or the fewest clusters keeping the relative
    Frobenius error within ``tolerance``, or ``algo=affinity`` (affinity propagation picks the
    count).  ``mode``: columns equal up to ``sign`` or up to sign and a power of two
    (``pow2``) share; ``plain`` compares them as they are.  ``aware``: weight each column's
    error by its input's power on the calibration data (else all inputs count alike), both in
    k-means and in ``tolerance``.  Must follow prune and precede the
    matrix pass (csd, lcc), which then codes the reduced matrix."""

    name: ClassVar[str] = "share"
    kind: ClassVar[PassKind] = PassKind.PLAN
    clusters: int = 0
    tolerance: float = 0.0
    mode: Mode = "pow2"
    algo: Literal["kmeans", "affinity"] = "kmeans"
    layers: str = "all"
    aware: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.clusters < 0:
            raise PassOptionError("share: clusters must be positive")
        if not 0.0 <= self.tolerance < 1.0:
            raise PassOptionError("share: tolerance must be in [0, 1)")
        if self.algo == "kmeans" and (self.clusters > 0) == (self.tolerance > 0):
            raise PassOptionError("share: give exactly one of clusters=N or tolerance=T")
        if self.algo == "affinity" and (self.clusters or self.tolerance):
            raise PassOptionError("share: algo=affinity chooses the cluster count itself")
        if self.mode not in ("plain", "sign", "pow2"):
            raise PassOptionError("share: mode must be plain, sign or pow2")
        if self.algo not in ("kmeans", "affinity"):
            raise PassOptionError("share: algo must be kmeans or affinity")

    def selected(self, graph: MatrixGraph) -> list[MatrixLayer]:
        if self.layers == "all":
            return graph.matrix_layers()
        names = [s for s in self.layers.split("+") if s]
        by_name = {layer.name: layer for layer in graph.matrix_layers()}
        unknown = [s for s in names if s not in by_name]
        if unknown:
            raise PassOptionError(
                f"share: unknown layer {unknown[0]!r}; layers: {', '.join(by_name)}"
            )
        return [by_name[s] for s in names]

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        if any(layer.code is not None for layer in graph.matrix_layers()):
            raise PassOptionError("share must come before the matrix pass (csd, lcc)")
        chosen = self.selected(graph)
        if self.layers == "all" and self.clusters:
            # "all" with a cluster count: the layers wide enough for it; a layer no wider
            # than the count has nothing to share
            wide = [x for x in chosen if len(used_columns(x.weight)) > self.clusters]
            if not wide:
                widest = max(len(used_columns(x.weight)) for x in chosen)
                raise BadInputError(
                    f"share: {self.clusters} clusters asked for, but the widest layer has "
                    f"only {widest} used columns"
                )
            chosen = wide
        power = input_power(graph, ctx.calibration) if self.aware else {}
        plans = {}
        for layer in chosen:  # plan all first: a bad cluster count changes nothing
            if ctx.progress:
                ctx.progress(layer.name)
            plans[layer.name] = plan_layer(
                layer.weight,
                self.clusters,
                self.tolerance,
                self.mode,
                self.algo,
                self.seed,
                f"layer {layer.name}",
                power.get(layer.name),
            )
        for layer in chosen:
            layer.notes.put(plans[layer.name])
