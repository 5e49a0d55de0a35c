"""The fit verdict with headroom: everything ``--build`` puts on the chip, the cost model's
measured error applied as a margin, and one word, "fits", "tight" or "does not fit".

What goes on the chip is the network (:func:`nnlcc.boards.fit.model_resources`: its adder
graphs, and a CNN's line buffers and join FIFOs, as registers or block RAM) plus the
self-test wrapper (:func:`wrapper_resources`): the ROM of test inputs and the ROM of golden
outputs (block RAM by the family's geometry: an upper bound, since synthesis drops ROM bits
that are constant over the test vectors, e.g. the digits' blank border pixels), the feeder,
the checker and the UART reporter (the family's measured :class:`~nnlcc.ir.family.WrapperCost`).

The margin is the model's largest leave-one-out error measured for the family
(:attr:`~nnlcc.ir.family.CostModel.luts_error`, ``ffs_error``): the verdict is "fits" when
the figures raised by that margin fit the device, "tight" when only the figures themselves
fit, and "does not fit" otherwise; with the biggest layers and the levers that shrink them
(:func:`nnlcc.boards.fit.levers`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nnlcc.hdl.top import top_for
from nnlcc.ir.cost import NetworkCost
from nnlcc.ir.family import ErrorFigure, Family, NotMeasured, WrapperCost
from nnlcc.ir.lowered import LoweredNetwork

from .fit import TOP_LAYERS, levers, network_cost
from .profiles import BoardProfile
from .selftest import MAX_VECTORS
from .stream_selftest import MAX_IMAGES

__all__ = ["FITS", "NO_FIT", "TIGHT", "fit_verdict", "margin_pct", "wrapper_resources"]

FITS, TIGHT, NO_FIT = "fits", "tight", "does not fit"


@dataclass(frozen=True)
class RomShape:
    """The self-test's two ROMs: words and bits per word of inputs and golden outputs."""

    x_words: int
    x_width: int
    y_words: int
    y_width: int


def rom_shape(net: LoweredNetwork) -> RomShape:
    """The ROMs the self-test of ``net``'s top holds (:mod:`nnlcc.boards.selftest`,
    :mod:`nnlcc.boards.stream_selftest`), from the network's shapes alone."""
    out = net.layers[-1].out_shape if net.layers else (net.n_outputs,)
    y_bits = net.output_fmt.bits
    if top_for(net).kind == "stream":
        c, h, w = net.input_shape
        pixels = math.prod(out[1:]) if len(out) == 3 else 1
        per = out[0] if len(out) == 3 else net.n_outputs
        return RomShape(
            MAX_IMAGES * h * w, c * net.input_fmt.bits, MAX_IMAGES * pixels, per * y_bits
        )
    return RomShape(
        MAX_VECTORS, net.n_inputs * net.input_fmt.bits, MAX_VECTORS, net.n_outputs * y_bits
    )


def wrapper_resources(net: LoweredNetwork, family: Family) -> dict[str, Any]:
    """LUTs, FFs and block RAMs of the self-test wrapper around ``net`` on ``family`` (the
    ROMs in block RAM; the logic by the family's :class:`~nnlcc.ir.family.WrapperCost`;
    ``luts``/``ffs`` None, with ``not_measured``, where the family has none)."""
    roms = rom_shape(net)
    bram = family.bram.blocks(roms.x_words, roms.x_width) + family.bram.blocks(
        roms.y_words, roms.y_width
    )
    w = family.cost.wrapper
    if isinstance(w, NotMeasured):
        return {"luts": None, "ffs": None, "bram": bram, "not_measured": str(w)}
    assert isinstance(w, WrapperCost)
    return {"luts": w.luts, "ffs": w.ffs, "bram": bram}


def margin_pct(error: ErrorFigure | NotMeasured) -> float | None:
    """The margin a measured error gives: its largest out-of-sample |error| in percent."""
    return error.max_pct if isinstance(error, ErrorFigure) else None


def _word(board: BoardProfile, need: dict[str, float], high: dict[str, float]) -> str:
    caps = {"luts": board.luts, "ffs": board.ffs, "bram": board.bram}
    if any(need[k] > caps[k] for k in caps):
        return NO_FIT
    if any(high[k] > caps[k] for k in caps):
        return TIGHT
    return FITS


def fit_verdict(
    board: BoardProfile,
    net: LoweredNetwork,
    network: dict[str, Any],
    cost: NetworkCost | None = None,
    wrapper: bool = True,
) -> dict[str, Any]:
    """The verdict on ``board`` for ``net`` whose network alone needs ``network`` (luts,
    ffs, bram by the cost model), with the self-test wrapper when ``wrapper``: the counts,
    the margins, the word, the biggest layers and (unless it fits) the levers; ``message``
    says it in one line."""
    fam = board.family
    wrap = wrapper_resources(net, fam) if wrapper else {"luts": 0, "ffs": 0, "bram": 0}
    need = {k: float((network.get(k) or 0) + (wrap.get(k) or 0)) for k in ("luts", "ffs", "bram")}
    m_l, m_f = margin_pct(fam.cost.luts_error), margin_pct(fam.cost.ffs_error)
    high = {
        "luts": need["luts"] * (1 + (m_l or 0) / 100),
        "ffs": need["ffs"] * (1 + (m_f or 0) / 100),
        "bram": need["bram"],  # counted by geometry, not estimated
    }
    word = _word(board, need, high)
    cost = network_cost(net, fam, cost)
    biggest = sorted(cost.layers.items(), key=lambda kv: -kv[1].luts)[:TOP_LAYERS]
    layers = [{"name": n, "luts": c.luts, "ffs": c.ffs_synth} for n, c in biggest]
    counts = {**network, **{k: round(v) for k, v in need.items()}}
    shrink = [] if word == FITS else levers(board, net, counts, cost)

    def share(k: str, v: float, cap: int) -> str:
        return f"{100 * v / cap:.0f}%" if cap else "n/a"

    parts = []
    for k, unit, cap, m in (("luts", board.lut_kind + "s", board.luts, m_l),
                            ("ffs", "FFs", board.ffs, m_f)):  # fmt: skip
        margin = (
            f" (+{m:g}% measured error: {share(k, high[k], cap)})"
            if m is not None
            else (" (error not measured)")
        )
        parts.append(f"{round(need[k]):,} {unit} of {cap:,} = {share(k, need[k], cap)}{margin}")
    parts.append(f"{round(need['bram'])} block RAMs of {board.bram}")
    what = "network + self-test wrapper (ROMs, checker, UART)" if wrapper else "network"
    if wrapper and wrap.get("not_measured"):
        what += f"; wrapper logic {wrap['not_measured']}, ROMs counted"
    top = ", ".join(f"{x['name']} {x['luts']:,} LUTs/{x['ffs']:,} FFs" for x in layers)
    message = f"{word} on {board.device} ({board.name}): " + "; ".join(parts) + f" [{what}]"
    message += f"; biggest layers: {top}"
    if shrink:
        message += "; to shrink: " + "; ".join(f"{lv.lever}: {lv.effect}" for lv in shrink)
    return {
        "verdict": word,
        "message": message,
        "luts": round(need["luts"]),
        "ffs": round(need["ffs"]),
        "bram": round(need["bram"]),
        "wrapper_luts": wrap.get("luts"),
        "wrapper_ffs": wrap.get("ffs"),
        "wrapper_bram": wrap.get("bram"),
        "luts_margin_pct": m_l,
        "ffs_margin_pct": m_f,
        "biggest_layers": layers,
        "levers": [{"lever": lv.lever, "effect": lv.effect} for lv in shrink],
    }
