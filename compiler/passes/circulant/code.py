"""The ``circulant{block=b}`` pass: every matrix layer as b x b circulant blocks (SWM, Ding et
al., GLSVLSI 2018), implemented in the cheapest of several multiplier-free forms.

For each layer the pass

1. projects the weight onto block-circulant matrices (:meth:`Layout.project`: the mean along
   each block's circulant diagonals, ragged edges zero-padded; a dense layer is one group of
   columns, a conv one group per spatial tap, so it is blocked along its channel axes).  A
   layer that already is block-circulant is detected and kept exact;
2. rounds the block vectors to ``weight_bits`` with one power-of-two scale per layer (as the
   ``csd`` pass rounds weights); the SQNR of that rounding against the projection is the
   layer's *error budget* (or ``sqnr_db`` when given), which every form must meet;
3. builds each form (:mod:`nnlcc.passes.circulant.forms`): ``mcm`` and ``csd`` compute the
   rounded vectors exactly, ``fft`` rounds its spectrum constants to the budget (power-of-two
   ``b`` only), ``lcc`` factors the expanded projection to the budget; lowers each into a
   scratch adder graph, estimates its LUTs with :func:`nnlcc.ir.cost.estimate` on the board's
   family (or the one ``family`` names), and keeps the cheapest (``form=auto``) or the one
   asked for.

The code records the structure (block vectors, not a dense matrix), reports ``block``,
``stored_weights`` and ``form`` per layer, and lowers exactly to :meth:`CirculantCode.implemented`.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from nnlcc.errors import PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.code_text import CodeWriter
from nnlcc.ir.cost import estimate
from nnlcc.ir.family import Family, family_option
from nnlcc.ir.fixed_point import quantize_weights, sqnr_db
from nnlcc.ir.matrix import ConvLayer, FloatArray, MatrixCode, MatrixGraph, MatrixLayer, Term
from nnlcc.ir.text_syntax import matrix_lines
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.circulant.blocks import IntArray, Layout, is_power_of_two
from nnlcc.passes.circulant.forms import fft_vectors, lower_fft, lower_mcm, spectrum_for_budget
from nnlcc.passes.coding import code_layer
from nnlcc.passes.csd import CsdCode
from nnlcc.passes.lcc import LccCode, LccOptions

Form = Literal["auto", "mcm", "fft", "csd", "lcc"]
FORMS: tuple[str, ...] = ("mcm", "fft", "csd", "lcc")

#: Spectrum precision tried by the fft form, around the vectors' own fractional bits.
SPECTRUM_BITS_BELOW = 4
SPECTRUM_BITS_ABOVE = 10

__all__ = ["Circulant", "CirculantCode", "layout_of"]


def layout_text(lay: Layout) -> str:
    """The IR text's ``layout=``: ``dense`` (one group of all columns) or ``convTxC``."""
    if len(lay.groups) == 1 and lay.n == lay.cols:
        return "dense"
    return f"conv{len(lay.groups)}x{lay.n}"


def _db(v: float) -> float | None:
    """A dB value for JSON (``inf`` of an exact match is ``None``)."""
    return round(v, 3) if math.isfinite(v) else None


