"""The streaming CNN top against the golden model, in Amaranth's simulator.

Small random CNNs go through the real compiler (IR -> quantize -> csd -> lower), so every layer
kind's adder graph is the one the golden model runs: conv (padding, stride), max and average
pools, a residual add whose branches have different delays, flatten and dense. Images are
streamed one pixel per clock, back to back and with gaps; every layer's stream must equal
:meth:`LoweredNetwork.evaluate_layers` in order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from amaranth.sim import Simulator
from conftest import build_conv
from conftest import compile_graph as golden_model

from nnlcc.errors import BadInputError
from nnlcc.hdl.stream import StreamPlan, StreamTop
from nnlcc.hdl.top import StreamStrategy, VectorStrategy, top_for
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import (
    AddLayer,
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    Layer,
    MatrixGraph,
    PoolLayer,
)
from nnlcc.ir.window import Window
from nnlcc.passes import quantize as _quantize  # noqa: F401  (registers quantize, csd)


def conv(
    name: str, image: tuple[int, int, int], cout: int, window: Window, rng: np.random.Generator
) -> ConvLayer:
    return build_conv(name, image, cout, rng, window=window, weight_std=0.5, bias_std=0.2)


def compile_graph(graph: MatrixGraph, rng: np.random.Generator) -> LoweredNetwork:
    return golden_model(graph, "quantize,csd", rng.uniform(0, 1, size=(64, graph.input_size)))


def cnn_chain(seed: int = 0) -> LoweredNetwork:
    """conv 3x3 pad 1 -> max pool 2 -> conv 3x3 stride 2 pad 1 -> avg pool 1x2 -> flatten ->
    dense, on a 2-channel 6x7 image (odd width: floor-mode pools drop a column)."""
    rng = np.random.default_rng(seed)
    c1 = conv("c1", (2, 6, 7), 3, Window((3, 3), (1, 1), (1, 1, 1, 1)), rng)
    p1 = PoolLayer("p1", "max", (3, 6, 7), Window((2, 2), (2, 2)))
    c2 = conv("c2", (3, 3, 3), 4, Window((3, 3), (2, 2), (1, 1, 1, 1)), rng)
    p2 = PoolLayer("p2", "avg", (4, 2, 2), Window((1, 2)))
    fl = FlattenLayer("fl", (4, 2, 1))
    fc = DenseLayer("fc", rng.normal(0, 0.5, size=(5, 8)), rng.normal(0, 0.1, size=5))
    layers: list[Layer] = [c1, p1, c2, p2, fl, fc]
    g = MatrixGraph("chain", "x", 2 * 6 * 7, "fc", layers, input_shape=(2, 6, 7))
    return compile_graph(g, rng)


def cnn_residual(seed: int = 1) -> LoweredNetwork:
    """A ResNet basic block: stem conv, then two 3x3 convs added to the stem's output (the skip
    branch waits in the join FIFO), then a 3x3 average pool and dense."""
    rng = np.random.default_rng(seed)
    img = (3, 5, 6)
    stem = conv("stem", (1, 5, 6), 3, Window((1, 1)), rng)
    a = conv("a", img, 3, Window((3, 3), (1, 1), (1, 1, 1, 1)), rng)
    b = conv("b", img, 3, Window((3, 3), (1, 1), (1, 1, 1, 1)), rng)
    b.relu = False
    add = AddLayer("add", ("b", "stem"), img, relu=True)
    pool = PoolLayer("gap", "avg", img, Window((5, 6)))
    fl = FlattenLayer("fl", (3, 1, 1))
    fc = DenseLayer("fc", rng.normal(0, 0.5, size=(4, 3)), rng.normal(0, 0.1, size=4))
    layers: list[Layer] = [stem, a, b, add, pool, fl, fc]
    g = MatrixGraph("res", "x", 30, "fc", layers, input_shape=(1, 5, 6))
    return compile_graph(g, rng)


def cnn_downsample(seed: int = 2) -> LoweredNetwork:
    """A ResNet downsampling block on a sparse stream (after a max pool): main branch
    3x3 stride 2 then 3x3, skip branch 1x1 stride 2, added, flattened, dense."""
    rng = np.random.default_rng(seed)
    stem = conv("stem", (1, 8, 8), 3, Window((3, 3), (1, 1), (1, 1, 1, 1)), rng)
    pool = PoolLayer("pool", "max", (3, 8, 8), Window((2, 2), (2, 2)))
    a = conv("a", (3, 4, 4), 4, Window((3, 3), (2, 2), (1, 1, 1, 1)), rng)
    b = conv("b", (4, 2, 2), 4, Window((3, 3), (1, 1), (1, 1, 1, 1)), rng)
    b.relu = False
    skip = conv("skip", (3, 4, 4), 4, Window((1, 1), (2, 2)), rng)
    skip.relu = False
    skip.inputs = ("pool",)
    add = AddLayer("add", ("b", "skip"), (4, 2, 2), relu=True)
    fl = FlattenLayer("fl", (4, 2, 2))
    fc = DenseLayer("fc", rng.normal(0, 0.5, size=(3, 16)), rng.normal(0, 0.1, size=3))
    layers: list[Layer] = [stem, pool, a, b, skip, add, fl, fc]
    g = MatrixGraph("down", "x", 64, "fc", layers, input_shape=(1, 8, 8))
    return compile_graph(g, rng)


def run_top(net: LoweredNetwork, x_int: np.ndarray, gap: int, **top: Any) -> list[list[list[int]]]:
    """Stream the images (``gap`` idle clocks after every frame); return every layer's valid
    outputs in order. The top asserts that no join FIFO over- or underflows; ``top`` are more
    :class:`StreamTop` options."""
    dut = StreamTop(net, assertions=True, **top)
    c, h, w = net.input_shape
    pixels = net._stored_input(x_int).reshape(-1, c)
    feed: list[int | None] = []
    for f in range(len(x_int)):
        feed.extend(range(f * h * w, (f + 1) * h * w))
        feed.extend([None] * gap)
    feed.extend([None] * 200)
    n_layers = len(net.layers)
    seen: list[list[list[int]]] = [[] for _ in range(n_layers)]

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        for k in feed:
            if k is None:
                ctx.set(dut.valid_in, 0)
            else:
                ctx.set(dut.x, [int(v) for v in pixels[k]])
                ctx.set(dut.valid_in, 1)
            for i in range(n_layers):
                if ctx.get(getattr(dut, f"l{i}_valid")):
                    y = ctx.get(getattr(dut, f"l{i}_y"))
                    seen[i].append([int(y[j]) for j in range(dut.plan.out_counts[i])])
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


def check(net: LoweredNetwork, n: int, gap: int, seed: int = 3, **top: Any) -> None:
    fmt = net.input_fmt
    x = np.random.default_rng(seed).integers(fmt.lo, fmt.hi + 1, size=(n, net.n_inputs))
    x[0] = fmt.hi  # saturating corners
    x[1] = fmt.lo
    seen = run_top(net, x, gap, **top)
    golden = net.evaluate_layers(x)
    for i, (layer, out) in enumerate(zip(net.layers, golden, strict=True)):
        exp = np.asarray(out).reshape(-1, out.shape[-1]).tolist()
        assert len(seen[i]) == len(exp), f"layer {layer.name}: {len(seen[i])} of {len(exp)}"
        for k, (got, want) in enumerate(zip(seen[i], exp, strict=True)):
            assert got == want, f"layer {i} ({layer.name}) output {k}: {got} != {want}"


@pytest.mark.parametrize("gap", [0, 5])
def test_chain_matches_golden(gap: int) -> None:
    net = cnn_chain()
    assert isinstance(top_for(net), StreamStrategy)
    assert [layer.kind for layer in net.layers] == [
        "conv",
        "pool",
        "conv",
        "pool",
        "flatten",
        "dense",
    ]
    check(net, 4, gap)


@pytest.mark.parametrize("gap", [0, 3])
def test_residual_block_matches_golden(gap: int) -> None:
    check(cnn_residual(), 4, gap)


@pytest.mark.parametrize("gap", [0, 3])
def test_line_buffers_and_fifos_in_memories_match_golden(gap: int) -> None:
    """Every line buffer and FIFO a memory (threshold 1 bit): same streams as registers."""
    net = cnn_residual()
    plan = StreamPlan(net)
    rams = [g.ram_runs(24, 1) for g in plan.windows.values()]
    assert rams.count([0, 1]) == 2  # both 3x3 convs: two line buffers each in memories
    check(net, 3, gap, ram_bits=1)


def test_fifo_depths_are_exact() -> None:
    """The schedule's depths pass with back-to-back frames; one entry less overflows."""
    net = cnn_residual()
    depths = StreamPlan(net).fifo_depths()
    assert list(depths) == [3]
    check(net, 3, 0, fifo_depths=depths)
    i, (da, db) = next(iter(depths.items()))
    shallow = (da - 1, db) if da >= db else (da, db - 1)
    with pytest.raises(AssertionError, match="overflows"):
        check(net, 3, 0, fifo_depths={i: shallow})


