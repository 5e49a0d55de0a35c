"""Resources from the calibrated cost model, and the fit check that runs before any tool.

:func:`model_resources` turns :func:`nnlcc.ir.cost.estimate_network` (LUTs and flip-flops of
every layer's adder graph, no tool run: well under a second for the digits MLP) into the
figures a board build reports; :func:`fit_advice` says, when a design does not fit the board's
device, by how much, which layers are the biggest and what would shrink it, each lever with
its estimated effect.  ``--build`` stops with that one line before synthesis and
place-and-route; without ``--build`` the report carries it.

The lever effects are scaling rules measured once (the table above :data:`TOP_LAYERS`), not
re-runs of the coders: re-coding a network at several settings
takes as long as compiling it several times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnlcc.errors import NnlccError
from nnlcc.hdl.top import top_for
from nnlcc.ir.cost import NetworkCost, estimate_network
from nnlcc.ir.family import Family
from nnlcc.ir.lowered import LoweredNetwork

from .profiles import BoardProfile, list_boards

__all__ = [
    "MODEL_SOURCE",
    "PRUNE_FF_FACTOR",
    "PRUNE_LUT_FACTOR",
    "PRUNE_SPARSITY",
    "SQNR_FF_FACTOR",
    "SQNR_LUT_FACTOR",
    "SQNR_STEP_DB",
    "DesignTooLargeError",
    "Lever",
    "check_fit",
    "fit_advice",
    "fits",
    "levers",
    "model_resources",
    "network_cost",
]

SQNR_STEP_DB = 6.0
"""The SQNR lever: one weight bit less (about 6 dB of weight SQNR)."""
SQNR_LUT_FACTOR = 0.86
SQNR_FF_FACTOR = 0.85
PRUNE_SPARSITY = 0.25
PRUNE_LUT_FACTOR = 0.79
PRUNE_FF_FACTOR = 0.80
# How the lever factors were measured (once, by this module's author): the shipped digits MLP
# compiled with each pipeline below, model LUTs / synthesized FFs of the whole network.
#
#   pipeline                                  output SQNR  ecp5 LUTs  xc7 LUTs  ice40 LUTs  ecp5 FFs  xc7 FFs
#   quantize,lcc{sqnr_db=45}   (the default)      35.3       23,750    20,552     21,794     41,490    27,843
#   quantize,lcc{sqnr_db=39}                      32.4       20,378    17,570     18,632     34,663    23,561
#   quantize,lcc{sqnr_db=33}                      27.3       16,737    13,903     15,152     26,817    19,695
#   quantize,csd{weight_bits=8}                   36.4       17,412    12,381     15,157     19,344    18,464
#   quantize,csd{weight_bits=7}                   31.8       14,793    10,413     12,755     16,008    15,211
#   quantize,csd{weight_bits=6}                   27.9       12,331     8,673     10,555     13,643    12,646
#   quantize,prune{sparsity=0.25},lcc{...=45}     30.8       18,537    16,209     17,140     33,367    21,613
#
# Each 6 dB step (one weight bit) kept 79-86 % of the LUTs and 77-85 % of the FFs: the factors
# are the smallest cuts seen (0.86, 0.85).  Pruning a quarter of the columns kept 78-79 % of
# the LUTs and 78-80 % of the FFs (0.79, 0.80), at 4.5 dB less output SQNR without retraining.
TOP_LAYERS = 3
MODEL_SOURCE = "cost model"


class DesignTooLargeError(NnlccError):
    """The design does not fit the board's device; the message gives its utilization, the
    biggest layers and the levers (:func:`fit_advice`)."""


def network_cost(
    net: LoweredNetwork, family: Family, cost: NetworkCost | None = None
) -> NetworkCost:
    """``cost`` when it is ``net``'s estimate for ``family``, else a fresh estimate."""
    if (
        cost is not None
        and cost.family is family
        and set(cost.layers) == {layer.name for layer in net.layers}
    ):
        return cost
    return estimate_network(net, family)


