"""The ``truncate`` option of the matrix passes (csd, lcc): how many low bits each layer's
partial sums may drop (:mod:`nnlcc.ir.truncate` does the dropping when the layer is lowered).

The SQNR a truncated layer keeps is the whole-matrix SQNR of LCC, extended by the truncation
noise: for white inputs of the layer's calibration power ``m2`` (mean square, recorded by the
quantize pass),

    ``SQNR = 10 log10(|W|_F^2 m2 / (|W - W_hat|_F^2 m2 + N))``

where ``W_hat`` is the matrix the code implements and ``N`` the modelled mean square error of
the truncations summed over the outputs (variance ``Δ²/12``-style per dropped bit range,
propagated through the shifts, plus the residual mean after compensation).  ``truncate``:

* ``off``: exact partial sums (the graphs of a compile without truncation);
* ``auto``: truncation may add :data:`RESERVE` of the coding noise (0.46 dB off the coding
  SQNR); ``lcc`` codes to its target plus that much, so its layers still meet ``sqnr_db``, and
  any margin the coding left above the target goes to the truncation too;
* a number: the SQNR (dB) each layer must keep; a layer whose coding alone falls below it is
  an error naming the layer and the SQNR it reaches.

The plan is ``layer.info["truncation"]``: the LSB the partial sums keep (``lsb``, a real
exponent) and the facts behind it.
"""

from __future__ import annotations

import math

import numpy as np

from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.matrix import MatrixGraph, MatrixLayer
from nnlcc.ir.truncate import INPUT_MS, TRUNCATION, choose_lsb, truncate

#: Share of the coding noise that ``truncate=auto`` lets truncation add.
RESERVE = 0.1

#: The SQNR, in dB, that :data:`RESERVE` costs the coding.
RESERVE_DB = 10.0 * math.log10(1.0 + RESERVE)


def check_option(pass_name: str, value: str) -> None:
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


def plan_layer(layer: MatrixLayer, option: str, target_db: float | None = None) -> None:
    """Store (or clear) ``layer``'s truncation plan for ``option`` (see the module docstring);
    ``target_db``: the SQNR the code was asked for, when it has one (bare LCC)."""
    layer.info.pop(TRUNCATION, None)
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
    ms = layer.info.get(INPUT_MS)
    if ms is None or p_sig == 0 or allowed <= p_code:
        return
    m2 = float(ms) * 4.0**fin.frac  # input power in input-LSB units
    graph = AdderGraph.with_inputs([(fin.lo, fin.hi)] * layer.shape[1])
    terms = code.lower(graph, list(range(layer.shape[1])))
    lsb = choose_lsb(graph, terms, m2 * (allowed - p_code), fin.frac - fout.frac)
    if lsb is None:
        return
    noise = truncate(graph, terms, lsb, build=False).noise
    layer.info[TRUNCATION] = {
        "lsb": lsb - fin.frac,
        "target_db": round(10.0 * math.log10(p_sig / allowed), 3),
        "sqnr_db": round(10.0 * math.log10(p_sig * m2 / (p_code * m2 + noise)), 3),
    }


def plan_layers(graph: MatrixGraph, option: str, target_db: float | None = None) -> None:
    for layer in graph.matrix_layers():
        plan_layer(layer, option, target_db)