@pytest.mark.parametrize("gap", [0, 7])
def test_downsample_block_on_sparse_stream_matches_golden(gap: int) -> None:
    check(cnn_downsample(), 4, gap)


def test_image_output_network_matches_golden() -> None:
    """No flatten: the top's output is itself a pixel stream (an average pool's)."""
    rng = np.random.default_rng(4)
    c1 = conv("c1", (2, 5, 4), 3, Window((3, 3), (1, 1), (1, 1, 1, 1)), rng)
    p1 = PoolLayer("p1", "avg", (3, 5, 4), Window((3, 3), (2, 2), (1, 1, 1, 1)))
    g = MatrixGraph("img", "x", 40, "p1", [c1, p1], input_shape=(2, 5, 4))
    check(compile_graph(g, rng), 3, 0)


def test_line_buffer_bits_per_window_layer() -> None:
    plan = StreamPlan(cnn_chain())
    bits = plan.line_buffer_bits()
    assert set(bits) == {"c1", "p1", "c2", "p2"}
    # c1: (3 - 1) * 7 + 3 - 1 = 16 pixels of 2 channels; p2 (1x2 on 2 columns): 1 pixel
    assert bits["c1"] == 16 * 2 * plan.x_shapes[0].width
    assert bits["p2"] == 1 * 4 * plan.x_shapes[3].width


def test_vector_network_is_not_streaming() -> None:
    rng = np.random.default_rng(0)
    fc = DenseLayer("fc", rng.normal(size=(3, 4)), np.zeros(3))
    net = compile_graph(MatrixGraph("mlp", "x", 4, "fc", [fc]), rng)
    assert isinstance(top_for(net), VectorStrategy)
    with pytest.raises(ValueError, match="image input"):
        StreamPlan(net)


def test_unsupported_padding_names_the_window() -> None:
    rng = np.random.default_rng(0)
    c1 = conv("c1", (1, 4, 4), 2, Window((3, 3), (1, 1), (2, 2, 2, 2)), rng)
    net = compile_graph(MatrixGraph("pad", "x", 16, "c1", [c1], input_shape=(1, 4, 4)), rng)
    with pytest.raises(BadInputError, match="pads too large"):
        StreamPlan(net)