@dataclass
class CirculantCode:
    """A layer as block-circulant vectors in one hardware ``form``.

    ``vectors`` are the rounded block vectors (integers, scale ``2**-frac``, shape
    ``layout.shape``), which ``mcm`` and ``csd`` implement exactly; ``spectrum`` /
    ``spectrum_frac`` the rounded CRT spectrum the ``fft`` form implements; ``inner`` the LCC
    code of the ``lcc`` form.  ``facts`` are what the pass measured (projection SQNR, budget,
    every candidate form's LUTs and adders)."""

    layout: Layout
    vectors: IntArray
    frac: int
    form: str
    exact_projection: bool = False
    spectrum: IntArray | None = None
    spectrum_frac: int = 0
    inner: Any = None
    facts: dict[str, Any] = field(default_factory=dict)
    name: str = "circulant"

    def block_vectors(self) -> FloatArray:
        """The real block vectors the code implements (``fft``: of its rounded spectrum)."""
        if self.form == "fft":
            assert self.spectrum is not None
            return fft_vectors(self.spectrum, self.spectrum_frac)
        return np.ldexp(self.vectors.astype(np.float64), -self.frac)

    def implemented(self) -> FloatArray:
        if self.form == "lcc":
            return np.asarray(self.inner.implemented(), dtype=np.float64)
        return self.layout.expand(self.block_vectors())

    def expanded_int(self) -> IntArray:
        """The integer matrix of the rounded vectors (what ``mcm`` and ``csd`` compute)."""
        return np.asarray(self.layout.expand(self.vectors), dtype=np.int64)

    def lower(self, graph: AdderGraph, inputs: list[int]) -> list[Term]:
        if self.form == "mcm":
            return lower_mcm(graph, inputs, self.expanded_int(), self.frac)
        if self.form == "csd":
            return CsdCode(self.expanded_int(), self.frac, cse=True).lower(graph, inputs)
        if self.form == "fft":
            assert self.spectrum is not None
            return lower_fft(graph, inputs, self.layout, self.spectrum, self.spectrum_frac)
        if self.form == "lcc":
            terms: list[Term] = self.inner.lower(graph, inputs)
            return terms
        raise ValueError(f"unknown circulant form {self.form!r}")

    def text_lines(self, ind: str, out: CodeWriter) -> list[str]:
        """The ``code circulant`` block (:mod:`nnlcc.passes.circulant.text_form`)."""
        lay = self.layout
        lines = [
            f"{ind}code circulant shape={lay.rows}x{lay.cols} block={lay.b}"
            f" layout={layout_text(lay)} form={self.form} frac={self.frac}"
            f" spectrum_frac={self.spectrum_frac} exact={int(self.exact_projection)}",
            f"{ind}  facts {json.dumps(self.facts)}",
            f"{ind}  vectors",
            *matrix_lines(self.vectors.reshape(-1, lay.b), ind + "    "),
        ]
        if self.spectrum is not None:
            lines += [
                f"{ind}  spectrum",
                *matrix_lines(self.spectrum.reshape(-1, lay.b), ind + "    "),
            ]
        if self.inner is not None:
            lines += out.code(self.inner, ind + "  ")
        return lines

    def summary(self) -> dict[str, Any]:
        lay = self.layout
        out: dict[str, Any] = {
            "block": lay.b,
            "stored_weights": lay.stored,
            "form": self.form,
            "block_groups": len(lay.groups),
            "block_grid": f"{lay.p}x{lay.q}",
            "pad_rows": lay.pad_rows,
            "pad_cols": lay.pad_cols,
            "exact_circulant": self.exact_projection,
            "weight_frac_bits": self.frac,
        }
        if self.form == "fft":
            out["spectrum_frac_bits"] = self.spectrum_frac
        if self.form == "lcc":
            out["lcc_sqnr_db"] = _db(self.inner.reached_db)
            out["lcc_adders"] = int(self.inner.adders)
        out.update(self.facts)
        if lay.pad_rows or lay.pad_cols:
            out["note"] = (
                f"block {lay.b}: {lay.pad_rows} padded rows, {lay.pad_cols} padded columns"
                + (" per tap" if len(lay.groups) > 1 else "")
            )
        return out


def layout_of(layer: MatrixLayer, weight: FloatArray, b: int) -> Layout:
    """The block layout of ``weight`` (``layer``'s matrix, or the reduced matrix of a share
    plan, which is blocked as one dense group)."""
    rows, cols = weight.shape
    if isinstance(layer, ConvLayer) and cols == layer.shape[1]:
        return Layout.conv(rows, layer.window.taps, layer.image[0], b)
    return Layout.dense(rows, cols, b)


def _cost(
    code: CirculantCode, cols: int, in_range: tuple[int, int], family: Family
) -> tuple[int, int]:
    """LUTs (cost model of ``family``) and adders of ``code`` lowered alone."""
    g = AdderGraph.with_inputs([in_range] * cols)
    terms = code.lower(g, list(range(cols)))
    g.outputs = [t.node for t in terms if t.node is not None]
    return estimate(g, family).luts, g.adders


