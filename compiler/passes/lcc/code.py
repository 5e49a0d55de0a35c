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
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.matrix import MatrixGraph, MatrixLayer, Term
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.coding import code_layer
from nnlcc.passes.lcc.budget import budget_fp
from nnlcc.passes.lcc.fp import (
    GUARD_BITS,
    FloatArray,
    IntArray,
    SliceProgram,
    lsb_floor_for,
    plain_fp,
    worker_count,
)
from nnlcc.passes.lcc.fs import fs_slice
from nnlcc.passes.lcc.lowering import lower_straight, lower_transposed
from nnlcc.passes.lcc.search import OBJECTIVES, Objective, build_best
from nnlcc.passes.lcc.seeds import SEEDS_MIN_DB
from nnlcc.passes.pricing import Pricing
from nnlcc.passes.truncation import RESERVE_DB, check_option, plan_layer

Algo = Literal["fp", "fs", "plain"]

#: Rows factored together at most (``tile_rows``).  Measured on a 512x4608 Gaussian matrix
#: (transposed: 4608 rows) at 45 dB on 2 cores: 1024 -> 0.821 additions/entry in 16.6 s,
#: 1152 -> 0.807 in 16.8 s, 1536 -> 0.781 in 20 s, 2304 -> 0.748 in 23 s, untiled 0.700 in
#: about 60 s; 1152 also keeps a 128x1152 conv (transposed) in one tile (0.804 vs 0.876).
TILE_ROWS = 1152

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
    def build(
        cls,
        weight: FloatArray,
        sqnr_db_target: float = 45.0,
        algo: str = "fp",
        nonzeros: int = 2,
        slice_option: str = "auto",
        exp_min: int = -12,
        exp_max: int = 2,
        max_factors: int = 32,
        history: int = 64,
        budget: bool = True,
        guard_bits: int = GUARD_BITS,
        subrounds: int = 4,
        lookahead: int = 2,
        transpose: str = "auto",
        tile_rows: int = TILE_ROWS,
        seeds: bool | None = None,
    ) -> LccCode:
        """Factor ``weight`` (rows = outputs) to the whole-matrix SQNR target (``seeds``:
        None uses them from :data:`~.seeds.SEEDS_MIN_DB` up)."""
        w = np.asarray(weight, dtype=np.float64)
        if w.ndim != 2:
            raise BadInputError(f"lcc: weight must be a matrix, got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise BadInputError("lcc: weight matrix contains NaN or Inf")
        if transpose not in ("no", "auto", "yes"):
            raise PassOptionError(f"lcc: transpose must be auto, yes or no, not {transpose!r}")
        args = (
            sqnr_db_target,
            algo,
            nonzeros,
            slice_option,
            exp_min,
            exp_max,
            max_factors,
            history,
            budget,
            guard_bits,
            subrounds,
            lookahead,
            sqnr_db_target >= SEEDS_MIN_DB if seeds is None else seeds,
        )
        rows, cols = w.shape
        tries: list[tuple[bool, list[SliceProgram], FloatArray]] = []
        # auto: both orientations of a wide matrix while that is cheap; above AUTO_BOTH
        # entries the transposed one alone (it won on every wide matrix measured)
        wide = cols > rows
        both = transpose == "auto" and wide and rows * cols <= AUTO_BOTH
        if transpose == "no" or (transpose == "auto" and (not wide or both)):
            tries.append((False, *_factor(w, tile_rows, *args)))
        if transpose == "yes" or (transpose == "auto" and wide):
            progs_t, exact_t = _factor(np.ascontiguousarray(w.T), tile_rows, *args)
            tries.append((True, progs_t, np.ascontiguousarray(exact_t.T)))
        power = float(np.sum(w * w))
        codes = [
            cls(
                shape=(int(rows), int(cols)),
                slices=progs,
                exact=exact,
                target_db=sqnr_db_target,
                reached_db=sqnr_db(w, exact) if power > 0 else math.inf,
                algo=algo,
                transposed=tr,
                options={
                    "nonzeros": nonzeros,
                    "exp_min": exp_min,
                    "exp_max": exp_max,
                    "lsb_floor": lsb_floor_for(sqnr_db_target, guard_bits),
                },
            )
            for tr, progs, exact in tries
        ]
        # the cheaper orientation wins; reaching the target comes first
        return min(codes, key=lambda c: (not c.summary_reached, c.adders))

    @property
    def summary_reached(self) -> bool:
        return self.reached_db >= self.target_db - 1e-9


def _factor(w: FloatArray, tile_rows: int, *args: Any) -> tuple[list[SliceProgram], FloatArray]:
    """Like :func:`_factor_block`, with the rows cut into near-equal tiles of at most
    ``tile_rows`` (0: no tiling), each factored to the target on its own.  Matching pursuit
    costs grow with the square of the rows, so a 4608-row matrix (a transposed ResNet-34 conv)
    in five tiles compiles about four times faster, for N extra additions per tile boundary
    in the transposed program (a few per thousand entries)."""
    rows = w.shape[0]
    if tile_rows <= 0 or rows <= tile_rows:
        return _factor_block(w, *args)
    n_tiles = math.ceil(rows / tile_rows)
    progs: list[SliceProgram] = []
    for chunk in np.array_split(np.arange(rows), n_tiles):
        part, _ = _factor_block(np.ascontiguousarray(w[chunk]), *args)
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


def _factor_block(
    w: FloatArray,
    sqnr_db_target: float,
    algo: str,
    nonzeros: int,
    slice_option: str,
    exp_min: int,
    exp_max: int,
    max_factors: int,
    history: int,
    budget: bool,
    guard_bits: int,
    subrounds: int,
    lookahead: int,
    seeds: bool = False,
) -> tuple[list[SliceProgram], FloatArray]:
    """Slice programs for ``w`` (rows = outputs) and the exact matrix they compute."""
    rows, _ = w.shape
    groups = column_slices(w, slice_width(rows, slice_option))
    power = float(np.sum(w * w))
    if not math.isfinite(power):
        raise BadInputError("lcc: weights too large (their squared norm overflows float64)")
    allowed = power * 10.0 ** (-sqnr_db_target / 10.0)
    with _one_blas_thread():
        progs: list[SliceProgram]
        if algo == "plain":
            # as published: no LSB floor (a floor stalls it: every factor refines every
            # row, so all codewords soon sit at the floor and no fine term is left)
            progs = [
                plain_fp(
                    w[:, c],
                    c,
                    sqnr_db_target,
                    nonzeros,
                    max_factors,
                    exp_min,
                    exp_max,
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
                    sqnr_db_target,
                    rows * len(c) * 4,
                    exp_min,
                    exp_max,
                    guard_bits,
                )

            with ThreadPoolExecutor(worker_count()) as pool:
                progs = list(pool.map(one, groups))
        elif algo == "fp":
            progs = budget_fp(
                [(w[:, c], c) for c in groups],
                sqnr_db_target,
                power,
                nonzeros,
                max_factors,
                exp_min,
                exp_max,
                history,
                budget,
                guard_bits,
                subrounds,
                lookahead,
                seeds,
            )
        else:
            raise PassOptionError(f"lcc: unknown algo {algo!r}")
    exact = np.zeros_like(w)
    for p in progs:
        exact[:, p.cols] += p.block
    return progs, exact


@dataclass(frozen=True)
class Lcc(Pass):
    """Linear computation coding of every layer to ``sqnr_db`` (whole-matrix SQNR of the exact
        factor product).  ``algo``: ``fp`` (fully parallel with a global error budget, the default),
        ``fs`` (fully sequential: fewer adders, deeper), ``plain`` (the published FP, for
        comparison).  ``nonzeros`` terms per factor row, ``slice`` width (``auto`` = log2 rows),
        coefficient exponents in ``[exp_min, exp_max]``, at most ``max_factors`` factors,
        ``history`` earlier factors whose codewords stay candidates (fp), ``budget`` (fp: spend the
        error budget where it pays and stop exactly at the target), ``guard_bits`` of precision
        kept below the target (bounds the adder widths; 40 is the unbounded published behaviour,
        which ``plain`` always uses),
        ``subrounds`` (fp: each factor updates its rows in this many groups, each group seeing the
        codewords of the groups before it: fewer adders for a little more depth), ``lookahead``
        (fp with ``nonzeros=2``: each new term is the best of this many candidates judged with one
        step of look-ahead; 1 = greedy matching pursuit), ``transpose`` (``yes``: factor ``W.T``
        and implement its transposed program, which computes ``W`` with the same codewords —
        wide matrices (more inputs than outputs) then get the tall slices LCC needs; ``auto``
        tries both on wide matrices and keeps the cheaper), ``tile_rows`` (factor at most this many
        rows together: compile time grows with their square), ``truncate`` (``auto``: partial sums
    drop the low bits the output cannot see, the coding aims :data:`RESERVE_DB` above
    ``sqnr_db`` so the truncated layer still meets it; ``off``: exact partial sums; a number: the
    SQNR in dB each truncated layer keeps; see :mod:`nnlcc.passes.truncation`), ``objective``
    (``luts``: the orientation and slice width whose design the cost model prices cheapest on
    the board's family, :mod:`.search`; ``area``: the same by the larger of LUTs and
    flip-flops; ``adders``: the published choice, ``round(log2 N)`` wide slices, the
    orientation with fewer adders). ``seeds`` (fp: every two-term sum ``x_i ± x_j`` of a
    slice's inputs is a candidate codeword from the first round, one adder when used: shared
    subexpressions inside LCC, :mod:`.seeds`; ``auto``: from 25 dB up, where they pay).  The algorithms
        are deterministic; ``seed`` is recorded for reproducible reports."""

    name: ClassVar[str] = "lcc"
    kind: ClassVar[PassKind] = PassKind.MATRIX
    per_layer: ClassVar[bool] = True
    sqnr_db: float = 45.0
    algo: Algo = "fp"
    nonzeros: int = 2
    slice: str = "auto"
    exp_min: int = -12
    exp_max: int = 2
    max_factors: int = 32
    history: int = 64
    budget: bool = True
    guard_bits: int = GUARD_BITS
    subrounds: int = 4
    lookahead: int = 2
    transpose: Literal["auto", "yes", "no"] = "auto"
    tile_rows: int = TILE_ROWS
    truncate: str = "auto"
    objective: Objective = "luts"
    seeds: Literal["auto", "yes", "no"] = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sqnr_db) and 0 < self.sqnr_db <= 150):
            raise PassOptionError("lcc: sqnr_db must be in (0, 150]")
        if self.algo not in ("fp", "fs", "plain"):
            raise PassOptionError("lcc: algo must be fp, fs or plain")
        if not 2 <= self.nonzeros <= 8:
            raise PassOptionError("lcc: nonzeros must be in 2..8")
        if self.slice != "auto" and not (self.slice.isdigit() and int(self.slice) >= 1):
            raise PassOptionError("lcc: slice must be 'auto' or a positive integer")
        if not -30 <= self.exp_min <= self.exp_max <= 8:
            raise PassOptionError("lcc: need -30 <= exp_min <= exp_max <= 8")
        if not 1 <= self.max_factors <= 256:
            raise PassOptionError("lcc: max_factors must be in 1..256")
        if self.history < 1:
            raise PassOptionError("lcc: history must be >= 1")
        if self.seeds not in ("auto", "yes", "no"):
            raise PassOptionError("lcc: seeds must be auto, yes or no")
        if self.objective not in OBJECTIVES:
            raise PassOptionError(f"lcc: objective must be one of {', '.join(OBJECTIVES)}")
        if not 0 <= self.guard_bits <= 40:
            raise PassOptionError("lcc: guard_bits must be in 0..40")
        if not 1 <= self.subrounds <= 16:
            raise PassOptionError("lcc: subrounds must be in 1..16")
        if not 1 <= self.lookahead <= 16:
            raise PassOptionError("lcc: lookahead must be in 1..16")
        if self.tile_rows < 0:
            raise PassOptionError("lcc: tile_rows must be >= 0 (0: no row tiles)")
        check_option("lcc", self.truncate)

    def build(self, weight: FloatArray) -> LccCode:
        # truncate=auto: the coding leaves the truncation RESERVE of the noise budget
        margin = RESERVE_DB if self.truncate == "auto" else 0.0
        code = LccCode.build(
            weight,
            self.sqnr_db + margin,
            self.algo,
            self.nonzeros,
            self.slice,
            self.exp_min,
            self.exp_max,
            self.max_factors,
            self.history,
            self.budget,
            self.guard_bits,
            self.subrounds,
            self.lookahead,
            self.transpose,
            self.tile_rows,
            self.use_seeds,
        )
        if margin:
            code.target_db = self.sqnr_db
            code.options["coding_target_db"] = round(self.sqnr_db + margin, 3)
        return code

    @property
    def use_seeds(self) -> bool | None:
        return None if self.seeds == "auto" else self.seeds == "yes"

    def build_priced(self, weight: FloatArray, pricing: Pricing) -> LccCode:
        """:meth:`build` with the orientation and slice width the ``objective`` prefers
        (:mod:`.search`; ``transpose`` and ``slice`` other than ``auto`` stay fixed)."""
        margin = RESERVE_DB if self.truncate == "auto" else 0.0
        build = functools.partial(
            LccCode.build,
            algo=self.algo,
            nonzeros=self.nonzeros,
            exp_min=self.exp_min,
            exp_max=self.exp_max,
            max_factors=self.max_factors,
            history=self.history,
            budget=self.budget,
            guard_bits=self.guard_bits,
            subrounds=self.subrounds,
            lookahead=self.lookahead,
            tile_rows=self.tile_rows,
            seeds=self.use_seeds,
        )
        code = build_best(
            weight,
            self.sqnr_db + margin,
            pricing,
            build,
            self.objective,
            self.transpose,
            self.slice,
        )
        assert isinstance(code, LccCode)
        if margin:
            code.target_db = self.sqnr_db
            code.options["coding_target_db"] = round(self.sqnr_db + margin, 3)
        return code

    def builder(self, layer: MatrixLayer, family: str) -> Callable[[FloatArray], LccCode]:
        """How this pass codes ``layer``'s matrix: by :meth:`build_priced` on the layer's
        input range and ``family`` (``objective=luts``), else by :meth:`build`."""
        if self.objective == "adders":
            return self.build
        return functools.partial(self.build_priced, pricing=Pricing.for_layer(layer, family))

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        for layer in graph.matrix_layers():
            if ctx.progress:
                ctx.progress(layer.name)
            layer.code = code_layer(layer, self.builder(layer, ctx.family))
            bare = isinstance(layer.code, LccCode)  # a shared layer's target is the coding's
            plan_layer(layer, self.truncate, self.sqnr_db if bare else None)
