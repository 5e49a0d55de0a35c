"""A one-layer network written directly as Verilog text: for layers too big for Amaranth.

:class:`~nnlcc.hdl.adder_tree.AdderGraphPipeline` goes through Amaranth and Yosys (the
``builtin-yosys`` WebAssembly build); on a 128 x 1152 LCC layer (about 130 k adders) that
conversion ran 11 minutes and then trapped out of WebAssembly memory.  This writer emits the
same pipeline as plain text in one pass over the graph, making the same choices the Amaranth
component makes (so it is a second printer of the same design, not a second design):

* a register for each ADD, CLAMP, MAX and MIN node the schedule registers
  (:meth:`AdderGraph.schedule`; by default all of them), a wire for the others, SHR and CONST
  as wiring, the delayed copies of a node made once and shared (written as one shift register
  per node);
* every node as wide as its exact range (two's complement when the range is negative); sums
  are computed modulo ``2**width`` of their node, exact because the node's range holds them;
* ports and metadata as :class:`~nnlcc.hdl.network.NetworkTop` for one layer (``x``,
  ``valid_in``, ``y``, ``valid_out``, ``l0_y``, ``l0_valid``; ``valid`` reset synchronously by
  ``rst``), so :mod:`nnlcc.sim.tb_network` verifies it unchanged; the pipeline sits in a
  ``<name>_core`` module under the top, so only the ports are visible to the testbench.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnlcc.ir.adder_graph import AdderGraph, Op
from nnlcc.ir.fixed_point import bits_for_range
from nnlcc.ir.lowered import LoweredNetwork

from .adder_tree import bound_bits
from .names import verilog_name

__all__ = ["emit_flat_verilog"]


def _covering(ranges: list[tuple[int, int]]) -> tuple[int, bool]:
    if not ranges:
        return 1, False
    return bits_for_range(min(lo for lo, _ in ranges), max(hi for _, hi in ranges))


def _hex(value: int, width: int) -> str:
    return f"{width}'h{value & ((1 << width) - 1):x}"


class _Writer:
    def __init__(self, g: AdderGraph, x_width: int) -> None:
        self.g = g
        self.st = g.schedule()
        self.cp = g.copies
        self.x_width = x_width
        self.lines: list[str] = []
        self.widths = [bits_for_range(n.lo, n.hi)[0] for n in g.nodes]
        self.made: set[str] = set()  # copies of SHR wires written so far
        # delayed copies of a node form one shift register ``v<k>_d`` (copy ``j`` = the node
        # ``j`` stages later at bits [(j-1)*w, j*w)): the same registers as one ``v<k>_s<t>``
        # each, in far fewer statements for the simulator to compile; a node with duplicated
        # registers (fanout bound) has one register per stage and copy instead
        self.delay = g.delays()
        for k, d in enumerate(self.delay):
            if not d or g.nodes[k].op is Op.CONST:
                continue
            if not self.cp.duplicated(k):
                self.lines.append(f"reg [{d * self.widths[k] - 1}:0] v{k}_d;")
                continue
            s = self.st[k]
            for t in range(s + 1, s + d + 1):
                keep = self.keep(k, t)
                for c in range(self.cp.count(k, t)):
                    self.lines.append(f"{keep}reg [{self.widths[k] - 1}:0] {self.name(k, t, c)};")

    def width(self, k: int) -> int:
        return self.widths[k]

    def signed(self, k: int) -> bool:
        return self.g.nodes[k].lo < 0

    def keep(self, k: int, t: int) -> str:
        """The attribute of a duplicated register (synthesis must not merge its copies)."""
        return "(* keep *) " if self.cp.kept(k, t) else ""

    def name(self, k: int, t: int, c: int) -> str:
        base = f"v{k}" if t == self.st[k] else f"v{k}_s{t}"
        return f"{base}_c{c}" if c else base

    def ext(self, k: int, t: int, w: int, c: int = 0) -> str:
        """Node ``k`` as seen at stage ``t`` in register copy ``c``, sign/zero-extended or
        truncated to ``w`` bits."""
        n = self.g.nodes[k]
        if n.op is Op.CONST:
            return _hex(n.c0, w)
        wk = self.width(k)
        j = t - self.st[k]
        if j == 0 or self.cp.duplicated(k):
            base, off = self.name(k, t, c), 0
            if j == 0 and c and n.op is Op.SHR:
                self.shr_copy(k, c)
            if wk == w:
                return base
        else:
            base, off = f"v{k}_d", (j - 1) * wk
        if wk >= w:
            return f"{base}[{off + w - 1}:{off}]"
        fill = f"{base}[{off + wk - 1}]" if self.signed(k) else "1'b0"
        return f"{{{{{w - wk}{{{fill}}}}}, {base}[{off + wk - 1}:{off}]}}"

    def shr_copy(self, k: int, c: int) -> None:
        """The SHR node ``k`` on copy ``c`` of its root register, written once, before use."""
        name = self.name(k, self.st[k], c)
        if name not in self.made:
            self.made.add(name)
            self.shr(k, name, c)

    def delay_lines(self) -> None:
        for k, d in enumerate(self.delay):
            if not d or self.g.nodes[k].op is Op.CONST:
                continue
            w = self.widths[k]
            s = self.st[k]
            if self.cp.duplicated(k):
                for t in range(s + 1, s + d + 1):
                    for c in range(self.cp.count(k, t)):
                        src = self.ext(k, t - 1, w, self.cp.tap.get((k, t, c), 0))
                        self.lines.append(f"always @(posedge clk) {self.name(k, t, c)} <= {src};")
                continue
            src = self.ext(k, s, w, self.cp.tap.get((k, s + 1, 0), 0))
            shifted = f"{{v{k}_d[{(d - 1) * w - 1}:0], {src}}}" if d > 1 else src
            self.lines.append(f"always @(posedge clk) v{k}_d <= {shifted};")

    def operand(self, k: int, slot: int, w: int) -> str:
        n = self.g.nodes[k]
        c = self.cp.operand.get((k, slot), 0)
        return self.ext(n.b if slot else n.a, self.g.reads[k], w, c)

    def shr(self, k: int, name: str, c: int) -> None:
        n = self.g.nodes[k]
        w = self.width(k)
        s = self.st[k]
        if n.sa >= 0:  # floor division: bits [sa, sa + w) of the sign-extended operand
            src = self.ext(n.a, s, w + n.sa, c)
            expr = f"{src}" if n.sa == 0 else f"{src} >> {n.sa}"
            self.lines.append(f"wire [{w + n.sa - 1}:0] {name}_t = {expr};")
            self.lines.append(f"wire [{w - 1}:0] {name} = {name}_t[{w - 1}:0];")
        else:
            self.lines.append(f"wire [{w - 1}:0] {name} = {self.ext(n.a, s, w, c)} << {-n.sa};")

    def node(self, k: int) -> None:
        n = self.g.nodes[k]
        w = self.width(k)
        if n.op is Op.CONST:
            return
        if n.op is Op.INPUT:
            lo = n.a * self.x_width
            self.lines.append(f"wire [{w - 1}:0] v{k} = x[{lo + w - 1}:{lo}];")
        elif n.op is Op.ADD:
            a = self.operand(k, 0, w)
            b = self.operand(k, 1, w)
            a = f"({a} << {n.sa})" if n.sa else a
            b = f"({b} << {n.sb})" if n.sb else b
            self._drive(k, w, f"{a} {'-' if n.nb else '+'} {b}")
        elif n.op is Op.SHR:
            self.shr(k, f"v{k}", 0)
        elif n.op in (Op.MAX, Op.MIN):  # compare as signed numbers wide enough for both
            x, y = self.g.nodes[n.a], self.g.nodes[n.b]
            wc = bits_for_range(min(x.lo, y.lo, -1), max(x.hi, y.hi))[0]
            a, b = self.operand(k, 0, wc), self.operand(k, 1, wc)
            rel = ">" if n.op is Op.MAX else "<"
            self.lines.append(f"wire [{wc - 1}:0] v{k}_a = {a};")
            self.lines.append(f"wire [{wc - 1}:0] v{k}_b = {b};")
            self.lines.append(
                f"wire [{wc - 1}:0] v{k}_c = ($signed(v{k}_a) {rel} $signed(v{k}_b)) ? v{k}_a : v{k}_b;"
            )
            self._drive(k, w, f"v{k}_c[{w - 1}:0]")
        else:  # CLAMP: compare as signed numbers wide enough for the operand and both bounds
            op = self.g.nodes[n.a]
            wc = bits_for_range(min(op.lo, n.c0, -1), max(op.hi, n.c1))[0]
            self.lines.append(f"wire [{wc - 1}:0] v{k}_a = {self.operand(k, 0, wc)};")
            a = f"$signed(v{k}_a)"
            v = a
            top = f"v{k}_a[{wc - 1}]"
            if op.hi > n.c1:  # a format limit is a test of the high bits, as in adder_tree
                j = bound_bits(n.c1, above=True)
                over = (
                    f"({a} > $signed({_hex(n.c1, wc)}))"
                    if j is None
                    else f"(~{top} & |v{k}_a[{wc - 2}:{j}])"
                )
                v = f"{over} ? $signed({_hex(n.c1, wc)}) : {v}"
            if op.lo < n.c0:
                j = bound_bits(n.c0, above=False)
                if j is None:
                    under = f"({a} < $signed({_hex(n.c0, wc)}))"
                elif j < 0:
                    under = top
                else:
                    under = f"({top} & ~&v{k}_a[{wc - 2}:{j}])"
                v = f"{under} ? $signed({_hex(n.c0, wc)}) : ({v})"
            self.lines.append(f"wire [{wc - 1}:0] v{k}_c = {v};")
            self._drive(k, w, f"v{k}_c[{w - 1}:0]")

    def _drive(self, k: int, w: int, expr: str) -> None:
        """Node ``k`` as a register (one per copy, when the schedule registers it) or a wire."""
        if not self.g.registered(k):
            self.lines.append(f"wire [{w - 1}:0] v{k} = {expr};")
            return
        s = self.st[k]
        copies = self.cp.count(k, s)
        if copies > 1:  # one adder, its sum registered once per copy
            self.lines.append(f"wire [{w - 1}:0] v{k}_sum = {expr};")
            expr = f"v{k}_sum"
        keep = self.keep(k, s)
        for c in range(copies):
            self.lines.append(f"{keep}reg [{w - 1}:0] {self.name(k, s, c)};")
            self.lines.append(f"always @(posedge clk) {self.name(k, s, c)} <= {expr};")


def emit_flat_verilog(
    net: LoweredNetwork, path: Path | str, name: str = "nnlcc_top"
) -> dict[str, Any]:
    """Write a one-layer vector network as Verilog module ``name``; return the port metadata
    :func:`nnlcc.hdl.emit_verilog` would return for it.  An illegal or reserved ``name`` is
    renamed (:func:`nnlcc.hdl.names.verilog_name`); the metadata's ``toplevel`` says to what."""
    name = verilog_name(name)
    if len(net.layers) != 1 or len(net.input_shape) != 1:
        raise ValueError("the flat writer takes a one-layer vector network")
    layer = net.layers[0]
    g = layer.graph
    in_ranges = [(n.lo, n.hi) for n in g.nodes if n.op is Op.INPUT]
    out_ranges = [(g.nodes[o].lo, g.nodes[o].hi) for o in g.outputs]
    xw, xs = _covering([(net.input_fmt.lo, net.input_fmt.hi), *in_ranges])
    yw, ys = _covering([(layer.out_fmt.lo, layer.out_fmt.hi), *out_ranges])
    n_in, n_out = g.n_inputs, len(g.outputs)
    lat = g.latency
    w = _Writer(g, xw)
    for k in range(len(g.nodes)):
        w.node(k)
    w.delay_lines()
    outs = [w.ext(o, lat, yw, w.cp.output.get(j, 0)) for j, o in enumerate(g.outputs)]
    ports = [
        "input clk;",
        "input rst;",
        f"input [{n_in * xw - 1}:0] x;",
        "input valid_in;",
        f"output [{max(n_out, 1) * yw - 1}:0] y;",
        "output valid_out;",
        f"output [{max(n_out, 1) * yw - 1}:0] l0_y;",
        "output l0_valid;",
    ]
    port_list = "(clk, rst, x, valid_in, y, valid_out, l0_y, l0_valid);"
    # the top only instantiates the core: simulators that expose the top module's signals
    # (cocotb's VPI scope) then see the ports, not 100 k internal registers
    wrapper = [
        f"module {name} {port_list}",
        *ports,
        f"{name}_core core (.clk(clk), .rst(rst), .x(x), .valid_in(valid_in), .y(y),"
        " .valid_out(valid_out), .l0_y(l0_y), .l0_valid(l0_valid));",
        "endmodule",
        "",
    ]
    head = [f"module {name}_core {port_list}", *ports]
    body = list(w.lines)
    body.append(f"assign y = {{{', '.join(reversed(outs)) if outs else _hex(0, yw)}}};")
    body.append("assign l0_y = y;")
    valid = "valid_in"
    for t in range(1, lat + 1):
        body.append(f"reg valid_s{t};")
        body.append(f"always @(posedge clk) valid_s{t} <= rst ? 1'b0 : {valid};")
        valid = f"valid_s{t}"
    body += [f"assign valid_out = {valid};", "assign l0_valid = valid_out;", "endmodule"]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(wrapper + head + body) + "\n")

    def bus(width: int, signed: bool, count: int) -> dict[str, Any]:
        return {"width": width, "signed": signed, "count": count}

    return {
        "toplevel": name,
        "clock": "clk",
        "reset": "rst",
        "packing": "element i at bits [i*width, (i+1)*width), two's complement if signed",
        "x": bus(xw, xs, net.n_inputs),
        "y": bus(yw, ys, n_out),
        "latency": lat,
        "layers": [
            {
                "name": layer.name,
                "port": "l0_y",
                "valid": "l0_valid",
                "latency": lat,
                **bus(yw, ys, n_out),
            }
        ],
    }
