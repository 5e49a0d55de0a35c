"""cocotb testbench for the vector top (:class:`nnlcc.hdl.top.VectorStrategy`): one input vector
per clock, a fixed latency per layer.

The driver core :mod:`nnlcc.sim.tb_core` drives the vectors ``x`` back to back and captures
every layer; here output ``k`` of layer ``i`` must appear exactly ``latency_i`` clocks after
input ``k`` and equal its golden row bit for bit. The summary names the first difference as
vector, then layer.
"""

from __future__ import annotations

from typing import Any

import cocotb

from .tb_core import drive, finish, unpack

__all__ = ["check_network"]


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
    cap = await drive(dut, lambda meta: int(meta["latency"]) + 2, inputs="x")
    n = cap.driven
    mismatches, first = _first_mismatch(cap.meta, cap.expected, cap.got, n)
    finish(
        {
            "vectors": n,
            "layers": len(cap.meta["layers"]),
            "latency": int(cap.meta["latency"]),
            "mismatches": mismatches,
            "first_mismatch": first or cap.top_disagrees,
        }
    )
