"""Shared tiny-model builders for every test package.

Each builder is a plain function here and a session fixture of the same purpose, so tests ask
for it by name (or, in module-level helpers, import it from ``conftest``).  The torch-made CNNs use :mod:`nnlcc.examples.onnx_export`, the
same export the shipped examples and the benchmarks use.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.family import ECP5, Family
from nnlcc.ir.lower import lower_network
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import (
    AddLayer,
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    Layer,
    MatrixGraph,
    PoolLayer,
    conv_matrix,
)
from nnlcc.ir.recurrent import RecurrentLayer, gate_count
from nnlcc.ir.window import Window
from nnlcc.passes import PassContext, parse_pipeline

#: a 3x3 window, stride 1, one pixel of zero padding on every side
SAME_3X3 = Window((3, 3), (1, 1), (1, 1, 1, 1))


def build_conv(
    name: str,
    image: tuple[int, int, int],
    cout: int,
    rng: np.random.Generator,
    *,
    window: Window = SAME_3X3,
    relu: bool = True,
    weight_std: float | None = None,
    bias_std: float = 0.1,
    decimals: int | None = None,
) -> ConvLayer:
    """A conv layer with random weights (std ``weight_std``, default 1/sqrt(fan-in)), drawn
    weights first, then the bias; ``decimals`` rounds both (compact golden files)."""
    cin = image[0]
    z = rng.normal(size=(cout, cin, *window.kernel))
    w4 = z * weight_std if weight_std is not None else z / math.sqrt(cin * math.prod(window.kernel))
    bias = rng.normal(size=cout) * bias_std
    if decimals is not None:
        w4, bias = np.round(w4, decimals), np.round(bias, decimals)
    return ConvLayer(name, conv_matrix(w4), bias, relu=relu, image=image, window=window)


def compile_graph(
    graph: MatrixGraph,
    pipeline: str = "quantize,csd",
    calibration: np.ndarray | None = None,
    family: Family = ECP5,
) -> LoweredNetwork:
    """Run ``pipeline`` on ``graph`` (calibrated on ``calibration``, default 64 seeded uniform
    inputs in [0, 1); for a board of ``family``) and lower it: the golden model."""
    graph.verify()
    if calibration is None:
        calibration = np.random.default_rng(0).uniform(0, 1, size=(64, graph.input_size))
    ctx = PassContext(calibration, family)
    for p in parse_pipeline(pipeline):
        p.apply(graph, ctx)
    graph.verify()
    return lower_network(graph)


def recurrent_graph(
    cell: str, steps: int = 4, inputs: int = 3, hidden: int = 5, seed: int = 0
) -> MatrixGraph:
    """A seeded LSTM or GRU over ``steps`` steps, then a dense layer of 3 outputs."""
    rng = np.random.default_rng(seed)
    g = gate_count(cell) * hidden
    w = DenseLayer("rnn_W", rng.normal(size=(g, inputs)) * 0.8, rng.normal(size=g) * 0.3)
    r = DenseLayer("rnn_R", rng.normal(size=(g, hidden)) * 0.5, np.zeros(g))
    if cell == "gru":
        r.bias[2 * hidden :] = rng.normal(size=hidden) * 0.3
    rnn = RecurrentLayer("rnn", cell, steps, w, r)  # type: ignore[arg-type]
    fc = DenseLayer("fc", rng.normal(size=(3, hidden)), rng.normal(size=3) * 0.1)
    return MatrixGraph("seq", "x", steps * inputs, "fc", [rnn, fc], input_shape=(steps, inputs))


def build_tiny_cnn(seed: int = 0) -> MatrixGraph:
    """conv, max pool (padded), conv, conv, residual add, global average pool, flatten, dense
    on a 2x6x6 image: every layer kind once."""
    rng = np.random.default_rng(seed)
    layers = [
        build_conv("c1", (2, 6, 6), 4, rng),
        PoolLayer("p1", "max", (4, 6, 6), Window((2, 2), (2, 2), (1, 1, 1, 1))),
        build_conv("c2", (4, 4, 4), 4, rng),
        build_conv("c3", (4, 4, 4), 4, rng, relu=False),
        AddLayer("a1", ("c3", "p1"), (4, 4, 4), relu=True),
        PoolLayer("gap", "avg", (4, 4, 4), Window((3, 3))),
        FlattenLayer("fl", (4, 2, 2)),
        DenseLayer("fc", rng.normal(size=(3, 16)) * 0.4, rng.normal(size=3) * 0.1),
    ]
    return MatrixGraph("tiny", "x", 2 * 36, "y", layers, input_shape=(2, 6, 6))  # type: ignore[arg-type]


def small_stream_cnn(seed: int = 4) -> LoweredNetwork:
    """conv 3x3 pad 1, max pool 2, a residual block (join FIFOs), flatten, dense on 1x6x6."""
    rng = np.random.default_rng(seed)
    pad = Window((3, 3), (1, 1), (1, 1, 1, 1))
    stem = build_conv("stem", (1, 6, 6), 2, rng, window=pad, weight_std=0.5, bias_std=0.2)
    pool = PoolLayer("pool", "max", (2, 6, 6), Window((2, 2), (2, 2)))
    a = build_conv("a", (2, 3, 3), 2, rng, window=pad, weight_std=0.5, bias_std=0.2)
    a.relu = False
    add = AddLayer("add", ("a", "pool"), (2, 3, 3), relu=True)
    fl = FlattenLayer("fl", (2, 3, 3))
    fc = DenseLayer("fc", rng.normal(0, 0.5, size=(3, 18)), rng.normal(0, 0.1, size=3))
    layers: list[Layer] = [stem, pool, a, add, fl, fc]
    g = MatrixGraph("small", "x", 36, "fc", layers, input_shape=(1, 6, 6))
    return compile_graph(g, "quantize,csd", rng.uniform(0, 1, size=(64, 36)))


def wide_line_graph(seed: int = 5, width: int = 40) -> MatrixGraph:
    """A CNN whose second conv's line buffers exceed the memory threshold
    (:data:`nnlcc.hdl.line_buffer.LINE_RAM_BITS`): 16 channels of 8 bits on rows of ``width``
    pixels (two 38-pixel gaps of 128-bit pixels, 4,864 bits each, for ``width`` 40); conv
    3x3 1->16, conv 3x3 16->2, average pool 4x4, flatten, dense on a 1x8x``width`` image."""
    rng = np.random.default_rng(seed)
    pad = Window((3, 3), (1, 1), (1, 1, 1, 1))
    c1 = build_conv("c1", (1, 8, width), 16, rng, window=pad, weight_std=0.5, bias_std=0.2)
    c2 = build_conv("c2", (16, 8, width), 2, rng, window=pad, weight_std=0.2, bias_std=0.2)
    pool = PoolLayer("pool", "avg", (2, 8, width), Window((4, 4), (4, 4)))
    flat = (2, 2, width // 4)
    fl = FlattenLayer("fl", flat)
    n = math.prod(flat)
    fc = DenseLayer("fc", rng.normal(0, 0.3, size=(4, n)), rng.normal(0, 0.1, size=4))
    layers: list[Layer] = [c1, c2, pool, fl, fc]
    return MatrixGraph("wide", "x", 8 * width, "fc", layers, input_shape=(1, 8, width))


def wide_line_cnn(seed: int = 5, width: int = 40) -> LoweredNetwork:
    """:func:`wide_line_graph` compiled with ``quantize,csd`` and lowered."""
    g = wide_line_graph(seed, width)
    rng = np.random.default_rng(seed + 1)
    return compile_graph(g, "quantize,csd", rng.uniform(0, 1, size=(64, g.input_size)))


def shared_graph(rng: np.random.Generator, n_in: int = 4, n_nodes: int = 40) -> AdderGraph:
    """Sums that reuse a few early values many times, at many depths (high fanout, long
    delay lines), with SHR wiring, MAX/MIN and clamps among them."""
    g = AdderGraph.with_inputs([(-64, 63)] * n_in)
    for _ in range(n_nodes):
        n = len(g.nodes)
        hot = int(rng.integers(0, min(n, n_in + 4)))  # an early value, read again and again
        other = int(rng.integers(0, n))
        r = rng.random()
        if r < 0.55:
            g.add(
                hot, other, int(rng.integers(0, 3)), int(rng.integers(0, 3)), nb=rng.random() < 0.3
            )
        elif r < 0.7:
            g.shr(hot if rng.random() < 0.5 else other, int(rng.integers(-1, 3)))
        elif r < 0.85:
            (g.max if rng.random() < 0.5 else g.min)(hot, other)
        else:
            x = g.nodes[other]
            g.clamp(other, x.lo // 2, max(x.lo // 2, x.hi // 2))
        if max(abs(g.nodes[-1].lo), abs(g.nodes[-1].hi)) > 1 << 30:
            g.nodes.pop()
    g.outputs = [int(v) for v in rng.integers(n_in, len(g.nodes), size=int(rng.integers(2, 8)))]
    return g


def build_tiny_mlp(sizes: tuple[int, ...] = (6, 5, 3), seed: int = 1) -> LoweredNetwork:
    """A seeded ReLU MLP of the given layer sizes, quantized to 6 bits and CSD-coded (5-bit
    weights): small enough that a whole self-test bitstream fits an iCE40UP5K."""
    rng = np.random.default_rng(seed)
    layers = [
        DenseLayer(
            name=f"fc{i + 1}",
            weight=rng.normal(0.0, 0.6, size=(n_out, n_in)),
            bias=rng.normal(0.0, 0.1, size=n_out),
            relu=i < len(sizes) - 2,
        )
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes))
    ]
    graph = MatrixGraph(
        name="tiny", input_name="x", input_size=sizes[0], output_name="y", layers=layers
    )
    calib = rng.uniform(-1.0, 1.0, size=(256, sizes[0]))
    return compile_graph(graph, "quantize{input_bits=6,act_bits=6},csd{weight_bits=5}", calib)


def _torch_cnns() -> dict[str, tuple[Any, tuple[int, int, int]]]:
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class ResidualCnn(nn.Module):  # type: ignore[misc,name-defined]
        """conv-bn-relu, a residual block (conv-bn-relu-conv-bn + skip, relu), max pool with
        padding, a strided conv, average pool with padding, global average pool, linear."""

        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn0 = nn.BatchNorm2d(8)
            self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(8)
            self.pool = nn.MaxPool2d(3, stride=2, padding=1)
            self.down = nn.Conv2d(8, 12, (3, 2), stride=(2, 1), padding=(1, 0))
            self.avg = nn.AvgPool2d(2, stride=1, padding=1)
            self.fc = nn.Linear(12, 5)

        def forward(self, x: Any) -> Any:
            x = torch.relu(self.bn0(self.stem(x)))
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            x = torch.relu(x + y)
            x = self.avg(torch.relu(self.down(self.pool(x))))
            x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
            return self.fc(x)

    class FlattenCnn(nn.Module):  # type: ignore[misc,name-defined]
        """A conv whose 3x3 output image is flattened into a linear layer (channel-major)."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, stride=2)
            self.fc = nn.Linear(4 * 3 * 3, 6)

        def forward(self, x: Any) -> Any:
            return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))

    return {"residual": (ResidualCnn, (3, 9, 9)), "flatten": (FlattenCnn, (2, 7, 7))}


