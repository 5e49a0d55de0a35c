"""Property tests of every matrix pass (csd, lcc, share + csd/lcc) on random matrices: the
adder graph computes the exact rational product of the code, node ranges hold the interval
bounds and widths hold the ranges; a sample goes through Verilator bit-exact."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from exactness import PIPELINES, check_exact, coded_graph, random_matrix

from nnlcc.errors import NnlccError
from nnlcc.ir.family import ECP5


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, str]:
    rows = draw(st.integers(1, 64))
    cols = draw(st.integers(1, 64))
    decades = draw(st.floats(0.0, 12.0))
    seed = draw(st.integers(0, 2**32 - 1))
    w = random_matrix(np.random.default_rng(seed), rows, cols, decades)
    template = draw(st.sampled_from(PIPELINES))
    pipeline = template.format(
        bits=draw(st.integers(2, 16)),
        sqnr=draw(st.integers(10, 60)),
        k=draw(st.integers(1, max(1, cols))),
    )
    return w, pipeline


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_adder_graph_is_the_exact_product(case: tuple[np.ndarray, str]) -> None:
    w, pipeline = case
    try:
        g = coded_graph(w, pipeline)
    except NnlccError:  # options this matrix cannot take (e.g. more clusters than columns)
        reject()
    check_exact(g)


@pytest.mark.parametrize("template", PIPELINES)
def test_every_pipeline_on_a_hard_matrix(template: str) -> None:
    """Each pipeline at least once: full dynamic range, zero row and column, powers of two."""
    w = random_matrix(np.random.default_rng(7), 24, 17, 12.0)
    w[3] = 0.0
    w[:, 5] = 0.0
    w[0, :4] = [1.0, -(2.0**-10), 2.0**10, 0.5]
    check_exact(coded_graph(w, template.format(bits=8, sqnr=40, k=4)))


@pytest.mark.slow
def test_sample_is_bit_exact_in_verilator(tmp_path: Path) -> None:
    """One network of three layers coded by csd, lcc and share+csd, simulated bit-exact."""
    from nnlcc.ir.lower import lower_network
    from nnlcc.ir.matrix import DenseLayer, MatrixGraph
    from nnlcc.passes import PassContext, parse_pipeline
    from nnlcc.sim.runner import available_simulators
    from nnlcc.sim.verify import verify_network

    if "verilator" not in available_simulators():
        pytest.skip("verilator not usable here")
    rng = np.random.default_rng(3)
    sizes = [9, 12, 7, 5]
    layers = [
        DenseLayer(
            f"fc{i}",
            random_matrix(rng, sizes[i + 1], sizes[i], 6.0) * 1e-3,
            np.zeros(sizes[i + 1]),
            relu=i < 2,
        )
        for i in range(3)
    ]
    g = MatrixGraph("sample", "x", sizes[0], "y", layers)
    x = rng.uniform(-1, 1, size=(64, sizes[0]))
    (quant,) = parse_pipeline("quantize{act_bits=10}")
    quant.apply(g, PassContext(x, ECP5))
    h = x
    for layer, text in zip(
        layers, ["csd{weight_bits=7}", "lcc{sqnr_db=35}", "share{clusters=3},csd"], strict=True
    ):
        sub = MatrixGraph("sample", "x", layer.shape[1], "y", [layer])
        for p in parse_pipeline(text):
            p.apply(sub, PassContext(h, ECP5))  # this layer's own inputs calibrate it
        h = layer.forward_float(h)
    net = lower_network(g)
    vectors = np.concatenate(
        [
            net.quantize_input(x),
            rng.integers(net.input_fmt.lo, net.input_fmt.hi, (200, sizes[0]), endpoint=True),
        ]
    )
    res = verify_network(net, vectors, tmp_path, simulator="verilator")
    assert res.bit_exact and res.vectors == len(vectors)