def model_resources(
    net: LoweredNetwork, family: Family, cost: NetworkCost | None = None
) -> dict[str, Any]:
    """LUTs, flip-flops (as synthesized: constant and unread bits dropped), block RAMs and DSPs
    of ``net`` on ``family`` by the cost model.  A streaming CNN's line buffers are registers
    (as built today) and are added to the flip-flops."""
    cost = network_cost(net, family, cost)
    facts = top_for(net).layer_facts().values()
    lines = sum(f.get("line_buffer_bits") or 0 for f in facts)
    rams = [tuple(r) for f in facts for r in f.get("line_buffer_ram", [])]
    ram_bits = sum(words * width for words, width in rams)
    total = cost.total
    out: dict[str, Any] = {
        "luts": total.luts if total is not None else 0,
        "ffs": (total.ffs_synth if total is not None else 0) + lines - ram_bits,
        "bram": sum(family.bram.blocks(words, width) for words, width in rams),
        "dsp": 0,
    }
    if lines - ram_bits:
        out["line_buffer_ffs"] = lines - ram_bits
    if ram_bits:
        out["line_buffer_ram_bits"] = ram_bits
    return out


def fits(board: BoardProfile, counts: dict[str, Any]) -> bool:
    """Whether ``counts`` (luts, ffs, bram, dsp; missing ones are 0) fit ``board``'s device."""
    return all((counts.get(k) or 0) <= cap for k, cap in _capacities(board))


def _capacities(board: BoardProfile) -> tuple[tuple[str, int], ...]:
    return (("luts", board.luts), ("ffs", board.ffs), ("bram", board.bram), ("dsp", board.dsp))


@dataclass(frozen=True)
class Lever:
    lever: str
    effect: str


def _over(board: BoardProfile, counts: dict[str, Any]) -> str:
    parts = []
    for key, avail, unit in (
        ("luts", board.luts, board.lut_kind + "s"),
        ("ffs", board.ffs, "FFs"),
        ("bram", board.bram, "BRAMs"),
        ("dsp", board.dsp, "DSPs"),
    ):
        used = counts.get(key)
        if used is None or (used == 0 and key in ("bram", "dsp")):
            continue
        parts.append(f"{used:,} {unit} of {avail:,} ({100.0 * used / avail:.0f}%)")
    return ", ".join(parts)


def _scaled(board: BoardProfile, counts: dict[str, Any], lut: float, ff: float) -> str:
    luts, ffs = round((counts.get("luts") or 0) * lut), round((counts.get("ffs") or 0) * ff)
    verdict = "fits" if fits(board, {**counts, "luts": luts, "ffs": ffs}) else "still too big"
    return (
        f"-{100 * (1 - lut):.0f}% LUTs, -{100 * (1 - ff):.0f}% FFs"
        f" -> about {luts:,} LUTs, {ffs:,} FFs ({verdict})"
    )


def _steps_to_fit(board: BoardProfile, counts: dict[str, Any]) -> int | None:
    """SQNR steps (each :data:`SQNR_STEP_DB`) until the scaled figures fit (None: > 4)."""
    for k in range(1, 5):
        scaled = {
            **counts,
            "luts": round((counts.get("luts") or 0) * SQNR_LUT_FACTOR**k),
            "ffs": round((counts.get("ffs") or 0) * SQNR_FF_FACTOR**k),
        }
        if fits(board, scaled):
            return k
    return None


HEADROOM = 0.9
"""A bigger board is chosen to hold the model's figures within this share of its LUTs and FFs
(the model's error is up to ~12 % on xc7 and iCE40, and placement needs slack)."""


