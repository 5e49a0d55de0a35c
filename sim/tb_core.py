"""The cocotb driver core both testbenches share (:mod:`nnlcc.sim.tb_network` for the vector
top, :mod:`nnlcc.sim.tb_cnn` for the pixel-streaming top).

It reads what :func:`nnlcc.sim.verify.verify_network` wrote into ``$NNLCC_SIM_DIR``:
``meta.json`` (ports: widths, signedness, per-layer debug ports; ``inputs`` names the array
driven) and ``vectors.npz`` (the input words, one per clock, and ``layer<i>``: every layer's
golden outputs, one row per valid output). :func:`drive` resets the top, drives the input
words back to back with ``valid_in`` high, and samples every layer's debug port on every clock
its valid is high; the top's own ``y``/``valid_out`` must equal the last layer's port clock for
clock. Golden rows are packed exactly as the hardware packs its buses (element ``i`` at bits
``[i*w, (i+1)*w)``, two's complement), so a sign or width error cannot hide behind an
unpacking convention. The testbench compares the capture its own way (fixed latency, stream
order) and hands the verdict to :func:`finish`, which writes ``$NNLCC_SIM_SUMMARY`` and fails
the test on any difference.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from .runner import SIM_DIR_ENV, SUMMARY_ENV

__all__ = ["SIM_DIR_ENV", "SUMMARY_ENV", "Capture", "drive", "finish", "pack", "unpack"]


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


@dataclass
class Capture:
    """What one run drove and saw."""

    meta: dict[str, Any]
    driven: int  # input words driven (one per clock)
    expected: list[list[int]]  # per layer: golden outputs, packed
    got: list[list[tuple[int, int | None]]]  # per layer: (clock, packed value or None for X/Z)
    last_out: int  # clock of the last valid output of any layer (-1: none)
    top_disagrees: str | None  # first clock y/valid_out differed from the last layer's port

    def values(self, layer: int) -> list[int | None]:
        return [v for _, v in self.got[layer]]


async def drive(
    dut: Any,
    drain: Callable[[dict[str, Any]], int],
    *,
    inputs: str,
    stop_when_complete: bool = False,
) -> Capture:
    """Reset ``dut``, drive every input word back to back, sample all layers each clock.

    The words are the ``vectors.npz`` array ``meta["inputs"]`` names (``inputs`` for a
    ``meta.json`` written before it named one). Runs ``drain(meta)`` clocks past the last word; with ``stop_when_complete`` it stops as
    soon as every layer has shown as many outputs as it has golden rows.
    """
    sim_dir = Path(os.environ[SIM_DIR_ENV])
    meta = json.loads((sim_dir / "meta.json").read_text())
    data = np.load(sim_dir / "vectors.npz", allow_pickle=False)
    layers = meta["layers"]
    words = [pack(row, meta["x"]["width"]) for row in data[meta.get("inputs", inputs)]]
    expected = [
        [pack(row, layer["width"]) for row in data[f"layer{i}"]] for i, layer in enumerate(layers)
    ]
    want = [len(e) for e in expected]
    ports = [getattr(dut, layer["port"]) for layer in layers]
    valids = [getattr(dut, layer["valid"]) for layer in layers]

    dut.x.value = 0
    dut.valid_in.value = 0
    dut.rst.value = 1
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    for _ in range(3):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    # Clock c: on the falling edge drive word c, then sample everything once signals settle.
    # A layer with cumulative latency L shows input k at clock k + L (L == 0 is combinational).
    got: list[list[tuple[int, int | None]]] = [[] for _ in layers]
    last_out = -1
    top_disagrees: str | None = None
    for cycle in range(len(words) + drain(meta)):
        if cycle < len(words):
            dut.x.value = words[cycle]
            dut.valid_in.value = 1
        else:
            dut.valid_in.value = 0
        await ReadOnly()
        for li in range(len(layers)):
            if _high(valids[li]):
                got[li].append((cycle, _read(ports[li])))
                last_out = cycle
        # the top's own y/valid_out must be the last layer's debug port, clock for clock
        if top_disagrees is None and (
            _high(dut.valid_out) != _high(valids[-1])
            or (_high(dut.valid_out) and _read(dut.y) != _read(ports[-1]))
        ):
            top_disagrees = f"clock {cycle}: y/valid_out differ from {layers[-1]['port']}"
        await FallingEdge(dut.clk)
        if (
            stop_when_complete
            and cycle >= len(words)
            and all(len(g) >= w for g, w in zip(got, want, strict=True))
        ):
            break
    return Capture(meta, len(words), expected, got, last_out, top_disagrees)


def finish(summary: dict[str, Any]) -> None:
    """Write ``summary`` (with the simulator's name) to ``$NNLCC_SIM_SUMMARY`` and fail the
    test when it names a ``first_mismatch``."""
    summary = {"simulator": cocotb.SIM_NAME, **summary}
    path = os.environ.get(SUMMARY_ENV)
    if path:
        Path(path).write_text(json.dumps(summary, indent=2) + "\n")
    first = summary.get("first_mismatch")
    assert first is None, first
