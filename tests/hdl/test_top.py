"""The top-level strategy: which top a network gets, and what each strategy answers (stimuli in
drive order, testbench, self-test refusal, estimate, report facts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnlcc.boards.selftest import SelfTest
from nnlcc.errors import BadInputError
from nnlcc.hdl.top import StreamStrategy, VectorStrategy, top_class, top_for
from nnlcc.ir.family import ECP5
from nnlcc.ir.lower import lower_network
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import ConvLayer, DenseLayer, FlattenLayer, MatrixGraph, conv_matrix
from nnlcc.ir.window import Window
from nnlcc.passes import PassContext, parse_pipeline
from nnlcc.passes import quantize as _quantize  # noqa: F401  (registers quantize, csd)


def _compile(graph: MatrixGraph, seed: int = 0) -> LoweredNetwork:
    graph.verify()
    rng = np.random.default_rng(seed)
    ctx = PassContext(rng.uniform(0, 1, size=(64, graph.input_size)), ECP5)
    for p in parse_pipeline("quantize,csd"):
        p.apply(graph, ctx)
    return lower_network(graph)


def mlp() -> LoweredNetwork:
    rng = np.random.default_rng(1)
    fc1 = DenseLayer("fc1", rng.normal(size=(4, 5)), rng.normal(0, 0.1, size=4), relu=True)
    fc2 = DenseLayer("fc2", rng.normal(size=(3, 4)), np.zeros(3))
    return _compile(MatrixGraph("mlp", "x", 5, "fc2", [fc1, fc2]))


def cnn() -> LoweredNetwork:
    """2 channels of 3x4 pixels -> a 3x3 conv (padding 1) -> flatten -> dense."""
    rng = np.random.default_rng(2)
    image = (2, 3, 4)
    c1 = ConvLayer(
        name="c1",
        weight=conv_matrix(rng.normal(0, 0.5, size=(3, 2, 3, 3))),
        bias=rng.normal(0, 0.2, size=3),
        relu=True,
        image=image,
        window=Window((3, 3), (1, 1), (1, 1, 1, 1)),
    )
    fl = FlattenLayer("fl", (3, 3, 4))
    fc = DenseLayer("fc", rng.normal(0, 0.5, size=(2, 36)), np.zeros(2))
    return _compile(MatrixGraph("cnn", "x", 24, "fc", [c1, fl, fc], input_shape=image))


def inputs(net: LoweredNetwork, n: int, seed: int = 3) -> np.ndarray:
    fmt = net.input_fmt
    rng = np.random.default_rng(seed)
    return rng.integers(fmt.lo, fmt.hi, size=(n, net.n_inputs), endpoint=True)


def test_top_for_decides_by_input_shape() -> None:
    assert isinstance(top_for(mlp()), VectorStrategy)
    assert isinstance(top_for(cnn()), StreamStrategy)
    assert top_class((784,)) is VectorStrategy
    assert top_class(()) is VectorStrategy
    assert top_class((1, 8, 8)) is StreamStrategy
    assert VectorStrategy.testbench == "nnlcc.sim.tb_network"
    assert StreamStrategy.testbench == "nnlcc.sim.tb_cnn"


def test_vector_stimuli_are_the_vectors_and_every_layers_golden() -> None:
    net = mlp()
    x = inputs(net, 7)
    top = top_for(net)
    arrays = top.stimuli(x)
    assert sorted(arrays) == ["layer0", "layer1", "x"]
    assert np.array_equal(arrays["x"], x)
    for i, out in enumerate(net.evaluate_layers(x)):
        assert np.array_equal(arrays[f"layer{i}"], out)
    assert top.count(arrays) == 7
    assert top.summary_facts == () and top.throughput is None
    assert top.measured_latency({"vectors": 7}) is None and top.layer_facts() == {}


def test_stream_stimuli_are_pixels_in_raster_order_channels_in_parallel() -> None:
    net = cnn()
    c, h, w = net.input_shape
    x = inputs(net, 3)
    top = top_for(net)
    arrays = top.stimuli(x)
    pixels = arrays["pixels"]
    assert pixels.shape == (3 * h * w, c)
    images = x.reshape(3, c, h, w)  # ONNX order: channel planes
    k = 0
    for img in range(3):
        for row in range(h):
            for col in range(w):
                assert pixels[k].tolist() == images[img, :, row, col].tolist(), k
                k += 1
    golden = net.evaluate_layers(x)
    # the conv emits one pixel (3 channels) per row, the dense one vector per image
    assert arrays["layer0"].shape == (3 * h * w, 3)
    assert np.array_equal(arrays["layer0"], np.asarray(golden[0]).reshape(-1, 3))
    assert np.array_equal(arrays["layer2"], golden[2])
    assert top.count(arrays) == 3
    assert top.summary_facts == ("pixels", "clocks_to_last_output")
    assert top.measured_latency({"pixels": 36, "clocks_to_last_output": 50}) == 14
    assert top.measured_latency({"skipped": "--no-verify"}) is None
    assert top.throughput == "one pixel per clock (12 clocks per 2x3x4 image)"
    assert top.layer_facts()["c1"]["kernel"] == [3, 3]


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (lambda x: x[:, :-1], r"expected input images of shape \(n, 24\)"),
        (lambda x: x[:0], "no input images to verify with"),
        (lambda x: x.astype(float), "must be integers"),
        (lambda x: x + 10_000, "outside the input format"),
    ],
)
def test_stimuli_refuse_bad_inputs(bad, match) -> None:  # type: ignore[no-untyped-def]
    net = cnn()
    with pytest.raises(BadInputError, match=match):
        top_for(net).stimuli(bad(inputs(net, 2)))


def test_emit_names_testbench_and_driven_array(tmp_path: Path) -> None:
    vec = top_for(mlp()).emit(tmp_path / "v.v", "vtop")
    assert (vec["testbench"], vec["inputs"], vec["toplevel"]) == (
        "nnlcc.sim.tb_network",
        "x",
        "vtop",
    )
    assert "module vtop" in (tmp_path / "v.v").read_text()
    st = top_for(cnn()).emit(tmp_path / "s.v", "stop")
    assert (st["testbench"], st["inputs"], st["frame_pixels"]) == ("nnlcc.sim.tb_cnn", "pixels", 12)
    assert set(st["line_buffer_bits"]) == {"c1"}


def test_both_tops_have_a_board_selftest(tmp_path: Path) -> None:
    """A CNN's self-test streams images (boards.stream_selftest); the vector SelfTest refuses
    it rather than packing images as vectors."""
    net = cnn()
    assert top_for(net).selftest_refusal is None
    assert top_class((1, 8, 8)).selftest_refusal is None
    assert top_for(mlp()).selftest_refusal is None
    with pytest.raises(ValueError, match="StreamSelfTest"):
        SelfTest(net, inputs(net, 2))
    assert StreamStrategy.estimate_note is None and VectorStrategy.estimate_note is None
    assert "streaming" in StreamStrategy.estimate_design
