"""The LUT/FF cost model: hand-counted tiny graphs, monotonicity, and flip-flops equal to the
registers the flat Verilog writer declares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnlcc.hdl.flat_verilog import emit_flat_verilog
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.cost import estimate, estimate_network, features
from nnlcc.ir.family import ECP5, FAMILIES, ICE40, XC7, Family
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.lowered import LoweredLayer, LoweredNetwork
from nnlcc.ir.timing import StageBudget

S8 = (-128, 127)
FMT8 = FixedFormat(8, 0, True)


def two_inputs() -> AdderGraph:
    return AdderGraph.with_inputs([S8, S8])


def network(g: AdderGraph) -> LoweredNetwork:
    return LoweredNetwork("t", FMT8, [LoweredLayer("l0", g, FMT8, FMT8)], (g.n_inputs,))


def declared_register_bits(g: AdderGraph, tmp: Path) -> int:
    """Bits of every ``reg`` the flat writer declares in the core module."""
    path = tmp / "t.v"
    emit_flat_verilog(network(g), path, name="t")
    core = path.read_text().split("module t_core", 1)[1]
    wide = sum(int(m) + 1 for m in re.findall(r"^reg \[(\d+):0\]", core, re.M))
    single = len(re.findall(r"^reg (?!\[)", core, re.M))
    return wide + single


def test_plain_add() -> None:
    g = two_inputs()
    s = g.add(0, 1)  # [-256, 254]: 9 bits
    g.outputs = [s]
    f = features(g, ECP5)
    assert (f.adder_chains, f.adder_chain_bits) == (1, 9)
    assert f.adder_chain_luts == 10  # ECP5: a CCU2C holds two bits
    assert features(g, XC7).adder_chain_luts == 9
    c = estimate(g, ECP5)
    assert c.pipeline_ffs == 9 and c.delay_ffs == 0 and c.valid_ffs == 1
    assert c.ffs == 10
    assert c.luts > 0 and c.clamp_luts == 0


def test_shifted_add_low_bits_are_wires() -> None:
    g = two_inputs()
    s = g.add(0, 1, sb=3)  # x0 + 8 x1 in [-1152, 1143]: 12 bits, the low 3 are x0's
    g.outputs = [s]
    assert g.width(s) == 12
    assert features(g, ECP5).adder_chain_bits == 9
    assert estimate(g, ECP5).ffs == 12 + 1


def test_subtract() -> None:
    g = two_inputs()
    d = g.add(0, 1, nb=True)  # x0 - x1: a full-width chain
    g.outputs = [d]
    assert features(g, ECP5).adder_chain_bits == g.width(d) == 9
    # the subtrahend less shifted: its negation starts the chain at bit 0
    g2 = two_inputs()
    d2 = g2.add(0, 1, sa=2, nb=True)
    g2.outputs = [d2]
    assert features(g2, ECP5).adder_chain_bits == g2.width(d2)
    # the subtrahend more shifted: the low bits are the minuend's
    g3 = two_inputs()
    d3 = g3.add(0, 1, sb=2, nb=True)
    g3.outputs = [d3]
    assert features(g3, ECP5).adder_chain_bits == g3.width(d3) - 2


def test_clamp() -> None:
    g = two_inputs()
    s = g.add(0, 1)  # [-256, 254]
    r = g.clamp(s, 0, 127)  # ReLU at 0 (sign test) and a saturation at 127 (comparator)
    g.outputs = [r]
    f = features(g, ECP5)
    assert f.compare_chains == 1
    assert f.compare_chain_bits == 9  # signed compare of the 9-bit operand with 127
    assert f.mux_bits == g.width(r) == 7
    c = estimate(g, ECP5)
    assert c.clamp_luts > 0
    assert c.pipeline_ffs == 9 + 7 and c.ffs == 9 + 7 + 2
    # a bound the operand cannot cross costs nothing but its register
    g2 = two_inputs()
    r2 = g2.clamp(g2.add(0, 1), -1000, 1000)
    g2.outputs = [r2]
    f2 = features(g2, ECP5)
    assert (f2.compare_chains, f2.mux_bits) == (0, 0)
    assert estimate(g2, ECP5).clamp_luts == 0


def test_delay_line() -> None:
    g = two_inputs()
    s = g.add(0, 1)  # stage 1
    t = g.add(s, 0)  # stage 2: x0 read one stage late -> one 8-bit delayed copy
    u = g.add(t, 1)  # stage 3: x1 read two stages late -> two 8-bit copies
    g.outputs = [u, s]  # s read at the latency (3): two 9-bit copies
    c = estimate(g, ECP5)
    assert c.delay_ffs == 8 + 2 * 8 + 2 * 9
    assert c.ffs == c.pipeline_ffs + c.delay_ffs + 3


def test_shift_register_luts_on_xc7() -> None:
    g = AdderGraph.with_inputs([S8] * 2)
    acc = g.add(0, 0, sb=1)
    for _ in range(5):
        acc = g.add(acc, 0, sb=1)
    late = g.add(acc, 1)  # x1 read 6 stages late: a run of 6 copies, an SRL on xc7
    g.outputs = [late]
    assert features(g, XC7).srl_luts == 8
    assert features(g, ECP5).srl_luts == 0
    assert estimate(g, XC7).ffs == estimate(g, ECP5).ffs  # declared registers alike


@pytest.mark.parametrize("family", FAMILIES.values(), ids=str)
def test_wider_adders_cost_more(family: Family) -> None:
    luts = []
    for bits in (4, 8, 12, 16):
        rng = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
        g = AdderGraph.with_inputs([rng, rng])
        g.outputs = [g.add(0, 1)]
        luts.append(estimate(g, family).luts)
    assert luts == sorted(luts) and luts[0] < luts[-1]


def test_network_total() -> None:
    g = two_inputs()
    g.outputs = [g.add(0, 1)]
    cost = estimate_network(network(g), ICE40)
    assert cost.total is not None
    assert cost.layers["l0"] == cost.total == estimate(g, ICE40)


def test_ffs_equal_writer_registers(tmp_path: Path) -> None:
    g = AdderGraph.with_inputs([S8] * 4)
    a = g.add(0, 1, sb=2)
    b = g.add(2, 3, nb=True)
    c = g.add(a, b, sa=1)
    k = g.const(37)
    d = g.add(k, c)
    e = g.shr(d, 3)
    f = g.clamp(e, 0, 63)
    g.outputs = [f, b, g.add(f, 0)]
    assert estimate(g, ECP5).ffs == declared_register_bits(g, tmp_path)


@st.composite
def graphs(draw: st.DrawFn) -> AdderGraph:
    n_in = draw(st.integers(1, 4))
    ranges = []
    for _ in range(n_in):
        lo = draw(st.integers(-300, 300))
        ranges.append((lo, lo + draw(st.integers(0, 600))))
    g = AdderGraph.with_inputs(ranges)
    for _ in range(draw(st.integers(1, 12))):
        n = len(g.nodes)
        kind = draw(st.sampled_from(["add", "add", "sub", "shr", "clamp", "const", "max", "min"]))
        x, y = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        if kind in ("add", "sub"):
            g.add(x, y, draw(st.integers(0, 4)), draw(st.integers(0, 4)), nb=kind == "sub")
        elif kind in ("max", "min"):
            (g.max if kind == "max" else g.min)(x, y)
        elif kind == "shr":
            g.shr(x, draw(st.integers(-2, 4)))
        elif kind == "clamp":
            node = g.nodes[x]
            lo = draw(st.integers(node.lo - 5, node.hi + 5))
            g.clamp(x, lo, lo + draw(st.integers(0, 100)))
        else:
            g.const(draw(st.integers(-50, 50)))
    n = len(g.nodes)
    g.outputs = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4))
    return g


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(g=graphs(), every=st.integers(1, 3))
def test_random_graphs_match_writer(g: AdderGraph, every: int, tmp_path: Path) -> None:
    g.set_stage_budget(StageBudget.every(every))  # registers where schedule{every=k} puts them
    for family in FAMILIES.values():
        c = estimate(g, family)
        assert c.luts >= 0 and c.adder_luts >= 0 and c.clamp_luts >= 0
        assert 0 <= c.ffs_synth <= c.ffs + c.srl_luts * 32
    assert estimate(g, ECP5).ffs == declared_register_bits(g, tmp_path)


def test_equal_nodes_are_shared_by_synthesis() -> None:
    g = two_inputs()
    s = g.add(0, 1, sb=1)
    t = g.add(1, 0, sa=1)  # the same sum, operands swapped
    u = g.add(s, 0)
    v = g.add(t, 0)  # equal once s and t are one
    g.outputs = [u, v]
    one = two_inputs()
    one.outputs = [one.add(one.add(0, 1, sb=1), 0)]
    f, f1 = features(g, ECP5), features(one, ECP5)
    assert f.merged_nodes == 2
    assert (f.adder_chains, f.adder_chain_bits) == (f1.adder_chains, f1.adder_chain_bits)
    assert f.ffs_synth == f1.ffs_synth
    assert estimate(g, ECP5).pipeline_ffs == 2 * estimate(one, ECP5).pipeline_ffs  # declared: both
    # a difference is not commutative
    h = two_inputs()
    h.outputs = [h.add(0, 1, nb=True), h.add(1, 0, nb=True)]
    assert features(h, ECP5).merged_nodes == 0


def test_max_is_a_comparator_and_a_mux() -> None:
    """Two-way max of unsigned bytes: an 8-bit comparator (no sign bit: both non-negative)
    and 8 mux bits, what yosys synth_ecp5 makes of it (4 CCU2C + 8 LUT4 per node)."""
    g = AdderGraph.with_inputs([(0, 255), (0, 255)])
    g.outputs = [g.max(0, 1)]
    f = features(g, ECP5)
    assert (f.adder_chains, f.compare_chains, f.compare_chain_luts) == (0, 1, 8)
    assert (f.select_mux_bits, f.mux_bits, f.pipeline_ffs) == (8, 0, 8)
    signed = AdderGraph.with_inputs([(-512, 511), (0, 255)])
    signed.outputs = [signed.min(0, 1)]
    assert features(signed, ECP5).compare_chain_bits == 10  # the signed operand sets the width
    # max of a 4-tap window: cheaper than the old a + clamp(b - a, 0, .) emulation
    emul = AdderGraph.with_inputs([(0, 255)] * 2)
    d = emul.add(1, 0, nb=True)
    emul.outputs = [emul.clamp(emul.add(0, emul.clamp(d, 0, 255)), 0, 255)]
    for family in FAMILIES.values():
        assert estimate(g, family).luts < estimate(emul, family).luts
        assert estimate(g, family).ffs < estimate(emul, family).ffs
