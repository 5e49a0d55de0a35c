"""Structured pruning: exact shrinking, the magnitude pass, and what it refuses."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nnlcc.driver import EXAMPLE_DATA, EXAMPLE_MODEL, load_data, load_model, run_passes
from nnlcc.errors import BadInputError, PassOptionError, UnsupportedModelError
from nnlcc.ir.family import ECP5
from nnlcc.ir.lower import lower_network
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.passes import PassContext, parse_pipeline
from nnlcc.passes.prune import KeptColumns, remove_columns, shrink, used_columns

ROOT = EXAMPLE_MODEL.parent


def mlp(sizes: list[int], seed: int = 0) -> MatrixGraph:
    rng = np.random.default_rng(seed)
    layers = [
        DenseLayer(
            name=f"fc{i + 1}",
            weight=rng.normal(size=(n_out, n_in)),
            bias=rng.normal(size=n_out),
            relu=i < len(sizes) - 2,
        )
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes))
    ]
    return MatrixGraph("t", "x", sizes[0], "y", layers)


def test_shrink_removes_dead_and_constant_neurons_exactly() -> None:
    g = mlp([6, 5, 4, 3])
    g.layers[1].weight[:, 2] = 0.0  # neuron 2 of fc1 feeds nothing
    g.layers[0].weight[4, :] = 0.0  # neuron 4 of fc1 outputs relu(bias): a constant
    g.layers[0].bias[4] = 0.7
    g.layers[1].weight[1, :] = 0.0  # neuron 1 of fc2 outputs relu(-0.3) = 0: dead too
    g.layers[1].bias[1] = -0.3
    x = np.random.default_rng(1).normal(size=(50, 6))
    want = g.forward_float(x)
    assert shrink(g) == 3
    assert [layer.shape for layer in g.layers] == [(3, 6), (3, 3), (3, 3)]
    np.testing.assert_allclose(g.forward_float(x), want, rtol=1e-12, atol=1e-12)
    assert g.layers[1].notes[KeptColumns].indices == [0, 1, 3]  # original numbers of fc1's neurons
    g.verify()


def test_input_columns_are_zeroed_not_removed() -> None:
    g = mlp([6, 4, 3])
    remove_columns(g, 0, [1, 4])
    assert g.input_size == 6 and g.layers[0].shape == (4, 6)
    assert used_columns(g.layers[0].weight).tolist() == [0, 2, 3, 5]
    assert g.layers[0].notes[KeptColumns].indices == [0, 2, 3, 5]


def test_shrink_refuses_to_remove_a_whole_layer() -> None:
    g = mlp([4, 3, 2])
    g.layers[1].weight[:] = 0.0
    with pytest.raises(BadInputError, match="every input of layer fc2"):
        shrink(g)


def test_prune_pass_on_digits_shrinks_and_lowers_exactly() -> None:
    graph = load_model(EXAMPLE_MODEL)
    data = load_data(graph, EXAMPLE_MODEL, EXAMPLE_DATA, 0)
    run_passes(graph, parse_pipeline("prune{sparsity=0.5},quantize,csd"), data)
    fc1, fc2 = graph.layers
    assert isinstance(fc1, DenseLayer) and isinstance(fc2, DenseLayer)
    assert fc1.shape == (8, 64) and fc2.shape == (10, 8)  # half the hidden neurons went
    assert len(used_columns(fc1.weight)) == 32  # half the pixels (zero columns)
    assert len(fc1.notes[KeptColumns].indices) == 32 and len(fc2.notes[KeptColumns].indices) == 8
    net = lower_network(graph)
    x = net.quantize_input(data.x_test[:40])
    # the golden model computes the implemented matrices: compare layer 1 before rounding
    h = net.layers[0].graph.evaluate(x)
    ref = net.layers[0].out_fmt.quantize(fc1.forward_implemented(net.input_fmt.to_real(x)))
    assert np.max(np.abs(h - ref)) <= 1


def test_prune_ranks_by_activation_so_blank_pixels_go_first() -> None:
    graph = load_model(EXAMPLE_MODEL)
    data = load_data(graph, EXAMPLE_MODEL, EXAMPLE_DATA, 0)
    blank = np.nonzero(np.all(data.x_calib == 0, axis=0))[0]
    assert blank.size == 4  # digits has 4 pixels that are blank in every training image
    run_passes(graph, parse_pipeline("prune{sparsity=0.0,input_sparsity=0.0625}"), data)
    first = graph.layers[0]
    assert isinstance(first, DenseLayer) and first.shape == (16, 64)
    assert set(range(64)) - set(used_columns(first.weight).tolist()) == set(blank.tolist())


@pytest.mark.parametrize(
    "text", ["prune{sparsity=1.0}", "prune{sparsity=-0.1}", "prune{score=random}"]
)
def test_bad_prune_options(text: str) -> None:
    with pytest.raises(PassOptionError):
        parse_pipeline(text)


def test_prune_after_matrix_pass_is_refused() -> None:
    graph = load_model(EXAMPLE_MODEL)
    data = load_data(graph, EXAMPLE_MODEL, EXAMPLE_DATA, 0)
    run_passes(graph, parse_pipeline("quantize,csd"), data)
    (p,) = parse_pipeline("prune")
    with pytest.raises(PassOptionError, match="before share and the matrix pass"):
        p.apply(graph, PassContext(data.x_calib, ECP5))


def test_prune_refuses_cnns() -> None:
    cnn = ROOT / "digits_cnn.onnx"
    if not cnn.is_file():
        pytest.skip("no CNN example in this tree")
    graph = load_model(cnn)
    (p,) = parse_pipeline("prune")
    with pytest.raises(UnsupportedModelError, match="MLPs"):
        p.apply(graph, PassContext(np.zeros((2, graph.input_size)), ECP5))
