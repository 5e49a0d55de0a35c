"""cocotb testbench for a network top written by :func:`nnlcc.hdl.emit_verilog`.

Reads what :func:`nnlcc.sim.verify.verify_network` wrote into ``$NNLCC_SIM_DIR``:
``meta.json`` (port widths, signedness, latencies) and ``vectors.npz`` (``x`` and the golden
outputs ``layer<i>`` of every layer). Drives one vector per clock with ``valid_in`` always
high, samples every port each clock, and compares the packed buses bit for bit: the golden
integers are packed exactly as the hardware packs them (element ``i`` at bits
``[i*w, (i+1)*w)``, two's complement), so a sign or width error cannot hide behind an unpacking
convention. Valid timing is checked too: output ``k`` of layer ``i`` must appear exactly
``latency_i`` clocks after input ``k``.

Writes ``$NNLCC_SIM_SUMMARY`` (vectors, mismatches, first mismatch as one line) and fails the
cocotb test on any difference.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

SIM_DIR_ENV = "NNLCC_SIM_DIR"


def pack(row: Any, width: int) -> int:
    """Pack integers into one bus value, element ``i`` at bits ``[i*width, (i+1)*width)``."""
    mask = (1 << width) - 1
    v = 0
    for i, e in enumerate(row):
        v |= (int(e) & mask) << (i * width)
    return v


def unpack(value: int, width: int, count: int, signed: bool) -> list[int]:
    """Inverse of :func:`pack`, reading each element as two's complement when ``signed``."""
    mask = (1 << width) - 1
    out = []
    for i in range(count):
        e = (value >> (i * width)) & mask
        if signed and e >> (width - 1):
            e -= 1 << width
        out.append(e)
    return out


def _read(handle: Any) -> int | None:
    """The bus value as an unsigned integer, or ``None`` while it holds X or Z bits."""
    v = handle.value
    if hasattr(v, "is_resolvable") and not v.is_resolvable:
        return None
    try:
        return v.to_unsigned() if hasattr(v, "to_unsigned") else int(v)
    except ValueError:
        return None


def _high(handle: Any) -> bool:
    return str(handle.value) == "1"


def _first_mismatch(
    meta: dict[str, Any],
    expected: list[list[int]],
    got: list[list[tuple[int, int | None]]],
    n: int,
) -> tuple[int, str | None]:
    """Count vectors that differ in any layer and describe the first: vector, then layer."""
    layers = meta["layers"]
    bad_vectors: set[int] = set()
    first: tuple[int, int, str] | None = None  # (vector, layer, message)
    for li, layer in enumerate(layers):
        lat = layer["latency"]
        seen = got[li]
        msgs: list[tuple[int, str]] = []
        if len(seen) != n:
            msgs.append(
                (
                    min(len(seen), n),
                    f"{len(seen)} valid outputs for {n} inputs (valid chain broken)",
                )
            )
        for k, (cycle, value) in enumerate(seen[:n]):
            if cycle != k + lat:
                msgs.append((k, f"valid at clock {cycle}, expected clock {k + lat}"))
                continue
            if value != expected[li][k]:
                w, cnt, sg = layer["width"], layer["count"], layer["signed"]
                exp = unpack(expected[li][k], w, cnt, sg)
                if value is None:
                    msgs.append((k, f"expected {exp}, got X/Z bits"))
                    continue
                gv = unpack(value, w, cnt, sg)
                j = next(j for j in range(cnt) if exp[j] != gv[j])
                msgs.append((k, f"output {j}: expected {exp[j]}, got {gv[j]}"))
        for k, msg in msgs:
            bad_vectors.add(k)
            if first is None or (k, li) < first[:2]:
                first = (k, li, msg)
    if first is None:
        return 0, None
    k, li, msg = first
    return len(bad_vectors), f"vector {k}, layer {li} ({layers[li]['name']}): {msg}"


@cocotb.test()
async def check_network(dut: Any) -> None:
    """All golden vectors through the top, back-to-back, compared bit-exact at every layer."""
    sim_dir = Path(os.environ[SIM_DIR_ENV])
    meta = json.loads((sim_dir / "meta.json").read_text())
    data = np.load(sim_dir / "vectors.npz", allow_pickle=False)
    x = data["x"]
    n = int(x.shape[0])
    layers = meta["layers"]
    xw = meta["x"]["width"]
    x_packed = [pack(row, xw) for row in x]
    expected = [
        [pack(row, layer["width"]) for row in data[f"layer{i}"]] for i, layer in enumerate(layers)
    ]
    ports = [getattr(dut, layer["port"]) for layer in layers]
    valids = [getattr(dut, layer["valid"]) for layer in layers]
    latency = int(meta["latency"])

    dut.x.value = 0
    dut.valid_in.value = 0
    dut.rst.value = 1
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    # Clock c: on the falling edge drive vector c, then sample everything once signals settle.
    # A layer with cumulative latency L shows vector k at clock k + L (L == 0 is combinational).
    got: list[list[tuple[int, int | None]]] = [[] for _ in layers]
    top_disagrees: str | None = None
    for cycle in range(n + latency + 2):
        if cycle < n:
            dut.x.value = x_packed[cycle]
            dut.valid_in.value = 1
        else:
            dut.valid_in.value = 0
        await ReadOnly()
        for li in range(len(layers)):
            if _high(valids[li]):
                got[li].append((cycle, _read(ports[li])))
        # the top's own y/valid_out must be the last layer's debug port, clock for clock
        if top_disagrees is None and (
            _high(dut.valid_out) != _high(valids[-1])
            or (_high(dut.valid_out) and _read(dut.y) != _read(ports[-1]))
        ):
            top_disagrees = f"clock {cycle}: y/valid_out differ from {layers[-1]['port']}"
        await FallingEdge(dut.clk)

    mismatches, first = _first_mismatch(meta, expected, got, n)
    if first is None and top_disagrees is not None:
        first = top_disagrees
    summary = {
        "simulator": cocotb.SIM_NAME,
        "vectors": n,
        "layers": len(layers),
        "latency": latency,
        "mismatches": mismatches,
        "first_mismatch": first,
    }
    summary_path = os.environ.get("NNLCC_SIM_SUMMARY")
    if summary_path:
        Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n")
    assert first is None, first
