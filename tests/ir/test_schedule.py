"""The register schedule: where registers go for ``every=k`` and for a delay budget, the
latency and flip-flop formulas, and the ``schedule`` pass's setting and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_tiny_cnn, compile_graph

from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.adder_graph import AdderGraph, Op
from nnlcc.ir.family import ECP5, ICE40, XC7, Family
from nnlcc.ir.timing import (
    ScheduleSetting,
    StageBudget,
    clock_stage_budget,
    delay_model,
    fanout_bound,
    stage_budget_for,
)
from nnlcc.passes import parse_pipeline


def _chain(n: int, width_bits: int = 8) -> tuple[AdderGraph, list[int]]:
    """x0 + x1 + ... as a chain of ``n`` adders, then a requant clamp."""
    g = AdderGraph.with_inputs([(0, (1 << width_bits) - 1)] * (n + 1))
    acc, nodes = 0, []
    for i in range(1, n + 1):
        acc = g.add(acc, i)
        nodes.append(acc)
    out = g.clamp(g.shr(acc, 2), 0, 127)
    g.outputs = [out]
    return g, nodes


def _old_stages(g: AdderGraph) -> list[int]:
    """The schedule before schedule{every}: a register after every ADD, CLAMP, MAX and MIN."""
    st = [0] * len(g.nodes)
    for i, n in enumerate(g.nodes):
        if n.op in (Op.ADD, Op.MAX, Op.MIN):
            st[i] = max(st[n.a], st[n.b]) + 1
        elif n.op is Op.CLAMP:
            st[i] = st[n.a] + 1
        elif n.op is Op.SHR:
            st[i] = st[n.a]
    return st


def test_every_1_is_the_old_schedule() -> None:
    net = compile_graph(build_tiny_cnn(), "quantize,lcc")
    for layer in net.layers:
        g = layer.graph
        assert g.schedule() == _old_stages(g)
        registers = (Op.ADD, Op.CLAMP, Op.MAX, Op.MIN)
        assert all(g.registered(i) for i, n in enumerate(g.nodes) if n.op in registers)
        assert g.latency == max((_old_stages(g)[o] for o in g.outputs), default=0)
        g.set_stage_budget(StageBudget.every(1))
        assert g.schedule() == _old_stages(g)


def test_every_k_registers_every_kth_level() -> None:
    g, adds = _chain(6)
    assert g.latency == 7  # six adders and the clamp
    g.set_stage_budget(StageBudget.every(2))
    assert [g.registered(a) for a in adds] == [False, True, False, True, False, True]
    assert g.latency == 4  # ceil(7 / 2)
    assert g.path_cost() == 2
    g.set_stage_budget(StageBudget.every(3))
    assert [g.registered(a) for a in adds] == [False, False, True, False, False, True]
    assert g.latency == 3  # the clamp alone is comb and leaves through a delayed copy
    x = np.random.default_rng(0).integers(0, 256, size=(8, 7))
    assert np.array_equal(g.evaluate(x), np.clip((x.sum(axis=1) >> 2), 0, 127)[:, None])


@pytest.mark.parametrize("k", [2, 3])
def test_every_k_divides_register_levels_and_ffs(k: int) -> None:
    """With unit costs a node ``l`` adder/clamp levels deep sits at stage ``l // k``, so the
    latency is ``ceil(L / k)`` of the old one ``L``; fewer registers, never more."""
    net = compile_graph(build_tiny_cnn(), "quantize,lcc")
    for layer in net.layers:
        g = layer.graph
        lat1, ffs1 = g.latency, g.register_bits
        g.set_stage_budget(StageBudget.every(k))
        assert g.latency == -(-lat1 // k), layer.name
        assert g.register_bits < ffs1 if lat1 > 1 else g.register_bits <= ffs1


def test_delays_and_register_bits() -> None:
    g = AdderGraph.with_inputs([(0, 15), (0, 15), (0, 15)])
    a = g.add(0, 1)  # stage 1, 5 bits
    b = g.add(a, 2)  # stage 2, 6 bits; reads x2 delayed by one
    g.outputs = [b, a]
    assert g.latency == 2
    assert g.delays()[2] == 1 and g.delays()[a] == 1 and g.delays()[b] == 0
    # registers: a (5) + b (6) + x2 copy (4) + a copy (5) + valid chain (2)
    assert g.register_bits == 5 + 6 + 4 + 5 + 2


def test_delay_budget_reads_registered_copies_when_a_node_does_not_fit() -> None:
    g, adds = _chain(4, width_bits=20)
    # each adder costs 1 + 0.1 * width (21..23 bits: ~3.1..3.3); budget 5: one per stage
    g.set_stage_budget(StageBudget(budget=5.0, fixed=1.0, per_bit=0.1))
    assert all(g.registered(a) for a in adds)
    g.set_stage_budget(StageBudget(budget=7.0, fixed=1.0, per_bit=0.1))
    assert [g.registered(a) for a in adds] == [False, True, False, True]
    assert g.path_cost() <= 7.0


def test_auto_uses_the_family_model() -> None:
    adder, route = delay_model(ECP5)
    bound = fanout_bound(ECP5, 200.0, 20)
    assert stage_budget_for("fc1", [16, 20], None, 200.0, ECP5) == clock_stage_budget(
        adder, route, 200.0, bound
    )
    # every=k keeps its unit costs and takes the same fanout bound (the default clock's)
    assert stage_budget_for("fc1", [16], 2, None, ECP5) == StageBudget.every(
        2, fanout_bound(ECP5, None, 16)
    )
    assert stage_budget_for("fc1", [16], 2, None, ECP5, fanout=0) == StageBudget.every(2)
    assert stage_budget_for("fc1", [16], 2, None, ECP5, fanout=5).fanout == 5


@pytest.mark.parametrize("family", [ECP5, ICE40], ids=str)
def test_fanout_bound_follows_the_route_model(family: Family) -> None:
    """As many readers as still let one adder of the widest width meet the clock: 0 where any
    number does (no copy is worth its flip-flops) or where none does (no copy helps)."""
    adder, route = delay_model(family)
    for mhz in (adder.target_mhz * f for f in (0.6, 0.9, 1.0, 1.1, 1.3)):
        for widest in (8, 16, 24):
            f = fanout_bound(family, mhz, widest)
            room = adder.budget_ns(mhz) - adder.fixed - adder.per_bit * widest
            if f == 0:
                assert room >= route.extra(0) or room < 0
            else:
                assert route.extra(f) <= room + 1e-9 < route.extra(f + 1)
    assert fanout_bound(family, None, 16) == fanout_bound(family, adder.target_mhz, 16)
    assert fanout_bound(XC7, 200.0, 16) == 0  # not measured: unbounded


def test_route_model_saturates() -> None:
    _, route = delay_model(ECP5)
    assert route.extra(1) == 0 and route.extra(0) == route.extra(route.saturation)
    assert route.extra(route.saturation + 5) == route.extra(0) > 0
    assert route.readers_within(route.extra(0)) == 0 and route.readers_within(-0.1) == 0
    assert route.readers_within(0.0) == 1


def test_unreachable_clock_is_one_line_naming_layer_and_figure() -> None:
    with pytest.raises(BadInputError) as e:
        stage_budget_for("fc1", [24], None, 2000.0, ECP5)
    msg = str(e.value)
    assert "\n" not in msg and "fc1" in msg and "MHz" in msg and "2000" in msg
    with pytest.raises(BadInputError, match=r"layer fc2: schedule\{every=6\} reaches about"):
        stage_budget_for("fc2", [24], 6, 400.0, ECP5)


def test_pass_options_and_refusals() -> None:
    (p,) = parse_pipeline("schedule{every=3}")
    assert p.every == 3 and p.mhz is None  # type: ignore[attr-defined]
    (q,) = parse_pipeline("schedule")
    assert q.every == "auto"  # type: ignore[attr-defined]
    for bad in ("schedule{every=0}", "schedule{every=often}", "schedule{family=xyz}"):
        with pytest.raises(PassOptionError):
            parse_pipeline(bad)


def test_pass_reaches_the_lowered_graphs_and_refuses_impossible_clocks() -> None:
    net = compile_graph(build_tiny_cnn(), "quantize,lcc,schedule{every=2,fanout=3}")
    assert all(la.graph.stage_budget == StageBudget.every(2, 3) for la in net.layers)
    with pytest.raises(BadInputError, match="layer c1: schedule"):
        compile_graph(build_tiny_cnn(), "quantize,lcc,schedule{mhz=5000}")


def test_pass_setting_survives_the_ir_text() -> None:
    """The setting the pass records prints as IR text and reads back to the same schedule
    (``nnlcc compile`` writes ir.txt, ``nnlcc opt`` prints it)."""
    from nnlcc.ir.lower import lower_network
    from nnlcc.ir.text import print_graph
    from nnlcc.passes.text import parse_graph

    graph = build_tiny_cnn()
    net = compile_graph(graph, "quantize,csd,schedule{every=3,mhz=60,fanout=4}")
    text = print_graph(graph)
    assert '"schedule": {"every": 3, "mhz": 60.0, "fanout": 4, "family": "ecp5"}' in text
    back = lower_network(parse_graph(text))
    assert [la.graph.stage_budget for la in back.layers] == [
        la.graph.stage_budget for la in net.layers
    ]
    assert all(la.graph.stage_budget == StageBudget.every(3, 4) for la in back.layers)


def test_auto_is_refused_on_a_family_without_a_measured_delay_model() -> None:
    """No other family's figures stand in for a missing model: every=auto names the family
    and the ways out; every=k needs no model (and gets no fanout bound from it)."""
    with pytest.raises(BadInputError) as e:
        stage_budget_for("fc1", [16], None, 200.0, XC7)
    msg = str(e.value)
    assert "\n" not in msg and "xc7 has no adder-delay model" in msg
    assert "not measured" in msg and "every=k" in msg and "family=ecp5" in msg
    assert stage_budget_for("fc1", [16], 2, None, XC7) == StageBudget.every(2)


def test_pass_schedules_on_the_board_family_unless_told_otherwise() -> None:
    with pytest.raises(BadInputError, match=r"schedule\{every=auto\}: xc7 has no adder-delay"):
        compile_graph(build_tiny_cnn(), "quantize,csd,schedule", family=XC7)
    g = build_tiny_cnn()
    net = compile_graph(g, "quantize,csd,schedule{family=ecp5}", family=XC7)
    assert all(la.notes[ScheduleSetting].family is ECP5 for la in g.layers)
    adder, route = delay_model(ECP5)
    for la in net.layers:
        widths = [la.graph.width(i) for i, n in enumerate(la.graph.nodes) if n.op is Op.ADD]
        bound = fanout_bound(ECP5, None, max(widths, default=0))
        want = clock_stage_budget(adder, route, adder.target_mhz, bound)
        assert la.graph.stage_budget == want or not widths
    g = build_tiny_cnn()
    compile_graph(g, "quantize,csd,schedule{every=2}", family=ICE40)
    assert all(la.notes[ScheduleSetting].family is ICE40 for la in g.layers)
    with pytest.raises(PassOptionError, match=r"schedule: unknown family 'xyz' \(known: ecp5"):
        parse_pipeline("schedule{family=xyz}")


def test_default_schedule_takes_the_board_family_bound() -> None:
    """Without a schedule pass, lowering for a board's family registers every adder and
    bounds fanout as that family's model says at its target clock; without a family (or on
    xc7), unbounded."""
    from nnlcc.ir.lower import lower_network

    for family, bounded in ((ECP5, True), (ICE40, True), (XC7, False)):
        g = build_tiny_cnn()
        compile_graph(g, "quantize,csd", family=family)
        net = lower_network(g, family)
        for la in net.layers:
            assert la.graph.stage_budget.budget == 1.0 and la.graph.stage_budget.fixed == 1.0
            f = fanout_bound(
                family,
                None,
                max(
                    (
                        la.graph.width(k)
                        for k, n in enumerate(la.graph.nodes)
                        if n.op in (Op.ADD, Op.CLAMP)
                    ),
                    default=0,
                ),
            )
            assert la.graph.stage_budget.fanout == f and (bounded or f == 0)
        assert all(la.graph.stage_budget.fanout == 0 for la in lower_network(g).layers)
