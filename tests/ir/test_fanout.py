"""The schedule's fanout bound (:mod:`nnlcc.ir.fanout`): every register drives at most
``fanout`` readers, every reader reads a copy of the right value at the right stage, and the
flip-flops the copies add are counted the same by the graph, the cost model and the flat
Verilog writer."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
from conftest import shared_graph
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlcc.hdl.flat_verilog import emit_flat_verilog
from nnlcc.ir.adder_graph import SELECT_OPS, AdderGraph, Op
from nnlcc.ir.cost import estimate
from nnlcc.ir.family import ECP5, ICE40, XC7
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.lowered import LoweredLayer, LoweredNetwork
from nnlcc.ir.timing import StageBudget


def readers(g: AdderGraph) -> dict[tuple[int, int, int], list[tuple[int, int]]]:
    """Every register copy ``(node, stage, copy)`` and the (stage, node) of each reader that
    the plan sends to it, reads through SHR wiring resolved to their root register: an
    independent walk of the plan's answers, not of its bookkeeping."""
    cp, stg, rd, lat = g.copies, g.schedule(), g.reads, g.latency
    out: dict[tuple[int, int, int], list[tuple[int, int]]] = {}

    def source(o: int, t: int, c: int, who: tuple[int, int]) -> None:
        n = g.nodes[o]
        if n.op is Op.CONST:
            return
        assert t >= stg[o], f"v{o} read at stage {t} before it exists"
        if t == stg[o] and n.op is Op.SHR:
            source(n.a, t, c, who)  # the wire of its operand's register
            return
        registered = t > stg[o] or g.registered(o)
        if not registered:
            assert c == 0, f"a copy of the wire v{o}"
            return
        assert c < cp.count(o, t), f"copy {c} of v{o}@{t}: only {cp.count(o, t)}"
        out.setdefault((o, t, c), []).append(who)

    for i, n in enumerate(g.nodes):
        if n.op is Op.ADD or n.op in SELECT_OPS:
            source(n.a, rd[i], cp.operand.get((i, 0), 0), (rd[i], i))
            source(n.b, rd[i], cp.operand.get((i, 1), 0), (rd[i], i))
        elif n.op is Op.CLAMP:
            source(n.a, rd[i], cp.operand.get((i, 0), 0), (rd[i], i))
    for j, o in enumerate(g.outputs):
        source(o, lat, cp.output.get(j, 0), (lat, -1 - j))
    delays = g.delays()
    for k, d in enumerate(delays):
        for t in range(stg[k] + 1, stg[k] + d + 1):
            for c in range(cp.count(k, t)):
                source(k, t - 1, cp.tap.get((k, t, c), 0), (t, k))
    return out


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    bound=st.integers(1, 6),
    every=st.integers(1, 3),
)
def test_bound_holds_and_every_reader_reads_its_value(seed: int, bound: int, every: int) -> None:
    g = shared_graph(np.random.default_rng(seed))
    g.set_stage_budget(StageBudget.every(every))
    free = readers(g)
    plain_bits = g.register_bits
    g.set_stage_budget(replace(StageBudget.every(every), fanout=bound))
    bounded = readers(g)

    # the same reads (a delayed copy, copied, reads once per copy), spread over copies; no
    # copy drives more than the bound
    def reads(plan: dict[tuple[int, int, int], list[tuple[int, int]]]) -> set[object]:
        return {(k, t, who) for (k, t, _), ws in plan.items() for who in ws}

    assert reads(bounded) == reads(free)
    assert all(len(ws) <= bound for ws in bounded.values())
    # as few copies as the bound allows, and every copy is read
    for (k, t), n in g.copies.copies.items():
        total = sum(len(bounded[(k, t, c)]) for c in range(n))
        assert n == -(-total // bound) and all((k, t, c) in bounded for c in range(n))
    # the flip-flops: the copies' whole width, once each, in the graph and the cost model
    extra = sum(g.width(k) * n for k, _, n in g.copies.extra_registers)
    assert g.register_bits == plain_bits + extra
    for family in (ECP5, XC7, ICE40):
        cost = estimate(g, family)
        assert cost.ffs == g.register_bits
        assert cost.pipeline_ffs + cost.delay_ffs + cost.valid_ffs == cost.ffs


def test_no_bound_no_copies() -> None:
    g = shared_graph(np.random.default_rng(1))
    assert g.stage_budget.fanout == 0
    assert not g.copies.copies and not g.copies.operand and not g.copies.tap


def test_readers_of_one_output_tree_share_a_copy() -> None:
    """A register read by two output trees of four adders each, bound 4: one copy per tree."""
    g = AdderGraph.with_inputs([(0, 15)] * 9)
    s = g.add(0, 1)
    trees: list[list[int]] = [[], []]
    for i in range(3):  # interleaved construction: node order mixes the trees
        for j, tree in enumerate(trees):
            tree.append(g.add(s, 2 + 4 * j + i))
    outs = []
    for tree in trees:
        acc = g.add(tree[0], tree[1])
        acc = g.add(acc, tree[2])
        outs.append(g.add(acc, g.shr(s, 1)))
    g.outputs = outs
    g.set_stage_budget(StageBudget(fanout=4))
    groups = readers(g)
    assert g.copies.count(s, 1) == 2
    firsts = {c: {who for _, who in groups[(s, 1, c)]} for c in range(2)}
    # the three adders of tree j read copy j
    assert set(trees[0]) <= firsts[0] and set(trees[1]) <= firsts[1]


def _sinks(verilog: str, shr_names: set[str]) -> dict[str, set[str]]:
    """Statements reading each named register of the flat writer's text, SHR wires followed
    through (the same net): a structural count of each register's fanout."""
    stmt = re.compile(
        r"^(?:always @\(posedge clk\) (\w+) <= |wire \[[^]]*\] (\w+) = |assign (\w+) = )(.*);$"
    )
    reads: dict[str, set[str]] = {}
    for line in verilog.splitlines():
        m = stmt.match(line)
        if not m:
            continue
        lhs = m.group(1) or m.group(2) or m.group(3)
        for name in set(re.findall(r"\bv\d+(?:_s\d+)?(?:_c\d+)?(?:_t)?\b", m.group(4))):
            reads.setdefault(name, set()).add(lhs)

    def follow(name: str) -> set[str]:
        out: set[str] = set()
        for lhs in reads.get(name, ()):
            out |= follow(lhs) if lhs in shr_names else {lhs}
        return out

    return {name: follow(name) for name in reads}


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), bound=st.integers(1, 4))
def test_flat_writer_emits_the_copies(seed: int, bound: int, tmp_path_factory: object) -> None:
    """The flat Verilog declares exactly the graph's flip-flops and no named register reads
    out to more statements than the bound (two reads of one adder are one statement)."""
    g = shared_graph(np.random.default_rng(seed), n_in=3, n_nodes=30)
    g.set_stage_budget(replace(StageBudget.every(1), fanout=bound))
    fmt = FixedFormat(8, 0, True)
    out = FixedFormat(32, 0, True)
    net = LoweredNetwork("dup", fmt, [LoweredLayer("l0", g, fmt, out)], (g.n_inputs,))
    path = Path(str(tmp_path_factory.mktemp("flat"))) / "dup.v"  # type: ignore[attr-defined]
    emit_flat_verilog(net, path, "dup")
    text = path.read_text()
    core = text[text.index("module dup_core") :]
    regs = re.findall(r"^(?:\(\* keep \*\) )?reg (?:\[(\d+):0\] )?(\w+);$", core, re.M)
    assert sum(int(hi or 0) + 1 for hi, _ in regs) == g.register_bits
    kept = set(re.findall(r"^\(\* keep \*\) reg \[\d+:0\] (\w+);$", core, re.M))
    assert len(kept) == sum(g.copies.copies.values()) + len(g.copies.separate)
    shr = {
        name
        for k, n in enumerate(g.nodes)
        if n.op is Op.SHR
        for name in re.findall(rf"\b(v{k}(?:_c\d+)?(?:_t)?)\b", core)
    }
    # registers of one stage each (a packed delay line ``v<k>_d`` holds several)
    named = {name for _, name in regs if not name.endswith("_d")}
    for name, sinks in _sinks(core, shr).items():
        if name in named:
            assert len(sinks) <= bound, f"{name} drives {sorted(sinks)}"
