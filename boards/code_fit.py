"""The fit verdict of a network too big to lower (``nnlcc compile --report-only`` on ResNet-34):
LUTs, flip-flops and block RAM, and how many of each family's largest part it would take.

Lowering ResNet-34 would build some 30 M adder-graph nodes (about 10 s per 200 k nodes here),
so the verdict lowers only the smallest matrix layers, up to :data:`SAMPLE_WEIGHTS` weights,
and prices them with the cost model (:mod:`nnlcc.ir.cost`) of each family; every other matrix
layer is scaled from their LUTs and flip-flops per adder by its own adder count (which its
code states). Pool, add and flatten layers are lowered and priced whole. Block RAM counts
every line buffer the streaming top would put in memory (the runs of
:meth:`nnlcc.hdl.line_buffer.StreamWindow.ram_runs`, by the family's block geometry); the
shorter ones are flip-flops. The figures say how they were made: sampled layers, scaled layers
(their share of the adders), and what is not counted (the residual joins' FIFOs, no I/O).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nnlcc.hdl.line_buffer import LINE_RAM_BITS, StreamWindow
from nnlcc.ir.cost import Cost, estimate
from nnlcc.ir.family import ECP5, XC7, Family
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.lower import lower_any
from nnlcc.ir.matrix import ConvLayer, MatrixGraph, MatrixLayer, PoolLayer

from .fit import fits
from .profiles import BoardProfile

__all__ = ["SAMPLE_WEIGHTS", "VERDICT_FAMILIES", "code_fit"]

SAMPLE_WEIGHTS = 100_000
"""Weights of the smallest matrix layers lowered and priced whole (ResNet-34: the stem, the
1x1 shortcuts and two stage-1 convolutions, about 15 s); the others are scaled from them."""

VERDICT_FAMILIES = (ECP5, XC7)
"""The families whose largest part the verdict counts (besides the board's)."""


def _line_buffers(graph: MatrixGraph, family: Family) -> tuple[int, int]:
    """Block RAMs and flip-flop bits of every window layer's line buffer on ``family``."""
    blocks = ff_bits = 0
    for layer in graph.layers:
        if not isinstance(layer, ConvLayer | PoolLayer) or layer.in_fmt is None:
            continue
        c, h, w = layer.image
        bits = c * layer.in_fmt.bits
        geom = StreamWindow(layer.window, h, w)
        runs = geom.ram_runs(bits, LINE_RAM_BITS)
        blocks += len(runs) * family.bram.blocks(geom.gap, bits)
        ff_bits += layer.line_buffer_bits(layer.in_fmt.bits) - len(runs) * geom.gap * bits
    return blocks, ff_bits


def code_fit(graph: MatrixGraph, adders: Mapping[str, int], board: BoardProfile) -> dict[str, Any]:
    """The verdict: per family (the board's and :data:`VERDICT_FAMILIES`) LUTs, flip-flops
    and block RAMs, the largest part and how many of it; whether the board holds it; one line.
    ``adders``: every matrix layer's adders, as its code states them."""
    families = [board.family, *(f for f in VERDICT_FAMILIES if f is not board.family)]
    matrix = sorted(graph.matrix_layers(), key=lambda la: la.weight.size)
    sample: list[MatrixLayer] = []
    for mat in matrix:
        if sample and sum(la.weight.size for la in sample) + mat.weight.size > SAMPLE_WEIGHTS:
            break
        sample.append(mat)
    fmts: dict[str, FixedFormat] = {}
    if graph.input_fmt is not None:
        fmts[graph.input_name] = graph.input_fmt
    whole: dict[Family, list[Cost]] = {f: [] for f in families}  # lowered, priced whole
    sampled: dict[Family, list[Cost]] = {f: [] for f in families}  # ... of those, matrix layers
    sampled_adders = 0
    for i, layer in enumerate(graph.layers):
        assert layer.out_fmt is not None, "run quantize first"
        fmts[layer.name] = layer.out_fmt
        is_matrix = isinstance(layer, MatrixLayer)
        if is_matrix and layer not in sample:
            continue
        # lowered as the compile would (the board's fanout bound), priced on every family
        low = lower_any(layer, [fmts[t] for t in graph.inputs_of(i)], board.family)
        sampled_adders += low.graph.adders if is_matrix else 0
        for f in families:
            cost = estimate(low.graph, f)
            whole[f].append(cost)
            if is_matrix:
                sampled[f].append(cost)
    scaled = sum(adders[la.name] for la in matrix if la not in sample)
    per_family: dict[str, Any] = {}
    for f in families:
        luts = sum(c.luts for c in whole[f])
        ffs = sum(c.ffs_synth for c in whole[f])
        if sampled_adders:  # the other matrix layers at the sampled ones' cost per adder
            luts += round(sum(c.luts for c in sampled[f]) / sampled_adders * scaled)
            ffs += round(sum(c.ffs_synth for c in sampled[f]) / sampled_adders * scaled)
        bram, line_ffs = _line_buffers(graph, f)
        ffs += line_ffs
        part = f.largest_part
        need = max(
            math.ceil(luts / part.luts), math.ceil(ffs / part.ffs), math.ceil(bram / part.bram)
        )
        per_family[f.name] = {
            "luts": luts,
            "ffs": ffs,
            "bram": bram,
            "largest_part": part.name,
            "parts_needed": need,
            "part_source": part.source,
        }
    mine = per_family[board.family.name]
    counts = {"luts": mine["luts"], "ffs": mine["ffs"], "bram": mine["bram"], "dsp": 0}
    total = sum(adders.values())
    share = 100.0 * scaled / total if total else 0.0
    parts = "; ".join(
        f"{v['parts_needed']:,} x {v['largest_part']} ({name})" for name, v in per_family.items()
    )
    verdict = "fits" if fits(board, counts) else "does not fit"
    message = (
        f"{graph.name} {verdict} {board.device} ({board.name}): about {mine['luts']:,} LUTs, "
        f"{mine['ffs']:,} FFs, {mine['bram']:,} {board.family.bram.primitive}; the largest "
        f"parts it would take: {parts} [cost model on {len(sample)} lowered layers, "
        f"{share:.1f} % of the adders scaled by adders; join FIFOs and I/O not counted]"
    )
    return {
        "estimate": True,
        "tool": f"nnlcc cost model ({board.family}, from the codes)",
        "design": "network alone, estimated from the matrix codes (too big to lower)",
        "board": board.name,
        "device": board.device,
        "family": board.family.name,
        **counts,
        "device_luts": board.luts,
        "device_ffs": board.ffs,
        "fits": verdict == "fits",
        "families": per_family,
        "sampled_layers": [la.name for la in sample],
        "scaled_adders_pct": round(share, 1),
        "message": message,
    }
