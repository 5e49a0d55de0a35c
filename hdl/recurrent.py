"""A network that starts with a recurrent layer (:class:`~nnlcc.ir.cell.LoweredRecurrent`) as
one Amaranth top: the input gate matrix, the recurrence and the vector layers after it.

One time step is in flight.  The recurrence holds the state ``h`` (and an LSTM's ``c``) in
registers; the recurrent gate matrix (an :class:`~nnlcc.hdl.adder_tree.AdderGraphPipeline`)
reads ``h``, and the cell (:class:`~nnlcc.ir.cell.CellPlan`'s operations, each a register per
hidden unit, every width from the operation's exact range) reads ``R h``, the held ``W x_t``
and the state.  The cell's inputs are held for the whole step, so its registers need no
enables and no delays: ``plan.latency`` clocks after a step starts, they hold the new state,
which the next clock loads into ``h`` (and ``c``).  A step therefore takes
:attr:`RecurrentCore.step_clocks` ``= plan.latency + 2`` clocks (the recurrent path ``h ->
R h -> cell -> h``, registered), and :attr:`RecurrentCore.sequence_clocks` per sequence.

The input gate matrix is pipelined ahead of the recurrence: ``x_t`` is accepted
(``valid_in`` and ``ready`` high at a clock edge) while the previous step computes, and its
``W x_t`` waits in a one-entry buffer.  After ``steps`` steps the last hidden state goes to the
vector layers (a chain of adder-graph pipelines, as in :class:`~nnlcc.hdl.network.NetworkTop`)
and the state is cleared for the next sequence.

Debug ports: ``l0_y``/``l0_valid`` show the new hidden state of *every* step (``l0_c`` an
LSTM's cell state, with the same valid), ``l<i>_y``/``l<i>_valid`` the outputs of the vector
layers, so the testbench (:mod:`nnlcc.sim.tb_sequence`) checks every step bit-exactly.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from nnlcc.ir.cell import CellOp, CellPlan, LoweredRecurrent
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.lowered import LoweredNetwork

from .adder_tree import AdderGraphPipeline, range_shape, shape_covering

__all__ = ["RecurrentCore", "SequenceTop", "build_cell"]


def _fmt(fmt: FixedFormat) -> tuple[int, int]:
    return fmt.lo, fmt.hi


def _op_value(op: CellOp, env: dict[str, Value], rom: Any) -> Value:
    """The combinational value of ``op`` on one lane, exactly as :meth:`CellPlan.step`
    (``rom``: a lookup's own asynchronous read port of its table)."""
    a = env[op.a]
    if op.kind == "add":
        b = env[op.b] << op.sb
        return (a << op.sa) - b if op.neg else (a << op.sa) + b
    if op.kind == "mul":
        return a * env[op.b]
    if op.kind == "index":
        assert op.table is not None
        mag = Mux(a < 0, -a, a)
        k = (mag + (1 << (op.shift - 1))) >> op.shift if op.shift > 0 else mag << -op.shift
        last = op.table.size - 1
        return Mux(k > last, last, k)
    if op.kind == "lookup":
        assert op.table is not None and rom is not None
        t = op.table
        e = rom.data
        neg = t.one - e if t.func == "sigmoid" else -e
        return Mux(env[op.b] >= 0, e, neg)
    lo, hi = op.clamp  # round
    v = (a + (1 << (op.shift - 1))) >> op.shift if op.shift > 0 else a << -op.shift
    return Mux(v > hi, hi, Mux(v < lo, lo, v))


def build_cell(
    m: Module, plan: CellPlan, inputs: dict[str, list[Value]]
) -> dict[str, list[Signal]]:
    """Registers of every operation of ``plan`` on every lane (``m.d.sync``, no reset), reading
    ``inputs`` (a value per lane by input name); returns each operation's registers by name.
    Each lookup's table is one ROM (the entries its index can reach) with an asynchronous
    read port per lane."""
    out: dict[str, list[Signal]] = {}
    his = {op.name: op.hi for op in plan.ops}
    roms: dict[str, Memory] = {}
    for op in plan.ops:
        if op.kind == "lookup":
            assert op.table is not None
            entries = [int(v) for v in op.table.entries[: his[op.a] + 1]]
            rom = Memory(
                shape=range_shape(min(entries), max(entries)), depth=len(entries), init=entries
            )
            m.submodules[f"{op.name}_rom"] = roms[op.name] = rom
    for j in range(plan.hidden):
        env: dict[str, Value] = {name: vals[j] for name, vals in inputs.items()}
        for op in plan.ops:
            reg = Signal(range_shape(op.lo, op.hi), name=f"{op.name}_{j}", reset_less=True)
            port = None
            if op.kind == "lookup":
                port = roms[op.name].read_port(domain="comb")
                m.d.comb += port.addr.eq(env[op.a])
            m.d.sync += reg.eq(_op_value(op, env, port))
            env[op.name] = reg
            out.setdefault(op.name, []).append(reg)
    return out


class RecurrentCore(wiring.Component):
    """The recurrent layer (the module docstring): ``x``/``valid_in``/``ready`` one time step's
    input, ``y``/``valid_out`` the last hidden state of each sequence, ``h``/``c``/``step_valid``
    the state after every step."""

    def __init__(self, layer: LoweredRecurrent, x_shape: Shape) -> None:
        assert layer.w is not None and layer.plan is not None
        self.layer = layer
        self.plan = layer.plan
        self.w_pipe = AdderGraphPipeline(layer.w.graph, x_shape=x_shape)
        h_fmt = layer.out_fmt
        r_in = shape_covering([_fmt(h_fmt), *self._ranges(layer.graph)])
        self.r_pipe = AdderGraphPipeline(layer.graph, x_shape=r_in)
        self.h_shape = range_shape(h_fmt.lo, h_fmt.hi)
        c_spec = self.plan.inputs.get("c")
        self.c_shape = range_shape(c_spec[0], c_spec[1]) if c_spec else None
        self.steps = layer.steps
        self.step_clocks = self.plan.latency + 2
        self.sequence_clocks = self.steps * self.step_clocks
        hd = self.plan.hidden
        members: dict[str, Any] = {
            "x": In(ArrayLayout(x_shape, layer.w.graph.n_inputs)),
            "valid_in": In(1),
            "ready": Out(1),
            "y": Out(ArrayLayout(self.h_shape, hd)),
            "valid_out": Out(1),
            "h": Out(ArrayLayout(self.h_shape, hd)),
            "step_valid": Out(1),
        }
        if self.c_shape is not None:
            members["c"] = Out(ArrayLayout(self.c_shape, hd))
        super().__init__(members)

    @staticmethod
    def _ranges(graph: Any) -> list[tuple[int, int]]:
        return [(graph.nodes[k].lo, graph.nodes[k].hi) for k in range(graph.n_inputs)]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        plan, hd = self.plan, self.plan.hidden
        gates = len(self.w_pipe.graph.outputs) // hd
        m.submodules.w = w = self.w_pipe
        m.submodules.r = r = self.r_pipe
        h = [Signal(self.h_shape, name=f"h_{j}") for j in range(hd)]  # reset: zero state
        c = (
            [Signal(self.c_shape, name=f"c_{j}") for j in range(hd)]
            if self.c_shape is not None
            else []
        )
        # the input gate matrix, ahead of the recurrence: one x in it, one W x waiting
        w_busy = Signal()
        next_full = Signal()
        wx_shape = w.y_shape
        wx_next = [
            Signal(wx_shape, name=f"wx_next_{k}", reset_less=True) for k in range(hd * gates)
        ]
        wx_hold = [Signal(wx_shape, name=f"wx_{k}", reset_less=True) for k in range(hd * gates)]
        m.d.comb += [
            self.ready.eq(~w_busy & ~next_full),
            w.x.eq(self.x),
            w.valid_in.eq(self.valid_in & self.ready),
        ]
        with m.If(self.valid_in & self.ready):
            m.d.sync += w_busy.eq(1)
        with m.If(w.valid_out):
            m.d.sync += [w_busy.eq(0), next_full.eq(1)]
            m.d.sync += [wx_next[k].eq(w.y[k]) for k in range(hd * gates)]
        # the recurrent gate matrix reads the state
        r_in = []
        for j in range(hd):
            e = Signal(r.x_shape, name=f"r_x{j}")
            m.d.comb += e.eq(h[j])
            r_in.append(e)
        m.d.comb += [r.x.as_value().eq(Cat(*r_in)), r.valid_in.eq(1)]
        inputs: dict[str, list[Value]] = {"h": list(h)}
        if c:
            inputs["c"] = list(c)
        for k in range(gates):
            inputs[f"wx{k}"] = [wx_hold[k * hd + j] for j in range(hd)]
            inputs[f"rh{k}"] = [r.y[k * hd + j] for j in range(hd)]
        regs = build_cell(m, plan, inputs)
        h_new = regs[plan.state["h"]]
        c_new = regs[plan.state["c"]] if c else []
        # the step: load W x, wait for the cell, load the state
        running = Signal()
        count = Signal(range(plan.latency + 1))
        step = Signal(range(max(self.steps, 2)))
        with m.If(~running & next_full):
            m.d.sync += [running.eq(1), count.eq(0), next_full.eq(0)]
            m.d.sync += [wx_hold[k].eq(wx_next[k]) for k in range(hd * gates)]
        m.d.sync += [self.step_valid.eq(0), self.valid_out.eq(0)]
        with m.If(running):
            m.d.sync += count.eq(count + 1)
            with m.If(count == plan.latency):
                last = step == self.steps - 1
                m.d.sync += [running.eq(0), self.step_valid.eq(1)]
                m.d.sync += [self.h[j].eq(h_new[j]) for j in range(hd)]
                if c:
                    m.d.sync += [self.c[j].eq(c_new[j]) for j in range(hd)]
                with m.If(last):
                    m.d.sync += [step.eq(0), self.valid_out.eq(1)]
                    m.d.sync += [self.y[j].eq(h_new[j]) for j in range(hd)]
                    m.d.sync += [s.eq(0) for s in (*h, *c)]
                with m.Else():
                    m.d.sync += step.eq(step + 1)
                    m.d.sync += [h[j].eq(h_new[j]) for j in range(hd)]
                    m.d.sync += [c[j].eq(c_new[j]) for j in range(len(c))]
        return m


class SequenceTop(wiring.Component):
    """A recurrent layer then vector layers: ``x``/``valid_in``/``ready`` one time step per
    accepted word, ``y``/``valid_out`` the network output per sequence, and the debug ports of
    the module docstring."""

    def __init__(self, net: LoweredNetwork) -> None:
        first = net.layers[0]
        if not isinstance(first, LoweredRecurrent):
            raise ValueError("a sequence top starts with a recurrent layer")
        for layer in net.layers[1:]:
            if isinstance(layer, LoweredRecurrent) or layer.window is not None or layer.inputs:
                raise ValueError(
                    f"layer {layer.name}: after a recurrent layer nnlcc builds a chain of"
                    " dense layers"
                )
        assert first.w is not None
        self.net = net
        g = first.w.graph
        x_shape = shape_covering(
            [_fmt(net.input_fmt), *((g.nodes[k].lo, g.nodes[k].hi) for k in range(g.n_inputs))]
        )
        self.core = RecurrentCore(first, x_shape)
        self.pipelines: list[AdderGraphPipeline] = []
        prev = _fmt(first.out_fmt)
        for layer in net.layers[1:]:
            lg = layer.graph
            for k in range(lg.n_inputs):
                if prev[0] < lg.nodes[k].lo or prev[1] > lg.nodes[k].hi:
                    raise ValueError(f"layer {layer.name}: input range does not hold its source")
            outs = [(lg.nodes[o].lo, lg.nodes[o].hi) for o in lg.outputs]
            y = shape_covering([_fmt(layer.out_fmt), *outs])
            self.pipelines.append(AdderGraphPipeline(lg, y_shape=y))
            prev = (min(r[0] for r in outs), max(r[1] for r in outs))
        self.latency = sum(p.latency for p in self.pipelines)
        hd = first.hidden
        out_y = (
            self.pipelines[-1].signature.members["y"].shape
            if self.pipelines
            else ArrayLayout(self.core.h_shape, hd)
        )
        members: dict[str, Any] = {
            "x": In(ArrayLayout(x_shape, g.n_inputs)),
            "valid_in": In(1),
            "ready": Out(1),
            "y": Out(out_y),
            "valid_out": Out(1),
            "l0_y": Out(ArrayLayout(self.core.h_shape, hd)),
            "l0_valid": Out(1),
        }
        if self.core.c_shape is not None:
            members["l0_c"] = Out(ArrayLayout(self.core.c_shape, hd))
        for i, p in enumerate(self.pipelines, start=1):
            members[f"l{i}_y"] = Out(p.signature.members["y"].shape)
            members[f"l{i}_valid"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.rnn = core = self.core
        m.d.comb += [
            core.x.eq(self.x),
            core.valid_in.eq(self.valid_in),
            self.ready.eq(core.ready),
            self.l0_y.eq(core.h),
            self.l0_valid.eq(core.step_valid),
        ]
        if self.core.c_shape is not None:
            m.d.comb += self.l0_c.eq(core.c)
        prev_y: Any = core.y
        prev_valid: Any = core.valid_out
        prev_n = self.core.plan.hidden
        for i, p in enumerate(self.pipelines, start=1):
            m.submodules[f"l{i}"] = p
            elems = []
            for j in range(prev_n):
                e = Signal(p.x_shape, name=f"l{i}_x{j}")
                m.d.comb += e.eq(prev_y[j])
                elems.append(e)
            m.d.comb += [p.x.as_value().eq(Cat(*elems)), p.valid_in.eq(prev_valid)]
            m.d.comb += [
                getattr(self, f"l{i}_y").eq(p.y),
                getattr(self, f"l{i}_valid").eq(p.valid_out),
            ]
            prev_y, prev_valid, prev_n = p.y, p.valid_out, len(p.graph.outputs)
        m.d.comb += [self.y.eq(prev_y), self.valid_out.eq(prev_valid)]
        return m

    def port_metadata(self, name: str) -> dict[str, Any]:
        """What the testbench needs: buses (width, signedness, count) of ``x``, ``y`` and
        every checked port, in the order of the golden arrays ``layer<i>``."""

        def bus(shape: Shape, count: int) -> dict[str, Any]:
            return {"width": shape.width, "signed": shape.signed, "count": count}

        first = self.net.layers[0]
        hd = self.core.plan.hidden
        layers = [
            {"name": first.name, "port": "l0_y", "valid": "l0_valid", **bus(self.core.h_shape, hd)}
        ]
        if self.core.c_shape is not None:
            layers.append(
                {
                    "name": f"{first.name}.c",
                    "port": "l0_c",
                    "valid": "l0_valid",
                    **bus(self.core.c_shape, hd),
                }
            )
        for i, (layer, p) in enumerate(zip(self.net.layers[1:], self.pipelines, strict=True), 1):
            layers.append(
                {
                    "name": layer.name,
                    "port": f"l{i}_y",
                    "valid": f"l{i}_valid",
                    **bus(p.y_shape, len(p.graph.outputs)),
                }
            )
        return {
            "toplevel": name,
            "clock": "clk",
            "reset": "rst",
            "packing": "element i at bits [i*width, (i+1)*width), two's complement if signed",
            "x": bus(self.core.w_pipe.x_shape, self.core.w_pipe.graph.n_inputs),
            "y": {**layers[-1], "name": "y"},
            "steps": self.core.steps,
            "step_clocks": self.core.step_clocks,
            "latency": self.latency,
            "state_ports": 2 if self.core.c_shape is not None else 1,
            "layers": layers,
        }