@dataclass(frozen=True)
class Circulant(Pass):
    """Block-circulant compression with ``block`` x ``block`` blocks (2..64): the projection,
    ``weight_bits``-bit vectors, and the cheapest hardware ``form`` (``auto``: by the LUT cost
    model of ``family``, empty: the board's; or ``mcm``, ``fft`` (power-of-two blocks), ``csd``, ``lcc``).
    ``sqnr_db`` is the error budget of the ``fft`` spectrum and the ``lcc`` factors (0: the
    SQNR of rounding the vectors to ``weight_bits``)."""

    name: ClassVar[str] = "circulant"
    kind: ClassVar[PassKind] = PassKind.MATRIX
    per_layer: ClassVar[bool] = True
    global_options: ClassVar[frozenset[str]] = frozenset({"family"})
    block: int = 4
    weight_bits: int = 8
    form: Form = "auto"
    sqnr_db: float = 0.0
    family: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.block, bool) or not isinstance(self.block, int):
            raise PassOptionError(
                f"circulant: block must be a positive integer, not {self.block!r}"
            )
        if not 2 <= self.block <= 64:
            raise PassOptionError(f"circulant: block must be in 2..64, not {self.block}")
        if self.form not in ("auto", *FORMS):
            raise PassOptionError(f"circulant: form must be auto, {', '.join(FORMS)}")
        if self.form == "fft" and not is_power_of_two(self.block):
            raise PassOptionError(
                f"circulant: form=fft needs a power-of-two block, not {self.block}"
                " (forms mcm, csd and lcc take any block; form=auto skips fft)"
            )
        if not 2 <= self.weight_bits <= 24:
            raise PassOptionError("circulant: weight_bits must be in 2..24")
        if not (math.isfinite(self.sqnr_db) and 0 <= self.sqnr_db <= 150):
            raise PassOptionError("circulant: sqnr_db must be in [0, 150] (0: the rounding's)")
        family_option(self.name, self.family)

    def candidates(self) -> tuple[str, ...]:
        if self.form != "auto":
            return (self.form,)
        return tuple(f for f in FORMS if f != "fft" or is_power_of_two(self.block))

    def build(self, layer: MatrixLayer, family: Family, weight: FloatArray) -> CirculantCode:
        """Project, round and choose the form for ``weight`` (``layer``'s matrix), pricing
        the forms on ``family``."""
        lay = layout_of(layer, weight, self.block)
        if lay.too_big():
            per = " per tap" if len(lay.groups) > 1 else ""
            raise PassOptionError(
                f"circulant: block {lay.b} is larger than both dimensions of layer"
                f" {layer.name} ({lay.rows}x{lay.n}{per}); use block <= {max(lay.rows, lay.n)}"
            )
        vecs, exact = lay.project(weight)
        w_int, frac = quantize_weights(vecs, self.weight_bits)
        proj = lay.expand(vecs)
        rounding_db = sqnr_db(proj, lay.expand(np.ldexp(w_int.astype(np.float64), -frac)))
        budget = self.sqnr_db if self.sqnr_db > 0 else min(rounding_db, 150.0)
        facts: dict[str, Any] = {
            "projection_sqnr_db": _db(sqnr_db(weight, proj)),
            "rounding_sqnr_db": _db(rounding_db),
            "budget_sqnr_db": _db(budget),
        }
        in_fmt = layer.in_fmt
        in_range = (in_fmt.lo, in_fmt.hi) if in_fmt is not None else (-128, 127)
        best: tuple[tuple[int, int], CirculantCode] | None = None
        costs: list[str] = []
        for form in self.candidates():
            code = CirculantCode(lay, w_int, frac, form, exact, facts=facts)
            if form == "fft":
                code.spectrum, code.spectrum_frac, _ = spectrum_for_budget(
                    lay, vecs, budget, frac - SPECTRUM_BITS_BELOW, frac + SPECTRUM_BITS_ABOVE
                )
            elif form == "lcc":
                code.inner = LccCode.build(proj, LccOptions(sqnr_db=min(budget, 150.0)))
            cost = _cost(code, weight.shape[1], in_range, family)
            costs.append(f"{form}={cost[0]}/{cost[1]}")
            if best is None or cost < best[0]:
                best = (cost, code)
        assert best is not None
        facts["form_luts_adders"] = " ".join(costs)
        facts["cost_family"] = family.name
        return best[1]

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        family = family_option(self.name, self.family) or ctx.family
        for layer in graph.matrix_layers():
            if ctx.progress:
                ctx.progress(layer.name)
            build: Callable[[FloatArray], MatrixCode] = functools.partial(self.build, layer, family)
            layer.code = code_layer(layer, build)
