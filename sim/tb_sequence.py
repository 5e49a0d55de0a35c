"""cocotb testbench for the sequence top (:class:`nnlcc.hdl.top.SequenceStrategy`): a recurrent
layer, one time step in flight, then vector layers.

It drives ``steps`` (every sequence's inputs, one time step per row) with a ready/valid
handshake: a word is taken at a clock edge where ``valid_in`` and ``ready`` are both high, and
the next word is driven after it, so steps and sequences follow each other as fast as the top
accepts them.  Every clock it samples every checked port whose valid is high: the hidden
state (and an LSTM's cell state) after *every* time step, and each vector layer's output per
sequence.  They are compared in order with the golden rows ``layer<i>`` (the lowered network
run on numpy); the first difference is reported as sequence, step, layer and element.  The
summary adds the steps driven, the clock of the last output, the clocks between two steps
(measured) and the clocks from a sequence's first step accepted to its output (the last
sequence's: its latency).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from .tb_core import SIM_DIR_ENV, finish, pack, unpack

__all__ = ["check_sequence", "compare"]


def _value(handle: Any) -> int | None:
    v = handle.value
    if hasattr(v, "is_resolvable") and not v.is_resolvable:
        return None
    try:
        return int(v.to_unsigned()) if hasattr(v, "to_unsigned") else int(v)
    except ValueError:
        return None


def compare(
    meta: dict[str, Any], expected: list[list[int]], got: list[list[int | None]]
) -> tuple[int, str | None]:
    """Sequences with any difference, and the first difference (sequence, step, layer)."""
    steps = int(meta["steps"])
    bad: set[int] = set()
    first: tuple[int, int, str] | None = None
    for li, layer in enumerate(meta["layers"]):
        per = steps if li < meta["state_ports"] else 1  # state ports show every step
        exp, seen = expected[li], got[li]
        for k, want in enumerate(exp):
            seq, step = divmod(k, per)
            if k >= len(seen):
                msg = f"only {len(seen)} of {len(exp)} outputs came out"
            elif seen[k] == want:
                continue
            elif seen[k] is None:
                msg = "X/Z bits"
            else:
                w, cnt, sg = layer["width"], layer["count"], layer["signed"]
                ev, gv = unpack(want, w, cnt, sg), unpack(seen[k] or 0, w, cnt, sg)
                j = next(j for j in range(cnt) if ev[j] != gv[j])
                msg = f"element {j}: expected {ev[j]}, got {gv[j]}"
            bad.add(seq)
            where = (seq, li, f"sequence {seq}, step {step}, layer {layer['name']}: {msg}")
            first = where if first is None or where[:2] < first[:2] else first
            if k >= len(seen):
                break
        if len(seen) > len(exp):
            bad.add(len(exp) // per)
            msg = f"layer {layer['name']}: {len(seen)} outputs for {len(exp)} expected"
            first = first or (len(exp) // per, li, msg)
    return len(bad), first[2] if first else None


@cocotb.test()
async def check_sequence(dut: Any) -> None:
    """Every sequence through the top, every step and every layer compared bit-exactly."""
    sim_dir = Path(os.environ[SIM_DIR_ENV])
    meta = json.loads((sim_dir / "meta.json").read_text())
    data = np.load(sim_dir / "vectors.npz", allow_pickle=False)
    layers = meta["layers"]
    words = [pack(row, meta["x"]["width"]) for row in data[meta["inputs"]]]
    expected = [
        [pack(row, layer["width"]) for row in data[f"layer{i}"]] for i, layer in enumerate(layers)
    ]
    ports = [getattr(dut, layer["port"]) for layer in layers]
    valids = [getattr(dut, layer["valid"]) for layer in layers]
    steps = int(meta["steps"])

    dut.x.value = 0
    dut.valid_in.value = 0
    dut.rst.value = 1
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    got: list[list[int | None]] = [[] for _ in layers]
    step_clock: list[int] = []  # clock of each step's state
    accepted: list[int] = []  # clock each word was taken
    out_clock: list[int] = []  # clock of each network output
    limit = (len(words) + 2) * (int(meta["step_clocks"]) + 4) + int(meta["latency"]) + 100
    sent = 0
    cycle = 0
    while cycle < limit:
        if sent < len(words):
            dut.x.value = words[sent]
            dut.valid_in.value = 1
        else:
            dut.valid_in.value = 0
        await ReadOnly()
        if sent < len(words) and str(dut.ready.value) == "1":
            accepted.append(cycle)
            sent += 1
        for li in range(len(layers)):
            if str(valids[li].value) == "1":
                got[li].append(_value(ports[li]))
        if str(valids[0].value) == "1":
            step_clock.append(cycle)
        if str(dut.valid_out.value) == "1":
            out_clock.append(cycle)
        cycle += 1
        await FallingEdge(dut.clk)
        if sent == len(words) and all(len(g) >= len(e) for g, e in zip(got, expected, strict=True)):
            break
    n = len(words) // steps
    mismatches, first = compare(meta, expected, got)
    gaps = [b - a for a, b in itertools.pairwise(step_clock)]
    gaps = [g for i, g in enumerate(gaps) if (i + 1) % steps]  # within a sequence
    latency = out_clock[-1] - accepted[-steps] if out_clock and len(accepted) >= steps else None
    finish(
        {
            "vectors": n,
            "sequences": n,
            "steps": len(words),
            "layers": len(layers),
            "clocks_to_last_output": (out_clock[-1] + 1) if out_clock else None,
            "step_clocks_measured": max(gaps) if gaps else None,
            "sequence_latency": latency,
            "mismatches": mismatches if n else 0,
            "first_mismatch": first,
        }
    )