def export_torch_cnn(kind: str, path: Path, seed: int = 0) -> Path:
    """A small torch CNN (``residual`` on 3x9x9 or ``flatten`` on 2x7x7) with seeded random
    weights and batch-norm statistics, written as ONNX with its BatchNormalization nodes."""
    import torch

    from nnlcc.examples.onnx_export import export_onnx, randomize_batchnorm

    cls, shape = _torch_cnns()[kind]
    model = cls()
    torch.manual_seed(seed)
    for p in model.parameters():
        with torch.no_grad():
            p.copy_(torch.randn(p.shape) * (1.0 / np.sqrt(max(p[0].numel(), 1))))
    randomize_batchnorm(model, seed)
    return export_onnx(model.eval(), shape, path, keep_batchnorm=True)


@pytest.fixture(scope="session")
def conv_layer() -> Callable[..., ConvLayer]:
    return build_conv


@pytest.fixture(scope="session")
def golden_model() -> Callable[..., LoweredNetwork]:
    """:func:`compile_graph`: passes + lowering of a hand-built graph."""
    return compile_graph


@pytest.fixture(scope="session")
def tiny_cnn() -> Callable[[int], MatrixGraph]:
    return build_tiny_cnn


@pytest.fixture(scope="session")
def make_tiny_network() -> Callable[..., LoweredNetwork]:
    return build_tiny_mlp


@pytest.fixture(scope="session")
def tiny_net() -> LoweredNetwork:
    return build_tiny_mlp()


@pytest.fixture(scope="session")
def torch_cnn() -> Callable[..., Path]:
    """:func:`export_torch_cnn` (skips the test when torch is not installed)."""
    pytest.importorskip("torch")
    return export_torch_cnn
