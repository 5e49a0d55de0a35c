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

The pass stores the budget as ``layer.info["truncation"]`` (the target and the signal, coding
noise and truncation noise allowed, in weight-power units); lowering picks the coarsest LSB
the partial sums may keep within it (:func:`nnlcc.ir.truncate.plan_truncation`).
"""

from __future__ import annotations

import math

import numpy as np

from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.matrix import MatrixGraph, MatrixLayer
from nnlcc.ir.truncate import INPUT_MS, TRUNCATION

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
    if layer.info.get(INPUT_MS) is None or p_sig == 0 or allowed <= p_code:
        return
    # the LSB itself is chosen when the layer is lowered (nnlcc.ir.truncate.plan_truncation),
    # on the graph lowering builds anyway: a network too big to lower never pays for it
    layer.info[TRUNCATION] = {
        "target_db": round(10.0 * math.log10(p_sig / allowed), 3),
        "signal": float(f"{p_sig:.9g}"),
        "coding_noise": float(f"{p_code:.9g}"),
        "noise_budget": float(f"{allowed - p_code:.9g}"),
    }


def plan_layers(graph: MatrixGraph, option: str, target_db: float | None = None) -> None:
    for layer in graph.matrix_layers():
        plan_layer(layer, option, target_db)
