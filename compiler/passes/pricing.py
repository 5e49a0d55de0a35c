"""Pricing a matrix code on its own, for the choices a coder makes while it codes.

A coder choosing between designs of one matrix (an orientation, a slice width, a rank) needs
their cost in the currency the user pays: the estimated LUTs of the family targeted
(:func:`nnlcc.ir.cost.estimate`).  :func:`price_code` lowers a code on inputs of a given
integer range and truncates its partial sums the way the layer will (the code's own error
plus :data:`~nnlcc.ir.truncate.RESERVE` of it, for inputs uniform over the range),
without the requantization every design of the layer shares.  It ranks designs; the layer's
own price comes from lowering it (``auto`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.cost import Cost, estimate
from nnlcc.ir.family import ECP5, Family
from nnlcc.ir.matrix import FloatArray, MatrixCode, MatrixLayer
from nnlcc.ir.truncate import RESERVE, InputPower, choose_lsb, truncate

Span = tuple[int, int]


@dataclass(frozen=True)
class Pricing:
    """What :func:`price_code` needs besides the code: the integer range of the inputs, the
    family priced, the truncation reserve (0: exact partial sums) and the inputs' mean
    square in integer units (what the truncation budget is for; ``None``: uniform over the
    span)."""

    span: Span = (-128, 127)
    family: Family = ECP5
    reserve: float = RESERVE
    power: float | None = None

    @property
    def input_ms(self) -> float:
        """Mean square of the integer inputs."""
        if self.power is not None:
            return self.power
        lo, hi = self.span
        return (lo * lo + lo * hi + hi * hi) / 3.0

    @classmethod
    def for_layer(cls, layer: MatrixLayer, family: Family) -> Pricing:
        """The layer's input range and calibration power (``quantize`` notes it)."""
        fmt = layer.in_fmt
        if fmt is None:
            return cls(family=family)
        ms = layer.notes.get(InputPower)
        power = ms.mean_square * 4.0**fmt.frac if ms is not None else None
        return cls(span=(fmt.lo, fmt.hi), family=family, power=power)


def price_code(
    code: MatrixCode,
    pricing: Pricing,
    weight: FloatArray | None = None,
    target_db: float | None = None,
) -> Cost:
    """Estimated cost of ``code``'s adder graph on ``pricing.family`` with partial sums
    truncated within ``reserve`` times its coding noise against ``weight`` (or, when the code
    overshoots ``target_db``, within what it leaves of that error); without ``weight``,
    exact partial sums."""
    w_hat = code.implemented()
    cols = w_hat.shape[1]
    graph = AdderGraph.with_inputs([pricing.span] * cols)
    terms = code.lower(graph, list(range(cols)))
    if weight is not None and pricing.reserve > 0:
        w = np.asarray(weight)
        p_code = float(np.sum((w - w_hat) ** 2))
        noise = p_code * pricing.reserve
        if target_db is not None:
            noise = max(noise, float(np.sum(w * w)) * 10.0 ** (-target_db / 10.0) - p_code)
        if noise > 0:
            lsb = choose_lsb(graph, terms, noise * pricing.input_ms, 64)
            if lsb is not None:
                cut = truncate(graph, terms, lsb)
                graph, terms = cut.graph, cut.terms
    graph.outputs = [t.node for t in terms if t.node is not None]
    return estimate(graph, pricing.family)
