"""cocotb testbench for the pixel-streaming top (:class:`nnlcc.hdl.top.StreamStrategy`).

The driver core :mod:`nnlcc.sim.tb_core` drives ``pixels`` (the input images, one pixel per
row in stream order) one per clock, frames back to back (the streaming top's full rate), and
records every layer's valid outputs until all have come out. Here they are compared in stream
order; a mismatch is reported where it starts: the first layer (in network order) that
differs, at its first differing output, as image, pixel ``(y, x)`` and channel. The summary
adds the pixels driven and the clock of the last output (the measured latency).
"""

from __future__ import annotations

from typing import Any

import cocotb

from .tb_core import drive, finish, unpack

__all__ = ["check_cnn", "compare", "describe"]

DRAIN_FRAMES = 4  # idle frames' worth of clocks allowed for the last image to leave


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
    cap = await drive(
        dut,
        lambda meta: DRAIN_FRAMES * int(meta["frame_pixels"]) + 1000,
        inputs="pixels",
        stop_when_complete=True,
    )
    n = cap.driven // int(cap.meta["frame_pixels"])
    layers = cap.meta["layers"]
    got = [cap.values(li) for li in range(len(layers))]
    mismatches, first = compare(cap.meta, cap.expected, got, n)
    finish(
        {
            "vectors": n,
            "images": n,
            "pixels": cap.driven,
            "layers": len(layers),
            "clocks_to_last_output": cap.last_out + 1,
            "mismatches": mismatches,
            "first_mismatch": first or cap.top_disagrees,
        }
    )
