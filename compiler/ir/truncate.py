"""Truncated partial sums: an exact matrix adder graph rewritten to drop invisible low bits.

A matrix code lowers to an exact graph: every node is an integer combination of the inputs and
output row ``r`` is ``±v[node_r] * 2**exp_r`` (:class:`~nnlcc.ir.matrix.Term`, in units of the
input LSB).  The layer output keeps far fewer bits than these sums carry (LCC coefficients go
down to ``2**-12``), so :func:`truncate` rebuilds the graph keeping, at every node, only the
bits worth at least ``2**lsb`` on some output (``lsb`` in input-LSB units, one value per layer):

* ``T(v)`` is the largest weight ``2**T`` one unit of node ``v`` has on any output (a backward
  sweep over the shifts); node ``v`` is kept as ``v' = v / 2**E(v)`` with
  ``E(v) = max(lsb - T(v), min(E(a) + sa, E(b) + sb))``: never finer than its operands;
* an add aligns its operands to ``2**E``: an operand that is finer is *floored* there (an
  arithmetic shift right, wiring only), so the adder is narrower; the other is shifted left;
* every floor's error is tracked exactly as an interval (worst case) and as a variance
  (``(4**E - 4**e) / 12`` for bits below ``2**E`` of a value with LSB ``2**e``, the uniform
  model, or the interval's worst case for an operand that keeps few bits), and both
  propagate linearly to the outputs;
* the mean of each output's error (the midpoint of its interval: floors are biased by
  half a dropped LSB) is cancelled by an integer ``comp`` that lowering adds to the
  requantization constant, an adder that exists anyway.

The rewritten graph *is* the golden model, so hardware and simulation stay bit-exact; its
ranges, hence widths, come from interval arithmetic on the truncated values.
:func:`choose_lsb` finds the coarsest ``lsb`` whose modelled noise fits a budget.

**The budget** (the ``truncate`` option of the matrix passes csd, lcc and auto): the SQNR a
truncated layer keeps is the whole-matrix SQNR of LCC, extended by the truncation noise: for
white inputs of the layer's calibration power ``m2`` (mean square, the :class:`InputPower`
note the quantize pass records),

    ``SQNR = 10 log10(|W|_F^2 m2 / (|W - W_hat|_F^2 m2 + N))``

where ``W_hat`` is the matrix the code implements and ``N`` the modelled mean square error of
the truncations summed over the outputs (variance ``Δ²/12``-style per dropped bit range,
propagated through the shifts, plus the residual mean after compensation).  ``truncate``:

* ``off``: exact partial sums (the graphs of a compile without truncation);
* ``auto``: truncation may add :data:`RESERVE` of the coding noise (0.41 dB off the coding
  SQNR, :data:`RESERVE_DB`); ``lcc`` codes to its target plus that much, so its layers still
  meet ``sqnr_db``, and any margin the coding left above the target goes to the truncation too;
* a number: the SQNR (dB) each layer must keep; a layer whose coding alone falls below it is
  an error naming the layer and the SQNR it reaches.

A matrix pass notes the budget with :func:`budget_layer` as the layer's :class:`TruncationBudget`
(the target and the signal, coding noise and truncation noise allowed, in weight-power units);
lowering picks the coarsest LSB the partial sums may keep within it (:func:`plan_truncation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.adder_graph import AdderGraph, Op
from nnlcc.ir.fixed_point import IntArray, sqnr_db
from nnlcc.ir.lowered import LoweredLayer, LoweredNetwork
from nnlcc.ir.matrix import MatrixGraph, MatrixLayer, Term
from nnlcc.ir.notes import JsonNote


@dataclass(frozen=True)
class InputPower(JsonNote):
    """The mean square of a matrix layer's input on the calibration data (real units), noted
    by the quantize pass: the input power the truncation budget uses (``info`` key
    ``input_ms``)."""

    key: ClassVar[str] = "input_ms"
    mean_square: float

    def to_json(self) -> float:
        return self.mean_square

    @classmethod
    def from_json(cls, obj: Any) -> InputPower:
        if isinstance(obj, bool) or not isinstance(obj, int | float):
            raise ValueError("input_ms must be a number")
        return cls(float(obj))


@dataclass(frozen=True)
class TruncationBudget(JsonNote):
    """What a matrix pass allows the truncation of a layer's partial sums (:func:`budget_layer`;
    ``info`` key ``truncation``): the SQNR it must keep (``target_db``) and, in weight-power
    units, the signal, the coding noise and the truncation noise allowed.  Lowering picks the
    coarsest LSB within it (:func:`plan_truncation`).  Absent: the exact graph."""

    key: ClassVar[str] = "truncation"
    of_weights: ClassVar[bool] = True
    target_db: float
    signal: float
    coding_noise: float
    noise_budget: float

    def to_json(self) -> dict[str, float]:
        return {
            "target_db": self.target_db,
            "signal": self.signal,
            "coding_noise": self.coding_noise,
            "noise_budget": self.noise_budget,
        }

    @classmethod
    def from_json(cls, obj: Any) -> TruncationBudget:
        keys = ("target_db", "signal", "coding_noise", "noise_budget")
        if not isinstance(obj, dict) or set(obj) != set(keys):
            raise ValueError(f"truncation must be a JSON object of {', '.join(keys)}")
        if not all(isinstance(obj[k], int | float) and not isinstance(obj[k], bool) for k in keys):
            raise ValueError("truncation's values must be numbers")
        return cls(*(float(obj[k]) for k in keys))


#: Share of the coding noise that ``truncate=auto`` lets truncation add.
RESERVE = 0.1

#: The SQNR, in dB, that :data:`RESERVE` costs the coding.
RESERVE_DB = 10.0 * math.log10(1.0 + RESERVE)


@dataclass
class Truncated:
    """:func:`truncate`'s result.  Per output row: ``comp`` (an integer to add to the row's
    accumulator), ``err_lo``/``err_hi`` (bounds on ``acc * 2**exp - exact`` after ``comp``, in
    input-LSB units) and ``var`` (its modelled variance, same units squared)."""

    graph: AdderGraph
    terms: list[Term]
    comp: list[int]
    err_lo: list[float]
    err_hi: list[float]
    var: list[float]

    @property
    def noise(self) -> float:
        """Modelled mean square error summed over the rows (mean error included)."""
        return sum(
            v + ((lo + hi) / 2) ** 2
            for v, lo, hi in zip(self.var, self.err_lo, self.err_hi, strict=True)
        )


def output_weights(graph: AdderGraph, terms: list[Term]) -> list[float]:
    """``T(v)``: log2 of the largest weight of one unit of node ``v`` on any output (``-inf``
    for nodes no output reads)."""
    t = [-math.inf] * len(graph.nodes)
    for term in terms:
        if term.node is not None:
            t[term.node] = max(t[term.node], float(term.exp))
    for i in range(len(graph.nodes) - 1, -1, -1):
        n, ti = graph.nodes[i], t[i]
        if ti == -math.inf:
            continue
        if n.op is Op.ADD:
            t[n.a] = max(t[n.a], ti + n.sa)
            t[n.b] = max(t[n.b], ti + n.sb)
        elif n.op is Op.SHR:
            if n.sa > 0:
                raise ValueError("truncation needs an exact graph: it has a floor shift")
            t[n.a] = max(t[n.a], ti - n.sa)
        elif n.op is Op.CLAMP:
            raise ValueError("truncation needs an exact graph: it has a clamp")
        elif n.op in (Op.MAX, Op.MIN):
            raise ValueError(f"truncation needs a linear graph: it has a {n.op.value}")
    return t


#: Bits an operand's range must keep above a floor for the floor's error to be modelled as
#: uniform; a floor of a narrower operand gets the worst-case spread of its error interval.
UNIFORM_BITS = 4


def _floor_error(e_from: int, e_to: int, span: float) -> tuple[float, float]:
    """Lower error bound and mean square spread of flooring a value with LSB ``2**e_from``
    and range width ``span`` to a multiple of ``2**e_to`` (no error when ``e_to <=
    e_from``): ``(4**e_to - 4**e_from) / 12`` when the low bits are uniform, the interval's
    worst case ``(width / 2)**2`` when the value keeps too few bits above the floor."""
    if e_to <= e_from:
        return 0.0, 0.0
    width = 2.0**e_to - 2.0**e_from
    if span < 2.0 ** (e_to + UNIFORM_BITS):
        return -width, width * width / 4.0
    return -width, (4.0**e_to - 4.0**e_from) / 12.0


def truncate(
    graph: AdderGraph,
    terms: list[Term],
    lsb: int,
    weights: list[float] | None = None,
    build: bool = True,
) -> Truncated:
    """Rewrite the exact ``graph`` (outputs ``terms``) keeping bits worth ``>= 2**lsb`` (see
    the module docstring); ``build=False`` only models the errors (the result's graph is then
    the input graph and its terms are the input terms)."""
    tw = output_weights(graph, terms) if weights is None else weights
    n_nodes = len(graph.nodes)
    new = AdderGraph.with_inputs([(n.lo, n.hi) for n in graph.nodes[: graph.n_inputs]])
    node_of = list(range(n_nodes))  # new node of each old node
    e = [0] * n_nodes  # old node v ~ new node * 2**e[v]
    lo = [0.0] * n_nodes  # error interval of new * 2**e - old, in old node units
    hi = [0.0] * n_nodes
    var = [0.0] * n_nodes
    for i, n in enumerate(graph.nodes):
        if n.op is Op.INPUT:
            if n.a != i:
                raise ValueError("truncation expects the inputs first, in order")
            continue
        if n.op is Op.CONST:
            node_of[i] = new.const(n.c0) if build else i
            continue
        if n.op is Op.SHR:  # a left shift (output_weights rejects floors)
            node_of[i], e[i] = node_of[n.a], e[n.a] - n.sa
            lo[i], hi[i], var[i] = lo[n.a] * 2.0**-n.sa, hi[n.a] * 2.0**-n.sa, var[n.a] * 4.0**-n.sa
            continue
        if n.op is not Op.ADD:
            raise ValueError(f"truncation cannot rewrite a {n.op.value} node")
        ea, eb = e[n.a] + n.sa, e[n.b] + n.sb
        want = -(2**62) if tw[i] == -math.inf else lsb - int(tw[i])
        ei = max(want, min(ea, eb))
        e[i] = ei
        x, y = graph.nodes[n.a], graph.nodes[n.b]
        da, va = _floor_error(ea, ei, float(x.hi - x.lo) * 2.0**n.sa)
        db, vb = _floor_error(eb, ei, float(y.hi - y.lo) * 2.0**n.sb)
        alo, ahi = lo[n.a] * 2.0**n.sa + da, hi[n.a] * 2.0**n.sa
        blo, bhi = lo[n.b] * 2.0**n.sb + db, hi[n.b] * 2.0**n.sb
        if n.nb:
            blo, bhi = -bhi, -blo
        lo[i], hi[i] = alo + blo, ahi + bhi
        var[i] = var[n.a] * 4.0**n.sa + va + var[n.b] * 4.0**n.sb + vb
        if build:
            ops = []
            for src, ex in ((n.a, ea), (n.b, eb)):
                src_new = node_of[src]
                ops.append(new.shr(src_new, ei - ex) if ex < ei else src_new)
            node_of[i] = new.add(ops[0], ops[1], max(ea - ei, 0), max(eb - ei, 0), nb=n.nb)
    out_terms: list[Term] = []
    comp: list[int] = []
    err_lo: list[float] = []
    err_hi: list[float] = []
    out_var: list[float] = []
    for term in terms:
        if term.node is None:
            out_terms.append(term)
            comp.append(0)
            err_lo.append(0.0)
            err_hi.append(0.0)
            out_var.append(0.0)
            continue
        v, sign = term.node, -1.0 if term.neg else 1.0
        scale = 2.0**term.exp
        rlo, rhi = (lo[v], hi[v]) if sign > 0 else (-hi[v], -lo[v])
        step = 2.0 ** (e[v])
        c = math.floor(-(rlo + rhi) / 2 / step + 0.5)  # cancels the mean error
        comp.append(c)
        err_lo.append((rlo + c * step) * scale)
        err_hi.append((rhi + c * step) * scale)
        out_var.append(var[v] * scale * scale)
        out_terms.append(Term(node_of[v] if build else v, term.exp + e[v], term.neg))
    if not build:
        return Truncated(graph, list(terms), comp, err_lo, err_hi, out_var)
    return Truncated(new, out_terms, comp, err_lo, err_hi, out_var)


def choose_lsb(graph: AdderGraph, terms: list[Term], budget: float, top: int) -> int | None:
    """The largest ``lsb <= top`` whose modelled noise (:attr:`Truncated.noise`) is at most
    ``budget``, by bisection (the noise grows with ``lsb``); ``None`` when no ``lsb`` drops
    a bit within the budget."""
    tw = output_weights(graph, terms)
    finite = [t for t in tw if t != -math.inf]
    if not finite or budget <= 0:
        return None
    # below every node's own LSB weight nothing is dropped
    low = math.floor(min(finite))
    if top <= low:
        return None

    def fits(lsb: int) -> bool:
        return truncate(graph, terms, lsb, tw, build=False).noise <= budget

    if not fits(low + 1):
        return None
    a, b = low + 1, top  # fits(a) holds; find the largest fitting lsb in [a, b]
    if fits(b):
        return b
    while b - a > 1:
        mid = (a + b) // 2
        if fits(mid):
            a = mid
        else:
            b = mid
    return a


def plan_truncation(
    graph: AdderGraph,
    terms: list[Term],
    budget: TruncationBudget,
    input_ms: float,
    in_frac: int,
    out_frac: int,
) -> tuple[Truncated, dict[str, float]] | None:
    """Truncate a layer's freshly lowered ``graph`` within the noise ``budget`` the matrix
    pass noted (the layer's :class:`TruncationBudget`): the coarsest LSB whose modelled noise, for
    inputs of mean square ``input_ms`` (real units), fits.  Returns the rewrite and its facts
    (``lsb`` as a real exponent, the SQNR it keeps), or ``None`` when no bit can go."""
    m2 = input_ms * 4.0**in_frac  # input power in input-LSB units
    lsb = choose_lsb(graph, terms, m2 * budget.noise_budget, in_frac - out_frac)
    if lsb is None:
        return None
    cut = truncate(graph, terms, lsb)
    p_sig, p_code = budget.signal, budget.coding_noise
    sqnr = 10.0 * math.log10(p_sig * m2 / (p_code * m2 + cut.noise))
    return cut, {"lsb": lsb - in_frac, "sqnr_db": round(sqnr, 3)}


# ------------------------------------------------------------------------------- the budget


def check_truncate_option(pass_name: str, value: str) -> None:
    """``auto``, ``off`` or an SQNR in dB in (0, 150]."""
    if value in ("auto", "off"):
        return
    try:
        db = float(value)
    except ValueError:
        db = math.nan
    if not (math.isfinite(db) and 0 < db <= 150):
        raise PassOptionError(
            f"{pass_name}: truncate must be auto, off or an SQNR in dB in (0, 150], not {value!r}"
        )


def budget_layer(layer: MatrixLayer, option: str, target_db: float | None = None) -> None:
    """Store (or clear) ``layer``'s truncation budget for ``option`` (see the module
    docstring); ``target_db``: the SQNR the code was asked for, when it has one (bare LCC)."""
    layer.notes.pop(TruncationBudget)
    code, fin, fout = layer.code, layer.in_fmt, layer.out_fmt
    if option == "off" or code is None or fin is None or fout is None:
        return
    w = layer.weight
    w_hat = code.implemented()
    p_sig = float(np.sum(w * w))
    p_code = float(np.sum((w - w_hat) ** 2))
    coding_db = sqnr_db(w, w_hat) if p_sig > 0 else math.inf
    if option == "auto":
        allowed = p_code * (1.0 + RESERVE)
        if target_db is not None and math.isfinite(target_db):
            allowed = max(allowed, p_sig * 10.0 ** (-target_db / 10.0))
    else:
        allowed = p_sig * 10.0 ** (-float(option) / 10.0)
        if p_code > allowed:
            raise BadInputError(
                f"layer {layer.name}: truncate={option} dB cannot be reached: its coding alone"
                f" reaches {coding_db:.2f} dB"
            )
    if InputPower not in layer.notes or p_sig == 0 or allowed <= p_code:
        return
    # the LSB itself is chosen when the layer is lowered (plan_truncation), on the graph
    # lowering builds anyway: a network too big to lower never pays for it
    layer.notes.put(
        TruncationBudget(
            target_db=round(10.0 * math.log10(p_sig / allowed), 3),
            signal=float(f"{p_sig:.9g}"),
            coding_noise=float(f"{p_code:.9g}"),
            noise_budget=float(f"{allowed - p_code:.9g}"),
        )
    )


# ------------------------------------------------------------------ the hardware's SQNR

#: Rows of a layer's graph inputs its hardware SQNR is measured on (a seeded sample beyond).
SQNR_ROWS = 4096
#: Network inputs (at most) whose layer inputs the hardware SQNR is measured on.
SQNR_SAMPLES = 512


def hardware_sqnr_db(
    low: LoweredLayer,
    weight: npt.NDArray[np.float64],
    implemented: npt.NDArray[np.float64],
    x: IntArray,
) -> float:
    """The SQNR of a matrix layer as its hardware computes it, on graph inputs ``x`` (rows).

    The budget's measure (module docstring) with the truncation noise measured instead of
    modelled: ``10 log10(|W|² m2 / (|W - Ŵ|² m2 + N))``, where ``m2`` is the mean square of
    ``x`` and ``N`` the mean over ``x`` of ``|acc(x) - Ŵ x|²`` summed over the outputs, with
    ``acc`` the layer's accumulators (:class:`~nnlcc.ir.lowered.Accumulators`: the truncated
    graph's exact integer map, its compensation included).  Untruncated, ``N`` is 0 and this
    is the coding SQNR."""
    assert low.accumulators is not None, f"layer {low.name} is not a matrix layer"
    xf = np.asarray(x, dtype=np.float64)
    noise = low.accumulators.values(low.graph, x) - xf @ np.asarray(implemented).T
    n = float(np.mean(np.sum(noise * noise, axis=1))) if len(x) else 0.0
    m2 = float(np.mean(xf * xf)) if xf.size else 0.0
    p_sig = float(np.sum(np.square(weight))) * m2
    p_err = float(np.sum(np.square(np.asarray(weight) - implemented))) * m2 + n
    if p_err == 0.0:
        return math.inf
    return -math.inf if p_sig == 0.0 else 10.0 * math.log10(p_sig / p_err)


def hardware_sqnr(
    graph: MatrixGraph, net: LoweredNetwork, x_int: npt.NDArray[np.int64], seed: int = 0
) -> dict[str, float]:
    """:func:`hardware_sqnr_db` of every matrix layer of ``graph`` (lowered as ``net``), on
    the inputs each layer sees when the golden model runs network inputs ``x_int`` (the
    first :data:`SQNR_SAMPLES`; at most :data:`SQNR_ROWS` graph input rows per layer, a
    seeded sample beyond)."""
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}
    inputs = net.layer_inputs(x_int[:SQNR_SAMPLES])
    for layer, low, x in zip(graph.layers, net.layers, inputs, strict=True):
        if not isinstance(layer, MatrixLayer) or layer.code is None:
            continue
        rows = low.graph_inputs(x)
        if len(rows) > SQNR_ROWS:
            rows = rows[np.sort(rng.choice(len(rows), SQNR_ROWS, replace=False))]
        out[layer.name] = hardware_sqnr_db(low, layer.weight, layer.code.implemented(), rows)
    return out
