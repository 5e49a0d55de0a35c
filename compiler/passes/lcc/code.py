"""The ``lcc`` pass: linear computation coding of every layer's weight matrix.

``W`` (N x M) is cut into column slices of width K (default ``round(log2 N)``); each slice
becomes a product of sparse factors whose entries are signed powers of two
(:mod:`nnlcc.passes.lcc.fp`, :mod:`nnlcc.passes.lcc.fs`), and the slice results are summed per output row.

The SQNR target is for the *whole matrix*: ``10 log10(|W|_F^2 / |W - W_hat|_F^2)`` (for
i.i.d. Gaussian inputs this is also the output SQNR).  It is measured on ``W_hat``, the exact
product of the power-of-two factors, which :meth:`LccCode.implemented` returns and which the
lowered adder graph computes bit-exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.code_text import CodeWriter
from nnlcc.ir.family import Family
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.matrix import MatrixGraph, MatrixLayer, Term
from nnlcc.ir.text_syntax import quote
from nnlcc.ir.truncate import RESERVE_DB, budget_layer, check_truncate_option
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.coding import code_layer
from nnlcc.passes.lcc.budget import budget_fp
from nnlcc.passes.lcc.fp import (
    FloatArray,
    IntArray,
    SliceProgram,
    lsb_floor_for,
    plain_fp,
    worker_count,
)
from nnlcc.passes.lcc.fs import fs_slice
from nnlcc.passes.lcc.lowering import lower_straight, lower_transposed
from nnlcc.passes.lcc.options import TILE_ROWS, LccOptions
from nnlcc.passes.lcc.search import build_best
from nnlcc.passes.lcc.text_form import slice_lines
from nnlcc.passes.pricing import Pricing

__all__ = ["TILE_ROWS", "Lcc", "LccCode", "LccOptions", "column_slices", "slice_width"]

#: Largest wide matrix (entries) for which ``transpose=auto`` factors both orientations.
AUTO_BOTH = 1 << 18

#: Guard bits that never bind at the exponents allowed (the published, unbounded widths).
UNBOUNDED_GUARD = 40


def slice_width(rows: int, option: str) -> int:
    """``auto`` -> ``round(log2 rows)`` (at least 1): tall slices are where LCC wins."""
    if option == "auto":
        return max(1, round(math.log2(rows))) if rows > 1 else 1
    return int(option)


def column_slices(weight: FloatArray, width: int) -> list[IntArray]:
    """Consecutive groups of ``width`` nonzero columns (all-zero columns cost nothing)."""
    cols = np.nonzero(np.any(weight != 0, axis=0))[0]
    return [cols[i : i + width] for i in range(0, len(cols), width)]


def _transposed_cost(s: SliceProgram) -> tuple[int, int]:
    """Adders and depth of the transposed slice program (see ``LccCode._lower_transposed``):
    an adjoint with ``c`` contributions costs ``c - 1`` adders and ``ceil(log2 c)`` levels."""
    k = s.width
    count = np.zeros(k + len(s.src), dtype=np.int64)
    depth = np.zeros(k + len(s.src), dtype=np.int64)
    np.add.at(count, s.out[s.out >= 0], 1)
    adders = 0
    for i in range(len(s.src) - 1, -1, -1):
        c = int(count[k + i])
        if c == 0:
            continue
        adders += c - 1
        d = int(depth[k + i]) + math.ceil(math.log2(c))
        for src in s.src[i]:
            if src >= 0:
                count[src] += 1
                depth[src] = max(int(depth[src]), d)
    head = count[:k]
    adders += int(np.maximum(head - 1, 0).sum())  # each head's own sum
    levels = [int(depth[j]) + math.ceil(math.log2(int(head[j]))) for j in range(k) if head[j] > 0]
    return adders, max(levels, default=0)


def _transposed_live_heads(s: SliceProgram) -> npt.NDArray[np.bool_]:
    """Which input codewords of a slice get a nonzero adjoint in the transposed program."""
    k = s.width
    live = np.zeros(k + len(s.src), dtype=np.bool_)
    live[s.out[s.out >= 0]] = True
    for i in range(len(s.src) - 1, -1, -1):
        if live[k + i]:
            live[s.src[i][s.src[i] >= 0]] = True
    return live[:k]


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """BLAS threads fight numba's (measured: 50x slower products of K-wide matrices on 2
    cores), so the factorization runs with one BLAS thread and numba does the parallel part."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")  # type: ignore[no-any-return]


