"""cocotb testbench for a pixel-streaming CNN top written by :func:`nnlcc.hdl.stream.emit_stream_verilog`.

Reads what :func:`nnlcc.sim.verify_cnn.verify_stream_network` wrote into ``$NNLCC_SIM_DIR``:
``meta.json`` (ports, per-layer widths and output images) and ``vectors.npz`` (``pixels``: the
input images as one pixel per row in stream order, and ``layer<i>``: every layer's golden
outputs, one pixel or vector per row in the order the layer emits them). Drives one pixel per
clock, frames back to back with ``valid_in`` always high (the streaming top's full rate),
records every layer's valid outputs and compares the packed buses bit for bit.

A mismatch is reported where it starts: the first layer (in network order) that differs, at its
first differing output, as image, pixel ``(y, x)`` and channel. Writes ``$NNLCC_SIM_SUMMARY``
(images, mismatching images, first mismatch, clocks) and fails the test on any difference.
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

from .tb_network import SIM_DIR_ENV, pack, unpack

DRAIN_FRAMES = 4  # idle frames' worth of clocks allowed for the last image to leave


def _read(handle: Any) -> int | None:
    v = handle.value
    if hasattr(v, "is_resolvable") and not v.is_resolvable:
        return None
    try:
        return int(v.to_unsigned())
    except ValueError:
        return None


def describe(layer: dict[str, Any], k: int, expected: int, got: int | None) -> str:
    """One line locating output ``k`` of ``layer``: image, pixel, channel, values."""
    per = int(layer["per_frame"])
    image, pos = divmod(k, per)
    where = f"image {image}"
    if layer["image"]:
        y, x = divmod(pos, int(layer["image"][2]))
        where += f", pixel ({y}, {x})"
    w, cnt, sg = layer["width"], layer["count"], layer["signed"]
    exp = unpack(expected, w, cnt, sg)
    if got is None:
        return f"{where}, layer {layer['name']}: expected {exp}, got X/Z bits"
    gv = unpack(got, w, cnt, sg)
    j = next(j for j in range(cnt) if exp[j] != gv[j])
    what = "channel" if layer["image"] else "output"
    return f"{where}, layer {layer['name']} {what} {j}: expected {exp[j]}, got {gv[j]}"


def compare(
    meta: dict[str, Any], expected: list[list[int]], got: list[list[int | None]], n: int
) -> tuple[int, str | None]:
    """Images with any difference, and the first difference of the first differing layer."""
    bad_images: set[int] = set()
    first: str | None = None
    for li, layer in enumerate(meta["layers"]):
        per = int(layer["per_frame"])
        exp, seen = expected[li], got[li]
        msg = None
        for k, want in enumerate(exp):
            if k >= len(seen):
                bad_images.update(range(k // per, n))
                msg = msg or (
                    f"image {k // per}, layer {layer['name']}: only {len(seen)} of "
                    f"{len(exp)} outputs came out (stream stalled)"
                )
                break
            if seen[k] != want:
                bad_images.add(k // per)
                msg = msg or describe(layer, k, want, seen[k])
        if len(seen) > len(exp):
            msg = msg or f"layer {layer['name']}: {len(seen)} outputs for {len(exp)} expected"
        if first is None and msg is not None:
            first = msg
    return len(bad_images), first


@cocotb.test()
async def check_cnn(dut: Any) -> None:
    """Every test image through the top at one pixel per clock, compared at every layer."""
    sim_dir = Path(os.environ[SIM_DIR_ENV])
    meta = json.loads((sim_dir / "meta.json").read_text())
    data = np.load(sim_dir / "vectors.npz", allow_pickle=False)
    pixels = data["pixels"]
    layers = meta["layers"]
    frame = int(meta["frame_pixels"])
    n = len(pixels) // frame
    x_packed = [pack(row, meta["x"]["width"]) for row in pixels]
    expected = [
        [pack(row, layer["width"]) for row in data[f"layer{i}"]] for i, layer in enumerate(layers)
    ]
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

    got: list[list[int | None]] = [[] for _ in layers]
    want = [len(e) for e in expected]
    last_out = 0
    cycle = 0
    limit = len(x_packed) + DRAIN_FRAMES * frame + 1000
    while cycle < limit:
        if cycle < len(x_packed):
            dut.x.value = x_packed[cycle]
            dut.valid_in.value = 1
        elif cycle == len(x_packed):
            dut.valid_in.value = 0
        await ReadOnly()
        for li in range(len(layers)):
            if str(valids[li].value) == "1":
                got[li].append(_read(ports[li]))
                last_out = cycle
        await FallingEdge(dut.clk)
        cycle += 1
        if cycle > len(x_packed) and all(len(g) >= w for g, w in zip(got, want, strict=True)):
            break

    mismatches, first = compare(meta, expected, got, n)
    summary = {
        "simulator": cocotb.SIM_NAME,
        "vectors": n,
        "images": n,
        "pixels": len(x_packed),
        "layers": len(layers),
        "clocks_to_last_output": last_out + 1,
        "mismatches": mismatches,
        "first_mismatch": first,
    }
    summary_path = os.environ.get("NNLCC_SIM_SUMMARY")
    if summary_path:
        Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n")
    assert first is None, first
