"""A serial I/O wrapper that places a network on a device with few pins (the iCE40UP5K of the
iCEBreaker has 39), for benchmarks that measure the network's own paths.

``nextpnr-ice40`` has no out-of-context mode: every port of ``nnlcc_network`` would become a
pin. The wrapper feeds the network's input bus from a shift register loaded one bit per clock
from pin ``sin`` (the network reads the register, as it reads the self-test's input register),
and folds its output bus into pin ``sout`` through a tree of registered 4-input XORs, so no
output bit is optimized away and no path outside the network is longer than one LUT. The
critical path is then the network's unless the network is faster than a LUT between two
flip-flops.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HARNESS", "harness_verilog"]

HARNESS = "nnlcc_harness"


def harness_verilog(meta: dict[str, Any], network: str = "nnlcc_network") -> str:
    """Verilog of module :data:`HARNESS` around ``network`` (ports as
    :meth:`nnlcc.hdl.top.TopStrategy.emit`'s metadata ``meta`` describes them)."""
    xw = meta["x"]["width"] * meta["x"]["count"]
    yw = meta["y"]["width"] * max(meta["y"]["count"], 1)
    lines = [
        f"module {HARNESS}(input clk, input rst, input sin, output sout);",
        f"  reg [{xw - 1}:0] xs = 0;",
        "  reg v = 0;",
        f"  always @(posedge clk) xs <= {{xs[{xw - 2}:0], sin}};" if xw > 1 else
        "  always @(posedge clk) xs <= sin;",
        "  always @(posedge clk) v <= sin;",
        f"  wire [{yw - 1}:0] y;",
        "  wire vo;",
        f"  {network} net (.clk(clk), .rst(rst), .x(xs), .valid_in(v), .y(y), .valid_out(vo));",
    ]  # fmt: skip
    level, width, k = "y", yw, 0
    while width > 1:
        nxt = -(-width // 4)
        lines.append(f"  reg [{nxt - 1}:0] r{k} = 0;")
        for j in range(nxt):
            hi = min(4 * j + 3, width - 1)
            lines.append(f"  always @(posedge clk) r{k}[{j}] <= ^{level}[{hi}:{4 * j}];")
        level, width, k = f"r{k}", nxt, k + 1
    lines.append("  reg so = 0;")
    lines.append(f"  always @(posedge clk) so <= {level}[0] ^ vo;")
    lines.append("  assign sout = so;")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