@dataclass
class LccCode:
    """A layer's matrix as LCC slice programs; ``exact`` is the matrix they compute."""

    shape: tuple[int, int]
    slices: list[SliceProgram]
    exact: FloatArray
    target_db: float
    reached_db: float
    algo: str
    options: dict[str, Any] = field(default_factory=dict)
    name: str = "lcc"
    transposed: bool = False
    # costs of the transposed programs, computed once: a Python walk over every codeword
    # (seconds on a ResNet-34 layer) that summary() would otherwise repeat five times
    _costs: list[tuple[int, int]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _sums: int | None = field(default=None, init=False, repr=False, compare=False)

    def implemented(self) -> FloatArray:
        return self.exact

    def _transposed_costs(self) -> list[tuple[int, int]]:
        if self._costs is None:
            self._costs = [_transposed_cost(s) for s in self.slices]
        return self._costs

    @property
    def slice_adders(self) -> int:
        if self.transposed:
            return sum(c[0] for c in self._transposed_costs())
        return sum(s.adders for s in self.slices)

    @property
    def sum_adders(self) -> int:
        """Adders summing the slice results of each row (zero contributions are skipped).
        Transposed, a slice's results are its input codewords' adjoints (row tiles of
        ``W.T`` give several per output row)."""
        if self._sums is None:
            per_row = np.zeros(self.shape[0], dtype=np.int64)
            for s in self.slices:
                if self.transposed:
                    per_row[s.cols] += _transposed_live_heads(s)
                else:
                    per_row += s.out >= 0
            self._sums = int(np.maximum(per_row - 1, 0).sum())
        return self._sums

    @property
    def adders(self) -> int:
        return self.slice_adders + self.sum_adders

    @property
    def depth(self) -> int:
        """Adder depth: deepest codeword, then the balanced tree over the slices."""
        if self.transposed:
            return max((c[1] for c in self._transposed_costs()), default=0)
        deep = 0
        for s in self.slices:
            used = s.out[s.out >= 0]
            if len(used):
                deep = max(deep, int(s.depths()[used].max()))
        n = len(self.slices)
        return deep + (math.ceil(math.log2(n)) if n > 1 else 0)

    def lower(self, graph: AdderGraph, inputs: list[int]) -> list[Term]:
        """Every codeword becomes ``terms - 1`` adders over earlier codewords (negative
        exponents are carried in the terms' shifts, so no bit is ever dropped), then each row
        sums its slice results; the graph computes :meth:`implemented` exactly.  Sums are
        built small first and single-use codewords inlined (:mod:`.lowering`)."""
        if self.transposed:
            return lower_transposed(self.slices, self.shape[0], graph, inputs)
        return lower_straight(self.slices, self.shape[0], graph, inputs)

    def text_lines(self, ind: str, out: CodeWriter) -> list[str]:
        """The ``code lcc`` block (:mod:`nnlcc.passes.lcc.text_form`)."""
        r, c = self.shape
        lines = [
            f"{ind}code lcc shape={r}x{c} algo={quote(self.algo)} target_db={self.target_db!r}"
            f" reached_db={self.reached_db!r} transposed={int(self.transposed)}",
            f"{ind}  options {json.dumps(self.options)}",
        ]
        return lines + [ln for s in self.slices for ln in slice_lines(s, ind + "  ")]

    def summary(self) -> dict[str, Any]:
        rows, cols = self.shape
        rounds = [s.rounds for s in self.slices] or [0]
        out: dict[str, Any] = {
            "algo": self.algo,
            "target_sqnr_db": self.target_db,
            "sqnr_db": round(self.reached_db, 3)
            if math.isfinite(self.reached_db)
            else self.reached_db,
            "target_reached": self.reached_db >= self.target_db - 1e-9,
            "slices": len(self.slices),
            "slice_width": max((s.width for s in self.slices), default=0),
            "factors_max": max(rounds),
            "factors_mean": round(float(np.mean(rounds)), 2),
            "adders": self.adders,
            "slice_adders": self.slice_adders,
            "sum_adders": self.sum_adders,
            "adders_per_entry": round(self.adders / max(rows * cols, 1), 4),
            "depth": self.depth,
            "transposed": self.transposed,
            **self.options,
        }
        if not out["target_reached"]:
            out["note"] = (
                f"target not reached: {self.reached_db:.1f} dB after {max(rounds)} factors"
            )
        return out

    @classmethod
    def build(cls, weight: FloatArray, opts: LccOptions | None = None) -> LccCode:
        """Factor ``weight`` (rows = outputs) to the whole-matrix SQNR ``opts.sqnr_db``."""
        opts = LccOptions() if opts is None else opts
        w = np.asarray(weight, dtype=np.float64)
        if w.ndim != 2:
            raise BadInputError(f"lcc: weight must be a matrix, got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise BadInputError("lcc: weight matrix contains NaN or Inf")
        transpose = opts.transpose
        rows, cols = w.shape
        tries: list[tuple[bool, list[SliceProgram], FloatArray]] = []
        # auto: both orientations of a wide matrix while that is cheap; above AUTO_BOTH
        # entries the transposed one alone (it won on every wide matrix measured)
        wide = cols > rows
        both = transpose == "auto" and wide and rows * cols <= AUTO_BOTH
        if transpose == "no" or (transpose == "auto" and (not wide or both)):
            tries.append((False, *_factor(w, opts)))
        if transpose == "yes" or (transpose == "auto" and wide):
            progs_t, exact_t = _factor(np.ascontiguousarray(w.T), opts)
            tries.append((True, progs_t, np.ascontiguousarray(exact_t.T)))
        power = float(np.sum(w * w))
        codes = [
            cls(
                shape=(int(rows), int(cols)),
                slices=progs,
                exact=exact,
                target_db=opts.sqnr_db,
                reached_db=sqnr_db(w, exact) if power > 0 else math.inf,
                algo=opts.algo,
                transposed=tr,
                options={
                    "nonzeros": opts.nonzeros,
                    "exp_min": opts.exp_min,
                    "exp_max": opts.exp_max,
                    "lsb_floor": lsb_floor_for(opts.sqnr_db, opts.guard_bits),
                },
            )
            for tr, progs, exact in tries
        ]
        # the cheaper orientation wins; reaching the target comes first
        return min(codes, key=lambda c: (not c.summary_reached, c.adders))

    @property
    def summary_reached(self) -> bool:
        return self.reached_db >= self.target_db - 1e-9


def _factor(w: FloatArray, opts: LccOptions) -> tuple[list[SliceProgram], FloatArray]:
    """Like :func:`_factor_block`, with the rows cut into near-equal tiles of at most
    ``opts.tile_rows`` (0: no tiling), each factored to the target on its own.  Matching pursuit
    costs grow with the square of the rows, so a 4608-row matrix (a transposed ResNet-34 conv)
    in five tiles compiles about four times faster, for N extra additions per tile boundary
    in the transposed program (a few per thousand entries)."""
    rows, tile_rows = w.shape[0], opts.tile_rows
    if tile_rows <= 0 or rows <= tile_rows:
        return _factor_block(w, opts)
    n_tiles = math.ceil(rows / tile_rows)
    progs: list[SliceProgram] = []
    for chunk in np.array_split(np.arange(rows), n_tiles):
        part, _ = _factor_block(np.ascontiguousarray(w[chunk]), opts)
        for p in part:
            out = np.full(rows, -1, dtype=p.out.dtype)
            out[chunk] = p.out
            block = np.zeros((rows, p.block.shape[1]))
            block[chunk] = p.block
            progs.append(dataclasses.replace(p, out=out, block=block))
    exact = np.zeros_like(w)
    for p in progs:
        exact[:, p.cols] += p.block
    return progs, exact


def _factor_block(w: FloatArray, opts: LccOptions) -> tuple[list[SliceProgram], FloatArray]:
    """Slice programs for ``w`` (rows = outputs) and the exact matrix they compute."""
    rows, _ = w.shape
    groups = column_slices(w, slice_width(rows, opts.slice))
    power = float(np.sum(w * w))
    if not math.isfinite(power):
        raise BadInputError("lcc: weights too large (their squared norm overflows float64)")
    target, algo = opts.sqnr_db, opts.algo
    allowed = power * 10.0 ** (-target / 10.0)
    with _one_blas_thread():
        progs: list[SliceProgram]
        if algo == "plain":
            # as published: no LSB floor (a floor stalls it: every factor refines every
            # row, so all codewords soon sit at the floor and no fine term is left)
            progs = [
                plain_fp(
                    w[:, c],
                    c,
                    target,
                    opts.nonzeros,
                    opts.max_factors,
                    opts.exp_min,
                    opts.exp_max,
                    UNBOUNDED_GUARD,
                )
                for c in groups
            ]
        elif algo == "fs":
            # one SQNR per slice: each slice gets the budget share of its power; slices
            # run on a thread pool (the numba kernel releases the GIL)
            def one(c: IntArray) -> SliceProgram:
                share = allowed * float(np.sum(w[:, c] ** 2)) / power
                return fs_slice(
                    w[:, c],
                    c,
                    share,
                    target,
                    rows * len(c) * 4,
                    opts.exp_min,
                    opts.exp_max,
                    opts.guard_bits,
                )

            with ThreadPoolExecutor(worker_count()) as pool:
                progs = list(pool.map(one, groups))
        elif algo == "fp":
            progs = budget_fp([(w[:, c], c) for c in groups], power, opts)
        else:
            raise PassOptionError(f"lcc: unknown algo {algo!r}")
    exact = np.zeros_like(w)
    for p in progs:
        exact[:, p.cols] += p.block
    return progs, exact


@dataclass(frozen=True)
class Lcc(LccOptions, Pass):
    """Linear computation coding of every layer to ``sqnr_db`` (whole-matrix SQNR of the exact
    factor product).  ``algo``: ``fp`` (fully parallel with a global error budget, the default),
    ``fs`` (fully sequential: fewer adders, deeper), ``plain`` (the published FP, for
    comparison).  ``nonzeros`` terms per factor row, ``slice`` width (``auto`` = log2 rows),
    coefficient exponents in ``[exp_min, exp_max]``, at most ``max_factors`` factors,
    ``history`` earlier factors whose codewords stay candidates (fp), ``budget`` (fp: spend the
    error budget where it pays and stop exactly at the target), ``guard_bits`` of precision
    kept below the target (bounds the adder widths; 40 is the unbounded published behaviour,
    which ``plain`` always uses), ``subrounds`` (fp: each factor updates its rows in this many
    groups, each group seeing the codewords of the groups before it: fewer adders for a little
    more depth), ``lookahead`` (fp with ``nonzeros=2``: each new term is the best of this many
    candidates judged with one step of look-ahead; 1 = greedy matching pursuit), ``transpose``
    (``yes``: factor ``W.T`` and implement its transposed program, which computes ``W`` with
    the same codewords — wide matrices (more inputs than outputs) then get the tall slices LCC
    needs; ``auto`` tries both on wide matrices and keeps the cheaper), ``tile_rows`` (factor at
    most this many rows together: compile time grows with their square), ``truncate``
    (``auto``: partial sums drop the low bits the output cannot see, the coding aims
    :data:`~nnlcc.ir.truncate.RESERVE_DB` above ``sqnr_db`` so the truncated layer still meets
    it; ``off``: exact partial sums; a number: the SQNR in dB each truncated layer keeps; see
    :mod:`nnlcc.ir.truncate`), ``seeds`` (fp: every two-term sum ``x_i ± x_j`` of a slice's
    inputs is a candidate codeword from the first round, one adder when used: shared
    subexpressions inside LCC, :mod:`.seeds`; ``auto``: from 25 dB up, where they pay),
    ``objective`` (``luts``: the orientation and slice width whose design the cost model
    prices cheapest on the board's family, :mod:`.search`; ``area``: the same by the larger of
    LUTs and flip-flops; ``adders``: the published choice, ``round(log2 N)`` wide slices, the
    orientation with fewer adders).  The algorithms are deterministic; ``seed`` is recorded for
    reproducible reports.  The options up to ``objective`` are :class:`LccOptions`."""

    name: ClassVar[str] = "lcc"
    kind: ClassVar[PassKind] = PassKind.MATRIX
    per_layer: ClassVar[bool] = True
    truncate: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sqnr_db) and 0 < self.sqnr_db <= 150):
            raise PassOptionError("lcc: sqnr_db must be in (0, 150]")
        super().__post_init__()
        check_truncate_option("lcc", self.truncate)

    def coding_options(self) -> LccOptions:
        """What :meth:`LccCode.build` gets: these options, with ``sqnr_db`` raised by the
        truncation reserve under ``truncate=auto`` (the coding leaves the truncation
        :data:`~nnlcc.ir.truncate.RESERVE` of the noise budget)."""
        margin = RESERVE_DB if self.truncate == "auto" else 0.0
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(LccOptions)}
        return LccOptions(**{**own, "sqnr_db": self.sqnr_db + margin})

    def build(self, weight: FloatArray) -> LccCode:
        """``weight`` coded with these options as given (no design search)."""
        return self._targeted(LccCode.build(weight, self.coding_options()))

    def build_priced(self, weight: FloatArray, pricing: Pricing) -> LccCode:
        """:meth:`build` with the orientation and slice width the ``objective`` prefers
        (:mod:`.search`; ``transpose`` and ``slice`` other than ``auto`` stay fixed) and,
        under ``truncate=auto``, the coding target above ``sqnr_db`` that prices cheapest
        truncated to it."""
        layer_db = self.sqnr_db if self.truncate == "auto" else None
        code = build_best(weight, self.coding_options(), pricing, LccCode.build, layer_db)
        assert isinstance(code, LccCode)
        return self._targeted(code)

    def _targeted(self, code: LccCode) -> LccCode:
        """``code`` (coded above ``sqnr_db``: the truncation reserve, or what the search
        chose) with ``sqnr_db`` as its target and the coding target in its options."""
        if code.target_db != self.sqnr_db:
            code.options["coding_target_db"] = round(code.target_db, 3)
            code.target_db = self.sqnr_db
        return code

    def builder(self, layer: MatrixLayer, family: Family) -> Callable[[FloatArray], LccCode]:
        """How this pass codes ``layer``'s matrix: by :meth:`build_priced` on the layer's
        input range and ``family`` (``objective`` luts or area), else by :meth:`build`."""
        if self.objective == "adders":
            return self.build
        return functools.partial(self.build_priced, pricing=Pricing.for_layer(layer, family))

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        for layer in graph.matrix_layers():
            if ctx.progress:
                ctx.progress(layer.name)
            layer.code = code_layer(layer, self.builder(layer, ctx.family))
            bare = isinstance(layer.code, LccCode)  # a shared layer's target is the coding's
            budget_layer(layer, self.truncate, self.sqnr_db if bare else None)
