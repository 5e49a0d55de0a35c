import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlcc.ir.adder_graph import AdderGraph, Op


def test_ops_execute_and_count() -> None:
    g = AdderGraph.with_inputs([(-8, 7), (0, 15)])
    a = g.add(0, 1, 2, 0)  # 4x0 + x1
    b = g.add(a, 0, 0, 1, nb=True)  # a - 2x0 = 2x0 + x1
    c = g.shr(b, 1)
    d = g.add(g.const(5), c)
    e = g.clamp(d, -3, 9)
    g.outputs = [a, b, c, e]
    x = np.array([[-8, 15], [7, 0], [3, 3]])
    got = g.evaluate(x)
    want = np.stack([4 * x[:, 0] + x[:, 1], 2 * x[:, 0] + x[:, 1], (2 * x[:, 0] + x[:, 1]) >> 1], 1)
    assert np.array_equal(got[:, :3], want)
    assert np.array_equal(got[:, 3], np.clip(want[:, 2] + 5, -3, 9))
    assert (g.adders, g.const_adders, g.depth) == (2, 1, 2)
    assert g.schedule()[e] == 4 and g.latency == 4
    g.check_ranges(x)


def test_max_min_are_exact_with_exact_ranges() -> None:
    g = AdderGraph.with_inputs([(-8, 7), (0, 15), (3, 5)])
    mx, mn = g.max(0, 1), g.min(0, 2)
    g.outputs = [mx, mn, g.max(mx, mn)]
    assert (g.nodes[mx].lo, g.nodes[mx].hi) == (0, 15)
    assert (g.nodes[mn].lo, g.nodes[mn].hi) == (-8, 5)
    x = np.array([[-8, 0, 3], [7, 2, 5], [4, 4, 4], [-1, 15, 3]])
    got = g.evaluate(x)
    assert got[:, 0].tolist() == np.maximum(x[:, 0], x[:, 1]).tolist()
    assert got[:, 1].tolist() == np.minimum(x[:, 0], x[:, 2]).tolist()
    assert (g.adders, g.comparators, g.depth, g.latency) == (0, 3, 0, 2)
    text = g.to_text()
    assert "v3 = max v0, v1  [0, 15]" in text and "v4 = min v0, v2  [-8, 5]" in text
    assert AdderGraph.from_text(text).to_text() == text


def test_negated_first_operand_becomes_subtraction() -> None:
    g = AdderGraph.with_inputs([(0, 3), (0, 3)])
    n = g.add(0, 1, na=True)
    node = g.nodes[n]
    assert node.op is Op.ADD and node.nb and node.a == 1
    g.outputs = [n]
    assert g.evaluate([[3, 1]]).tolist() == [[-2]]
    with pytest.raises(ValueError):
        g.add(0, 1, na=True, nb=True)


def _random_graph(data: st.DataObject) -> AdderGraph:
    n_in = data.draw(st.integers(1, 4))
    ranges = [
        (lo, lo + data.draw(st.integers(0, 300)))
        for lo in data.draw(st.lists(st.integers(-200, 200), min_size=n_in, max_size=n_in))
    ]
    g = AdderGraph.with_inputs(ranges)
    for _ in range(data.draw(st.integers(1, 12))):
        k = len(g.nodes)
        kind = data.draw(st.sampled_from(["add", "shr", "clamp", "const", "max", "min"]))
        a = data.draw(st.integers(0, k - 1))
        if kind == "add":
            b = data.draw(st.integers(0, k - 1))
            g.add(
                a,
                b,
                data.draw(st.integers(0, 5)),
                data.draw(st.integers(0, 5)),
                nb=data.draw(st.booleans()),
            )
        elif kind in ("max", "min"):
            b = data.draw(st.integers(0, k - 1))
            (g.max if kind == "max" else g.min)(a, b)
        elif kind == "shr":
            g.shr(a, data.draw(st.integers(-3, 6)))
        elif kind == "clamp":
            lo = data.draw(st.integers(-500, 500))
            g.clamp(a, lo, lo + data.draw(st.integers(0, 500)))
        else:
            g.const(data.draw(st.integers(-1000, 1000)))
    g.outputs = list(range(len(g.nodes)))
    return g


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_graphs_stay_in_range_and_round_trip_text(data: st.DataObject) -> None:
    g = _random_graph(data)
    rng = np.random.default_rng(0)
    x = np.stack([rng.integers(n.lo, n.hi, 64, endpoint=True) for n in g.nodes[: g.n_inputs]], 1)
    g.check_ranges(x)
    h = AdderGraph.from_text(g.to_text())
    assert h.to_text() == g.to_text()
    assert np.array_equal(h.evaluate(x), g.evaluate(x))


def test_huge_values_use_exact_python_ints() -> None:
    g = AdderGraph.with_inputs([(-(2**40), 2**40)])
    big = g.add(0, 0, 30, 0)
    g.outputs = [big]
    assert g.evaluate([[2**40]]).tolist() == [[2**70 + 2**40]]


def test_input_outside_declared_range_is_rejected() -> None:
    g = AdderGraph.with_inputs([(0, 3)])
    g.outputs = [0]
    with pytest.raises(ValueError, match="outside"):
        g.evaluate([[4]])