def _bigger_board(
    board: BoardProfile, net: LoweredNetwork, cost: NetworkCost | None
) -> Lever | None:
    """The smallest known board (by LUTs) the model says holds ``net`` within
    :data:`HEADROOM` of its device, else the smallest that holds it at all."""
    by_family: dict[Family, dict[str, Any]] = {}
    candidates: list[tuple[BoardProfile, dict[str, Any]]] = []
    for other in sorted(list_boards(), key=lambda b: (b.luts, b.name)):
        if other.name == board.name or other.luts <= board.luts:
            continue
        if other.family not in by_family:
            by_family[other.family] = model_resources(net, other.family, cost)
        candidates.append((other, by_family[other.family]))
    roomy = [
        (b, c)
        for b, c in candidates
        if c["luts"] <= HEADROOM * b.luts and c["ffs"] <= HEADROOM * b.ffs and fits(b, c)
    ]
    for other, counts in roomy or [(b, c) for b, c in candidates if fits(b, c)]:
        return Lever(
            f"a bigger board: {other.name}",
            f"{other.device} holds it at {100 * counts['luts'] / other.luts:.0f}% of its"
            f" LUTs, {100 * counts['ffs'] / other.ffs:.0f}% of its FFs (cost model)",
        )
    return None


def check_fit(board: BoardProfile, net: LoweredNetwork, cost: NetworkCost | None = None) -> None:
    """Raise :class:`DesignTooLargeError` with :func:`fit_advice`'s line when the cost model
    says ``net`` does not fit ``board`` (what ``--build`` checks before anything else)."""
    cost = network_cost(net, board.family, cost)
    advice = fit_advice(board, net, model_resources(net, board.family, cost), MODEL_SOURCE, cost)
    if advice is not None:
        raise DesignTooLargeError(advice["message"])


def fit_advice(
    board: BoardProfile,
    net: LoweredNetwork,
    counts: dict[str, Any],
    source: str,
    cost: NetworkCost | None = None,
) -> dict[str, Any] | None:
    """None when ``counts`` fit ``board``; else the one-line message (totals, the biggest
    layers, the levers with their estimated effects) and its parts, for the report."""
    if fits(board, counts):
        return None
    cost = network_cost(net, board.family, cost)
    biggest = sorted(cost.layers.items(), key=lambda kv: -kv[1].luts)[:TOP_LAYERS]
    layers = [{"name": n, "luts": c.luts, "ffs": c.ffs_synth} for n, c in biggest]
    levers_ = levers(board, net, counts, cost)
    top = ", ".join(f"{x['name']} {x['luts']:,} LUTs/{x['ffs']:,} FFs" for x in layers)
    message = (
        f"design does not fit {board.device} ({board.name}): {_over(board, counts)} [{source}];"
        f" biggest layers: {top}; levers: "
        + "; ".join(f"{lv.lever}: {lv.effect}" for lv in levers_)
    )
    return {
        "message": message,
        "source": source,
        "biggest_layers": layers,
        "levers": [{"lever": lv.lever, "effect": lv.effect} for lv in levers_],
    }


def levers(
    board: BoardProfile, net: LoweredNetwork, counts: dict[str, Any], cost: NetworkCost
) -> list[Lever]:
    """What would shrink ``net`` (needing ``counts`` on ``board``), each lever with its
    estimated effect: a lower SQNR, pruning (dense networks), a bigger board."""
    levers: list[Lever] = []
    steps = _steps_to_fit(board, counts)
    db = f"{SQNR_STEP_DB:g} dB"
    levers.append(
        Lever(
            f"lower SQNR by {db} (one weight bit; lcc{{sqnr_db=...}} or csd{{weight_bits=...}})",
            _scaled(board, counts, SQNR_LUT_FACTOR, SQNR_FF_FACTOR)
            + (f"; {steps} such steps would fit" if steps and steps > 1 else ""),
        )
    )
    if all(layer.kind == "dense" for layer in net.layers):
        levers.append(
            Lever(
                f"pruning: prune{{sparsity={PRUNE_SPARSITY:g}}} before the coder",
                _scaled(board, counts, PRUNE_LUT_FACTOR, PRUNE_FF_FACTOR),
            )
        )
    bigger = _bigger_board(board, net, cost)
    if bigger is not None:
        levers.append(bigger)
    else:
        levers.append(Lever("a bigger board", "no known board holds it (see `nnlcc boards`)"))
    return levers
