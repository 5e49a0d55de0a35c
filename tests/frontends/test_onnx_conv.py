"""CNN frontend: the onnx package's shipped conv/pool/BN models, hand-built nodes against
onnxruntime, a torch residual CNN, and one-line refusals naming node and attribute."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper
from test_onnx import assert_clean, build, ort_run, rand, save

from nnlcc.errors import UnsupportedModelError
from nnlcc.frontends import load_onnx, onnx_reference
from nnlcc.ir.matrix import AddLayer, ConvLayer, FlattenLayer, PoolLayer
from nnlcc.ir.notes import OnnxNodes

TorchCnn = Callable[..., Path]
CONVERTED = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted"


def _shipped(name: str) -> tuple[np.ndarray, np.ndarray]:
    d = CONVERTED / name / "test_data_set_0"
    x = onnx.numpy_helper.to_array(onnx.load_tensor(str(d / "input_0.pb")))
    y = onnx.numpy_helper.to_array(onnx.load_tensor(str(d / "output_0.pb")))
    return x, y


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("test_Conv2d", ["conv"]),
        ("test_Conv2d_no_bias", ["conv"]),
        ("test_Conv2d_padding", ["conv"]),
        ("test_Conv2d_strided", ["conv"]),
        ("test_BatchNorm2d_eval", ["conv"]),  # standalone BN: a diagonal 1x1 conv
        ("test_BatchNorm2d_momentum_eval", ["conv"]),
        ("test_MaxPool2d", ["pool"]),
        ("test_AvgPool2d", ["pool"]),
        ("test_AvgPool2d_stride", ["pool"]),
    ],
)
def test_shipped_models_match_their_outputs(name: str, kinds: list[str]) -> None:
    path = CONVERTED / name / "model.onnx"
    g = load_onnx(path)
    assert [layer.kind for layer in g.layers] == kinds
    x, y = _shipped(name)
    flat = x.reshape(len(x), -1)
    got = g.forward_float(flat)
    np.testing.assert_allclose(got, y.reshape(len(y), -1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, onnx_reference(path, flat), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("test_Conv2d_depthwise", ["'Conv_0' (Conv)", "group=4"]),
        ("test_Conv2d_depthwise_strided", ["'Conv_0' (Conv)", "group=4"]),
        ("test_Conv2d_groups", ["'Conv_0' (Conv)", "group=2"]),
        ("test_Conv2d_dilated", ["'Conv_0' (Conv)", "dilations=[2, 2]"]),
        ("test_MaxPool2d_stride_padding_dilation", ["(MaxPool)", "dilations=[10, 10]"]),
        ("test_Conv1d", ["'Conv_0' (Conv)", "2-D convolutions"]),
        ("test_Conv3d", ["'Conv_0' (Conv)", "2-D convolutions"]),
        ("test_MaxPool3d", ["(MaxPool)", "only 4-D"]),
        ("test_AvgPool3d", ["(AveragePool)", "only 4-D"]),
        ("test_BatchNorm1d_3d_input_eval", ["(BatchNormalization)", "(batch, 5, 3)"]),
        ("test_ConvTranspose2d", ["(ConvTranspose)", "not supported"]),
    ],
)
def test_shipped_unsupported_models(name: str, parts: list[str]) -> None:
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(CONVERTED / name / "model.onnx")
    assert_clean(err, *parts)


def _check_ort(path: Path, in_shape: tuple[int, ...], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(4, *in_shape)).astype(np.float32)
    g = load_onnx(path)
    np.testing.assert_allclose(
        g.forward_float(x.reshape(4, -1)), ort_run(path, x).reshape(4, -1), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "attrs",
    [
        {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
        {"auto_pad": "SAME_LOWER", "strides": [2, 1]},
        {"auto_pad": "VALID"},
        {"pads": [0, 2, 1, 0], "strides": [1, 3]},
    ],
    ids=["same_upper", "same_lower", "valid", "asymmetric"],
)
def test_conv_padding_modes(tmp_path: Path, attrs: dict[str, Any]) -> None:
    rng = np.random.default_rng(1)
    node = helper.make_node("Conv", ["x", "k", "b"], ["y"], name="c", **attrs)
    inits = {"k": rand(rng, 3, 2, 3, 2), "b": rand(rng, 3)}
    _check_ort(save(build([node], inits, ["N", 2, 7, 6], out_rank=4), tmp_path), (2, 7, 6))


@pytest.mark.parametrize(
    "node",
    [
        helper.make_node("MaxPool", ["h"], ["y"], name="p", kernel_shape=[3, 2], strides=[2, 2]),
        helper.make_node(
            "MaxPool", ["h"], ["y"], name="p", kernel_shape=[2, 2], auto_pad="SAME_UPPER"
        ),
        helper.make_node(
            "AveragePool",
            ["h"],
            ["y"],
            name="p",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            count_include_pad=1,
        ),
        helper.make_node(
            "AveragePool", ["h"], ["y"], name="p", kernel_shape=[2, 3], strides=[1, 2]
        ),
        helper.make_node("GlobalAveragePool", ["h"], ["y"], name="p"),
        helper.make_node("GlobalMaxPool", ["h"], ["y"], name="p"),
    ],
    ids=["max", "max_same", "avg_pad", "avg", "gap", "gmp"],
)
def test_pools_after_a_conv(tmp_path: Path, node: onnx.NodeProto) -> None:
    rng = np.random.default_rng(2)
    conv = helper.make_node("Conv", ["x", "k"], ["c"], name="c", pads=[1, 1, 1, 1])
    relu = helper.make_node("Relu", ["c"], ["h"], name="r")
    model = build([conv, relu, node], {"k": rand(rng, 3, 2, 3, 3)}, ["N", 2, 6, 7], out_rank=4)
    path = save(model, tmp_path)
    g = load_onnx(path)
    assert [layer.kind for layer in g.layers] == ["conv", "pool"] and g.layers[0].relu
    _check_ort(path, (2, 6, 7))


def test_conv_bn_folds_and_shared_conv_output_gets_a_diagonal_bn(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    bn = {
        f"{p}{k}": v
        for p in ("a", "b")
        for k, v in {
            "s": rand(rng, 4) + 2,
            "o": rand(rng, 4),
            "m": rand(rng, 4),
            "v": np.abs(rand(rng, 4)) + 0.5,
        }.items()
    }
    nodes = [
        helper.make_node("Conv", ["x", "k1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "as", "ao", "am", "av"], ["n1"], name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "k2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        # c2 is read twice: the BN cannot fold into conv2 and becomes its own layer
        helper.make_node("BatchNormalization", ["c2", "bs", "bo", "bm", "bv"], ["n2"], name="bn2"),
        helper.make_node("Add", ["n2", "c2"], ["y"], name="add"),
    ]
    inits = {"k1": rand(rng, 4, 2, 3, 3), "k2": rand(rng, 4, 4, 3, 3), **bn}
    path = save(build(nodes, inits, ["N", 2, 5, 5], out_rank=4), tmp_path)
    g = load_onnx(path)
    assert [layer.name for layer in g.layers] == ["conv1", "conv2", "bn2", "add"]
    assert g.layers[0].notes[OnnxNodes].nodes == ["conv1", "bn1"] and g.layers[0].relu
    bn2 = g.layers[2]
    assert isinstance(bn2, ConvLayer) and bn2.window.kernel == (1, 1)
    assert np.count_nonzero(bn2.weight - np.diag(np.diag(bn2.weight))) == 0
    assert isinstance(g.layers[3], AddLayer) and g.layers[3].inputs == ("bn2", "conv2")
    _check_ort(path, (2, 5, 5))


def test_conv_constant_bias_add(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["c"], name="conv"),
        helper.make_node("Add", ["c", "b"], ["y"], name="bias"),
    ]
    inits = {"k": rand(rng, 3, 1, 2, 2), "b": rand(rng, 1, 3, 1, 1)}
    path = save(build(nodes, inits, ["N", 1, 4, 4], out_rank=4), tmp_path)
    assert len(load_onnx(path).layers) == 1
    _check_ort(path, (1, 4, 4))


def test_torch_residual_cnn_matches_onnxruntime(tmp_path: Path, torch_cnn: TorchCnn) -> None:
    path = torch_cnn("residual", tmp_path / "res.onnx")
    g = load_onnx(path)
    kinds = [layer.kind for layer in g.layers]
    assert " ".join(kinds) == "conv conv conv add pool conv pool pool flatten dense"
    add = g.layers[3]
    assert isinstance(add, AddLayer) and add.relu and add.inputs == ("stem", "conv2")
    assert all("BatchNormalization" in layer.notes[OnnxNodes].nodes[-1] for layer in g.layers[:3])
    gap = g.layers[7]
    assert isinstance(gap, PoolLayer) and gap.window.kernel == (4, 5)
    x = np.random.default_rng(5).uniform(-1, 1, (16, 3 * 81))
    np.testing.assert_allclose(g.forward_float(x), onnx_reference(path, x), rtol=1e-5, atol=1e-5)


def test_flatten_permutes_the_dense_columns_to_stream_order(
    tmp_path: Path, torch_cnn: TorchCnn
) -> None:
    path = torch_cnn("flatten", tmp_path / "fl.onnx")
    g = load_onnx(path)
    flat = g.layers[1]
    assert isinstance(flat, FlattenLayer) and flat.image == (4, 3, 3)
    _check_ort(path, (2, 7, 7))


def test_flatten_output_is_given_in_onnx_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["c"], name="conv"),
        helper.make_node("Flatten", ["c"], ["y"], name="flat"),
    ]
    path = save(build(nodes, {"k": rand(rng, 3, 2, 2, 2)}, ["N", 2, 4, 4]), tmp_path)
    _check_ort(path, (2, 4, 4))


def _conv_model(tmp_path: Path, **attrs: Any) -> Path:
    rng = np.random.default_rng(7)
    node = helper.make_node("Conv", ["x", "k"], ["y"], name="conv_a", **attrs)
    return save(build([node], {"k": rand(rng, 2, 2, 3, 3)}, ["N", 2, 6, 6], out_rank=4), tmp_path)


@pytest.mark.parametrize(
    ("nodes", "parts"),
    [
        (
            [
                helper.make_node(
                    "MaxPool",
                    ["x"],
                    ["y"],
                    name="mp",
                    kernel_shape=[2, 2],
                    strides=[2, 2],
                    ceil_mode=1,
                )
            ],
            ["node 'mp' (MaxPool)", "ceil_mode=1"],
        ),
        (
            [
                helper.make_node(
                    "AveragePool", ["x"], ["y"], name="ap", kernel_shape=[3, 3], pads=[1, 1, 1, 1]
                )
            ],
            ["node 'ap' (AveragePool)", "count_include_pad=0"],
        ),
        (
            [helper.make_node("Relu", ["x"], ["y"], name="first")],
            ["node 'first' (Relu)", "must directly follow"],
        ),
        (
            [helper.make_node("Sigmoid", ["x"], ["y"], name="sg")],
            ["node 'sg' (Sigmoid)", "not supported"],
        ),
    ],
    ids=["ceil_mode", "count_include_pad", "relu_on_input", "sigmoid"],
)
def test_refusals_name_node_and_attribute(
    tmp_path: Path, nodes: list[onnx.NodeProto], parts: list[str]
) -> None:
    path = save(build(nodes, {}, ["N", 2, 5, 5], out_rank=4), tmp_path)
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(path)
    assert_clean(err, *parts)


def test_conv_attribute_refusals(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(_conv_model(tmp_path, dilations=[1, 2]))
    assert_clean(err, "node 'conv_a' (Conv)", "dilations=[1, 2]")
    rng = np.random.default_rng(8)
    node = helper.make_node("Conv", ["x", "k"], ["y"], name="dw", group=2)
    path = save(build([node], {"k": rand(rng, 2, 1, 3, 3)}, ["N", 2, 6, 6], out_rank=4), tmp_path)
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(path)
    assert_clean(err, "node 'dw' (Conv)", "group=2", "depthwise")


def test_residual_add_needs_equal_shapes(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["c"], name="conv"),
        helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
        helper.make_node("Add", ["c", "g"], ["y"], name="skip"),
    ]
    model = build(nodes, {"k": rand(rng, 2, 2, 3, 3)}, ["N", 2, 5, 5], out_rank=4)
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(model, tmp_path))
    assert_clean(err, "node 'skip' (Add)", "(batch, 2, 3, 3) and (batch, 2, 1, 1)", "no broadcast")
