"""Low rank plus residual: ``W ≈ U·V + E`` with each factor coded by the best coder.

``W = U S V^T`` (SVD) is cut at rank ``r``; the layer computes ``z = V' x`` with
``V' = diag(S_r) V_r^T`` (``r x M``, its own code), then ``y`` from ``z`` and ``x``.  The inputs
``z'_k = z_k·2**a_k`` of the second stage are shifted copies (``a_k = -round(log2 S_k)`` gives
each about the power of an ``x``), so its matrix is ``U' = U_r diag(2**-a)``.  The residual
is ``E' = W - U_r V̂'``: what the rank leaves *and* ``V'``'s coding error, corrected at
``E'``'s precision.  Two shapes of the second stage:

* **joint**: one code of ``[U' | E']`` on ``[z'; x]`` (one sum per output row; ``E'`` shares
  the grid or the error budget of the large entries of ``U'``);
* **split**: a code of ``U'`` on ``z'`` and one of ``E'`` on ``x`` (each at its own
  precision: ``E'`` holds the matrix's noise, a few bits deep), their results summed per row.

The implemented matrix is exact: ``Ŵ = Û' diag(2**a) V̂' + Ê'``.  The second stage reads the
first stage's outputs as signed shifted terms (:mod:`.terms`).  :func:`build` prices every
rank of :meth:`~.spectrum.Spectrum.candidates`, a few SQNRs for ``V'``, both shapes and every
factor coder (:func:`nnlcc.passes.pricing.price_code`) and keeps the cheapest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.linalg

from nnlcc.errors import BadInputError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.code_text import CodeWriter
from nnlcc.ir.fixed_point import quantize_weights, sqnr_db
from nnlcc.ir.matrix import FloatArray, MatrixCode, Term
from nnlcc.passes import alkaid
from nnlcc.passes.csd import CsdCode
from nnlcc.passes.lcc.code import LccCode
from nnlcc.passes.lcc.lowering import sum_rows_small_first
from nnlcc.passes.lcc.options import LccOptions
from nnlcc.passes.lcc.search import build_best
from nnlcc.passes.lowrank.spectrum import Spectrum
from nnlcc.passes.lowrank.terms import lower_on_terms
from nnlcc.passes.pricing import Pricing, price_code
from nnlcc.passes.shift_add import SignedTerm

#: A factor coder: (matrix, whole-matrix SQNR in dB, pricing) -> a code reaching it.
FactorCoder = Callable[[FloatArray, float, Pricing], MatrixCode]

#: SQNRs of ``V'`` tried, relative to the layer's target (its error goes into ``E'``).
V_OFFSETS_DB = (-6.0, 0.0)

#: Ranks priced at most (the strongest knees of the spectrum).
MAX_RANKS = 2

#: Share of the error budget the split shape gives ``U'`` (``E'`` gets the rest).
U_SHARE = 0.1

#: Largest factor (entries) alkaid is tried on (its time grows fast).
ALKAID_ENTRIES = 4096

#: Most weight bits a CSD factor may use.
MAX_BITS = 24

#: Attempts at reaching the target exactly (each raises the last code's SQNR by the deficit).
FIT_ROUNDS = 6


def _csd(m: FloatArray, db: float, _: Pricing) -> MatrixCode:
    for bits in range(2, MAX_BITS + 1):
        w_int, frac = quantize_weights(m, bits)
        if not np.any(m) or sqnr_db(m, w_int * 2.0**-frac) >= db:
            return CsdCode(w_int=w_int, frac=frac)
    raise BadInputError(f"lowrank: no CSD width up to {MAX_BITS} bits reaches {db:.2f} dB")


def _lcc(m: FloatArray, db: float, pricing: Pricing) -> MatrixCode:
    return build_best(m, LccOptions(sqnr_db=db), pricing, LccCode.build)


def _alkaid(m: FloatArray, db: float, pricing: Pricing) -> MatrixCode:
    if m.size > ALKAID_ENTRIES:
        raise BadInputError(f"lowrank: alkaid is tried up to {ALKAID_ENTRIES} entries")
    csd = _csd(m, db, pricing)
    assert isinstance(csd, CsdCode)
    bits = max(2, int(np.max(np.abs(csd.w_int))).bit_length() + 1)
    return alkaid.AlkaidCode.build(m, bits, pricing.span)


#: Factor coders by name (``lcc`` is the cost-driven LCC search of :mod:`..lcc.search`).
FACTOR_CODERS: dict[str, FactorCoder] = {"csd": _csd, "lcc": _lcc, "alkaid": _alkaid}


def factor_coders(names: str) -> dict[str, FactorCoder]:
    """The coders named in ``names`` (``+``-joined), alkaid only when it is installed."""
    out = {}
    for n in names.split("+"):
        if n not in FACTOR_CODERS:
            raise BadInputError(
                f"lowrank: unknown factor coder {n!r} (known: {', '.join(FACTOR_CODERS)})"
            )
        if n != "alkaid" or alkaid.available():
            out[n] = FACTOR_CODERS[n]
    return out


@dataclass
class LowRankCode:
    """A layer as ``z = V' x`` then ``U' z' + E' x`` (see the module docstring)."""

    shape: tuple[int, int]
    rank: int
    shifts: list[int]  # a_k: z'_k = z_k * 2**a_k
    v_code: MatrixCode  # r x M
    u_code: MatrixCode  # joint: N x (r + M) on [z'; x]; split: N x r on z'
    target_db: float
    reached_db: float
    e_code: MatrixCode | None = None  # split: N x M on x
    options: dict[str, Any] = field(default_factory=dict)
    name: str = "lowrank"

    @property
    def joint(self) -> bool:
        return self.e_code is None

    def implemented(self) -> FloatArray:
        r = self.rank
        u = self.u_code.implemented()
        low = (u[:, :r] * np.ldexp(1.0, np.asarray(self.shifts))[None, :]) @ (
            self.v_code.implemented()
        )
        if self.e_code is None:
            return low + u[:, r:]
        return low + self.e_code.implemented()

    def lower(self, graph: AdderGraph, inputs: list[int]) -> list[Term]:
        x: list[SignedTerm] = [(i, 0, False) for i in inputs]
        zt: list[SignedTerm] = []
        for t, a in zip(lower_on_terms(self.v_code, graph, x), self.shifts, strict=True):
            # a zero output of V' meets an all-zero column of U': the term is never read
            zt.append((inputs[0], 0, False) if t.node is None else (t.node, t.exp + a, t.neg))
        if self.e_code is None:
            return lower_on_terms(self.u_code, graph, zt + x)
        parts = zip(
            lower_on_terms(self.u_code, graph, zt),
            lower_on_terms(self.e_code, graph, x),
            strict=True,
        )
        rows = [[(t.node, t.exp, t.neg) for t in ts if t.node is not None] for ts in parts]
        return sum_rows_small_first(graph, rows)

    def text_lines(self, ind: str, out: CodeWriter) -> list[str]:
        """The ``code lowrank`` block (:mod:`.text_form`): the factors are their codes' own
        blocks."""
        r, c = self.shape
        lines = [
            f"{ind}code lowrank shape={r}x{c} rank={self.rank} target_db={self.target_db!r}"
            f" reached_db={self.reached_db!r} split={int(not self.joint)}",
            f"{ind}  shifts {','.join(map(str, self.shifts))}",
            f"{ind}  options {json.dumps(self.options)}",
            *out.code(self.v_code, ind + "  "),
            *out.code(self.u_code, ind + "  "),
        ]
        if self.e_code is not None:
            lines += out.code(self.e_code, ind + "  ")
        return lines

    def _combine_adders(self) -> int:
        """Rows where both parts of a split design are nonzero (one adder each)."""
        if self.e_code is None:
            return 0
        u = np.any(self.u_code.implemented() != 0, axis=1)
        e = np.any(self.e_code.implemented() != 0, axis=1)
        return int(np.count_nonzero(u & e))

    def summary(self) -> dict[str, Any]:
        parts = {"v": self.v_code, "u": self.u_code}
        if self.e_code is not None:
            parts["e"] = self.e_code
        facts = {k: c.summary() for k, c in parts.items()}
        out: dict[str, Any] = {
            "rank": self.rank,
            "shape2": "joint" if self.joint else "split",
            "target_sqnr_db": self.target_db,
            "sqnr_db": round(self.reached_db, 3)
            if math.isfinite(self.reached_db)
            else self.reached_db,
            "adders": sum(int(f.get("adders", 0)) for f in facts.values()) + self._combine_adders(),
        }
        for k, c in parts.items():
            out[f"{k}_coder"] = c.name
            out[f"{k}_adders"] = facts[k].get("adders")
        return {**out, **self.options}


class _Factors:
    """The SVD of ``w`` and, per rank, the factors ``U V = W_r`` (the best rank-``r`` part) in
    echelon form: ``r`` rows ``S`` of ``U`` are the identity (picked by pivoted QR, so ``U``
    stays well conditioned) and ``V = W_r[S]``; those rows' outputs are ``z`` itself, with no
    adder, and ``U`` has ``r**2`` fewer entries to code."""

    def __init__(self, w: FloatArray, pricing: Pricing) -> None:
        self.w = w
        self.pricing = pricing
        self.u, self.s, self.vt = np.linalg.svd(w, full_matrices=False)
        self.power = float(np.sum(w * w))

    @property
    def rank(self) -> int:
        """The numerical rank (singular values above the float64 noise of the largest)."""
        tol = (self.s[0] if len(self.s) else 0.0) * max(self.w.shape) * np.finfo(float).eps
        return int(np.sum(self.s > tol))

    def allowed(self, target_db: float) -> float:
        return self.power * 10.0 ** (-target_db / 10.0)

    def factors(self, rank: int) -> tuple[FloatArray, FloatArray]:
        """``U`` (``N x r``, identity on ``r`` rows) and ``V`` (``r x M``)."""
        if not 1 <= rank <= self.rank:
            raise BadInputError(f"lowrank: rank {rank} is outside 1..{self.rank}")
        ur = self.u[:, :rank]
        _, _, piv = scipy.linalg.qr(ur.T, pivoting=True)
        rows = np.sort(piv[:rank])
        u = np.linalg.solve(ur[rows].T, ur.T).T  # ur @ inv(ur[rows])
        u[rows] = np.eye(rank)
        v = ur[rows] @ (self.s[:rank, None] * self.vt[:rank])
        return u, v

    def second_stage(
        self, rank: int, v_code: MatrixCode
    ) -> tuple[list[int], FloatArray, FloatArray]:
        """The shifts ``a`` (``z'_k = z_k 2**a_k`` about as strong as an input), ``U'`` (zero
        where ``V̂`` has a zero row) and ``E' = W - U V̂``."""
        u, _ = self.factors(rank)
        v_hat = v_code.implemented()
        norms = np.sqrt(np.sum(v_hat * v_hat, axis=1))
        live = norms > 0
        if not np.any(live):
            raise BadInputError("lowrank: V codes to zero")
        shifts = [-round(math.log2(float(x))) if x > 0 else 0 for x in norms]
        up = u * np.ldexp(1.0, -np.asarray(shifts))[None, :] * live[None, :]
        resid = self.w - (up * np.ldexp(1.0, np.asarray(shifts))[None, :]) @ v_hat
        return shifts, up, resid


def _fit(
    make: Callable[[float], LowRankCode], db: float, w: FloatArray, target_db: float
) -> tuple[LowRankCode, float]:
    """``make(db)``, raising ``db`` by the deficit until the whole matrix reaches the target."""
    code = make(db)
    for _ in range(FIT_ROUNDS - 1):
        code.reached_db = sqnr_db(w, code.implemented()) if np.any(w) else math.inf
        if code.reached_db >= target_db - 1e-9:
            break
        db += target_db - code.reached_db + 0.02
        code = make(db)
    code.reached_db = sqnr_db(w, code.implemented()) if np.any(w) else math.inf
    return code, db


def _cheapest(
    m: FloatArray, db: float, coders: dict[str, FactorCoder], pricing: Pricing
) -> tuple[str, MatrixCode] | None:
    """The coder whose code of ``m`` at ``db`` alone is estimated cheapest, and that code."""
    best: tuple[int, str, MatrixCode] | None = None
    for name, coder in coders.items():
        try:
            code = coder(m, db, pricing)
        except BadInputError:
            continue
        luts = price_code(code, pricing, m, db).luts
        if best is None or luts < best[0]:
            best = (luts, name, code)
    return None if best is None else (best[1], best[2])


def refit_coder(name: str, code: MatrixCode, coders: dict[str, FactorCoder]) -> FactorCoder:
    """The coder that re-codes at another SQNR with the choices ``code`` made (an LCC
    search's orientation and slice width are kept: only the target moves)."""
    if isinstance(code, LccCode):
        tr: Literal["yes", "no"] = "yes" if code.transposed else "no"
        width = str(int(code.summary()["slice_width"]))

        def lcc(m: FloatArray, db: float, _: Pricing) -> MatrixCode:
            return LccCode.build(m, LccOptions(sqnr_db=db, transpose=tr, slice=width))

        return lcc
    return coders[name]


def compose_rank(
    f: _Factors, rank: int, target_db: float, coders: dict[str, FactorCoder]
) -> list[LowRankCode]:
    """The designs of rank ``rank``: ``V'`` and (split) ``U'`` by the coder that codes each
    cheapest alone; the residual (split: ``E'``; joint: ``[U' | E']``) by every coder, each
    fitted so the whole matrix just reaches the target (the caller prices them whole)."""
    v_db = target_db + V_OFFSETS_DB[-1]
    v = _cheapest(f.factors(rank)[1], v_db, coders, f.pricing)
    if v is None:
        raise BadInputError(f"lowrank: no coder codes V' at {v_db:.2f} dB")
    v_code = v[1]
    shifts, up, resid = f.second_stage(rank, v_code)
    allowed = f.allowed(target_db)
    shape = (int(f.w.shape[0]), int(f.w.shape[1]))
    out: list[LowRankCode] = []

    def fitted(
        m: FloatArray, db0: float, make: Callable[[MatrixCode], LowRankCode], label: str
    ) -> None:
        for name, coder in coders.items():
            try:
                first = coder(m, db0, f.pricing)
            except BadInputError:
                continue
            again = refit_coder(name, first, coders)

            def one(
                db: float, first: MatrixCode = first, again: FactorCoder = again
            ) -> LowRankCode:
                return make(first if db == db0 else again(m, db, f.pricing))

            try:
                code, db = _fit(one, db0, f.w, target_db)
            except BadInputError:
                continue
            code.options = {
                "v_sqnr_db": round(v_db, 2),
                "last_sqnr_db": round(db, 2),
                "design": f"rank {rank} {label} {name}",
            }
            out.append(code)

    # split: U' with U_SHARE of the budget, E' with what U' leaves
    u_db = 10.0 * math.log10(float(np.sum(up * up)) / (U_SHARE * allowed))
    u = _cheapest(up, u_db, coders, f.pricing)
    e_power = float(np.sum(resid * resid))
    if u is not None and e_power > 0:
        u_code = u[1]
        u_err = float(np.sum(((u_code.implemented() - up) * np.ldexp(1.0, shifts)) ** 2))
        left = max(allowed - u_err, 0.05 * allowed)
        fitted(
            resid,
            10.0 * math.log10(e_power / left),
            lambda e: LowRankCode(shape, rank, shifts, v_code, u_code, target_db, math.inf, e),
            f"split: V' {v[0]}, U' {u[0]} at {u_db:.1f} dB, E'",
        )
    # joint: [U' | E'] on [z'; x]
    j = np.concatenate([up, resid], axis=1)
    fitted(
        j,
        10.0 * math.log10(float(np.sum(j * j)) / allowed),
        lambda c: LowRankCode(shape, rank, shifts, v_code, c, target_db, math.inf),
        f"joint: V' {v[0]}, [U' E']",
    )
    return out


def build(
    w: FloatArray,
    target_db: float,
    pricing: Pricing,
    rank: int | None = None,
    coders: str = "csd+lcc+alkaid",
) -> LowRankCode:
    """The cheapest low-rank design of ``w`` (estimated LUTs, :func:`price_code`) over the
    ranks (``rank``, or the spectrum's candidates), ``V'`` SQNRs, both second-stage shapes and
    the factor ``coders``; one clear error when none reaches ``target_db``."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or not np.all(np.isfinite(w)):
        raise BadInputError("lowrank: the weight must be a finite matrix")
    table = factor_coders(coders)
    spec = Spectrum.of(w)
    if rank is not None and not 1 <= rank <= min(w.shape):
        raise BadInputError(f"lowrank: rank {rank} is outside 1..{min(w.shape)}")
    ranks = [rank] if rank is not None else spec.candidates(target_db)
    if not ranks:
        raise BadInputError(
            f"lowrank: no rank up to {spec.max_rank} leaves a residual worth coding apart"
            f" (best low-rank part {spec.tail_db(max(spec.max_rank, 1)):.1f} dB)"
        )
    f = _Factors(w, pricing)
    best: tuple[int, LowRankCode] | None = None
    reached = -math.inf
    for r in ranks[:MAX_RANKS]:
        for code in compose_rank(f, r, target_db, table):
            reached = max(reached, code.reached_db)
            if code.reached_db < target_db - 1e-9:
                continue
            luts = price_code(code, pricing, w, target_db).luts
            code.options["est_luts_alone"] = luts
            if best is None or luts < best[0]:
                best = (luts, code)
    if best is None:
        raise BadInputError(
            f"lowrank: no design reached {target_db:.2f} dB (best {reached:.2f} dB)"
        )
    best[1].options.update(spec.scalar_facts(target_db))
    return best[1]
