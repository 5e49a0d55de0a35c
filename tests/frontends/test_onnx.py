"""ONNX frontend: real exported models, hand-built graphs against onnxruntime, clean errors.

The real models come with the ``onnx`` package (``backend/test/data``): files nobody here wrote.
The installed onnx wheel ships ``pytorch-converted`` and ``pytorch-operator`` but no ``node``
folder; its Gemm models (``test_operator_mm``/``addmm``) take their weights as graph inputs,
so they check the clean error instead of an import.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from nnlcc.errors import BadInputError, UnsupportedModelError
from nnlcc.frontends import inspect_onnx, load_onnx, onnx_reference
from nnlcc.ir.notes import OnnxNodes

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
OPSET = 17


# --------------------------------------------------------------------------- helpers


def tensor(name: str, a: np.ndarray) -> TensorProto:
    return onnx.numpy_helper.from_array(np.asarray(a), name)


def build(
    nodes: Sequence[onnx.NodeProto],
    inits: dict[str, np.ndarray],
    in_shape: Sequence[int | str],
    out_name: str = "y",
    *,
    in_name: str = "x",
    elem: int = TensorProto.FLOAT,
    extra_outputs: Sequence[str] = (),
    out_rank: int = 2,
    opset: int = OPSET,
) -> onnx.ModelProto:
    """A single-input model; output dims are left to shape inference."""
    graph = helper.make_graph(
        list(nodes),
        "g",
        [helper.make_tensor_value_info(in_name, elem, list(in_shape))],
        [
            helper.make_tensor_value_info(n, elem, [None] * out_rank)
            for n in (out_name, *extra_outputs)
        ],
        initializer=[tensor(k, v) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # what onnxruntime of any recent vintage reads
    return model


def save(model: onnx.ModelProto, directory: Path, name: str = "model.onnx") -> Path:
    path = directory / name
    onnx.save(model, str(path))
    return path


def ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: x})[0], dtype=np.float64)


def rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def assert_clean(err: pytest.ExceptionInfo[BaseException], *parts: str) -> None:
    """One line, naming what the user must look at."""
    msg = str(err.value)
    assert "\n" not in msg
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"


# --------------------------------------------------------------------------- real models


@pytest.mark.parametrize("name", ["test_Linear", "test_Linear_no_bias"])
def test_pytorch_converted_linear(name: str) -> None:
    d = DATA / "pytorch-converted" / name
    x = onnx.numpy_helper.to_array(onnx.load_tensor(str(d / "test_data_set_0" / "input_0.pb")))
    y = onnx.numpy_helper.to_array(onnx.load_tensor(str(d / "test_data_set_0" / "output_0.pb")))
    g = load_onnx(d / "model.onnx")
    assert (g.input_size, g.output_size, len(g.layers)) == (10, 8, 1)
    assert g.name == "model" and g.source == str(d / "model.onnx")
    np.testing.assert_allclose(g.forward_float(x), y, rtol=1e-5, atol=1e-6)
    # opset 6 is too old for onnxruntime: onnx_reference must still answer.
    np.testing.assert_allclose(onnx_reference(d / "model.onnx", x), y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("folder", "name", "parts"),
    [
        ("pytorch-operator", "test_operator_mm", ["Gemm_1", "(Gemm)", "graph input '1'"]),
        ("pytorch-operator", "test_operator_addmm", ["Gemm_0", "(Gemm)", "3 inputs"]),
        ("pytorch-converted", "test_Conv2d_groups", ["(Conv)", "group=2"]),
        ("pytorch-operator", "test_operator_addconstant", ["Add_1", "(Add)"]),
        ("pytorch-operator", "test_operator_flatten", ["no Gemm or MatMul"]),
        ("pytorch-converted", "test_Sigmoid", ["Sigmoid_0", "(Sigmoid)", "not supported"]),
        ("pytorch-converted", "test_Conv2d_dilated", ["(Conv)", "dilations=[2, 2]"]),
        ("pytorch-converted", "test_ReLU", ["Relu_0", "(Relu)", "follow"]),
        ("pytorch-converted", "test_Embedding", ["floating-point"]),
    ],
)
def test_real_unsupported_models(folder: str, name: str, parts: list[str]) -> None:
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(DATA / folder / name / "model.onnx")
    assert_clean(err, *parts)


# --------------------------------------------------------------------------- built models


def test_gemm_relu_gemm_matches_onnxruntime(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    w1, b1, w2, b2 = rand(rng, 7, 5), rand(rng, 7), rand(rng, 7, 3), rand(rng, 3)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="act1"),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=0),
    ]
    path = save(build(nodes, {"w1": w1, "b1": b1, "w2": w2, "b2": b2}, ["N", 5]), tmp_path)
    g = load_onnx(path)
    assert [layer.name for layer in g.layers] == ["fc1", "fc2"]
    assert [layer.shape for layer in g.layers] == [(7, 5), (3, 7)]
    assert [layer.relu for layer in g.layers] == [True, False]
    assert (g.name, g.input_name, g.input_size, g.output_name) == ("model", "x", 5, "y")
    x = rand(rng, 11, 5)
    np.testing.assert_allclose(g.forward_float(x), ort_run(path, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(onnx_reference(path, x), ort_run(path, x), rtol=1e-6)


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (4,), (1, 4), (1,), ()])
def test_gemm_alpha_beta_bias_shapes(tmp_path: Path, trans_b: int, c_shape: tuple | None) -> None:
    rng = np.random.default_rng(2)
    w = rand(rng, *((4, 6) if trans_b else (6, 4)))
    inits = {"w": w}
    inputs = ["x", "w"]
    if c_shape is not None:
        inits["c"] = rand(rng, *c_shape)
        inputs.append("c")
    node = helper.make_node("Gemm", inputs, ["y"], name="g", alpha=0.5, beta=-2.0, transB=trans_b)
    path = save(build([node], inits, ["N", 6]), tmp_path)
    g = load_onnx(path)
    assert g.layers[0].shape == (4, 6)
    x = rand(rng, 9, 6)
    np.testing.assert_allclose(g.forward_float(x), ort_run(path, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bias_first", [False, True])
def test_matmul_add_folds_into_one_layer(tmp_path: Path, bias_first: bool) -> None:
    rng = np.random.default_rng(3)
    add_in = ["b", "m"] if bias_first else ["m", "b"]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
        helper.make_node("Add", add_in, ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w2"], ["y"], name="mm2"),
    ]
    inits = {"w": rand(rng, 8, 6), "b": rand(rng, 6), "w2": rand(rng, 6, 2)}
    path = save(build(nodes, inits, [1, 8]), tmp_path)
    g = load_onnx(path)
    assert [layer.shape for layer in g.layers] == [(6, 8), (2, 6)]
    assert g.layers[0].relu and not g.layers[1].relu
    assert g.layers[0].notes[OnnxNodes].nodes == ["mm", "add"]
    np.testing.assert_array_equal(g.layers[1].bias, np.zeros(2))
    x = rand(rng, 5, 8)
    # batch fixed at 1: onnx_reference feeds one row at a time
    np.testing.assert_allclose(g.forward_float(x), onnx_reference(path, x), rtol=1e-5, atol=1e-5)


def test_consecutive_linear_layers_stay_separate(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="a", transB=1),
        helper.make_node("Gemm", ["h", "w2", "b2"], ["y"], name="b", transB=1),
    ]
    inits = {"w1": rand(rng, 3, 4), "b1": rand(rng, 3), "w2": rand(rng, 2, 3), "b2": rand(rng, 2)}
    path = save(build(nodes, inits, ["N", 4]), tmp_path)
    g = load_onnx(path)
    assert len(g.layers) == 2 and not any(layer.relu for layer in g.layers)
    x = rand(rng, 6, 4)
    np.testing.assert_allclose(g.forward_float(x), ort_run(path, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "flatten",
    [
        [helper.make_node("Flatten", ["x"], ["f"], name="flat")],
        [helper.make_node("Flatten", ["x"], ["f"], name="flat", axis=-3)],
        [helper.make_node("Reshape", ["x", "s"], ["f"], name="rs")],
    ],
    ids=["flatten", "flatten_neg_axis", "reshape"],
)
@pytest.mark.parametrize("shape", [[-1, 32], [0, -1], [0, 32]])
def test_flatten_and_reshape_are_no_ops(
    tmp_path: Path, flatten: list[onnx.NodeProto], shape: list[int]
) -> None:
    rng = np.random.default_rng(5)
    nodes = [
        *flatten,
        helper.make_node("Identity", ["f"], ["i"], name="id"),
        helper.make_node("Gemm", ["i", "w", "b"], ["y"], name="fc", transB=1),
    ]
    inits = {"w": rand(rng, 3, 32), "b": rand(rng, 3), "s": np.array(shape, dtype=np.int64)}
    path = save(build(nodes, inits, ["N", 2, 4, 4]), tmp_path)
    g = load_onnx(path)
    assert g.input_size == 32 and len(g.layers) == 1
    x = rand(rng, 4, 2, 4, 4)
    np.testing.assert_allclose(g.forward_float(x), ort_run(path, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(onnx_reference(path, x.reshape(4, -1)), ort_run(path, x), rtol=1e-6)


def _view_batch_nodes() -> list[onnx.NodeProto]:
    """What torch's legacy exporter writes for ``x.view(x.size(0), -1)`` with a dynamic batch."""
    return [
        helper.make_node("Shape", ["x"], ["shp"], name="/Shape"),
        helper.make_node("Gather", ["shp", "zero"], ["n"], name="/Gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="/Unsqueeze"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["f"], name="/Reshape"),
        helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="/fc/Gemm", transB=1),
    ]


def test_reshape_to_batch_by_shape_arithmetic(tmp_path: Path) -> None:
    rng = np.random.default_rng(12)
    inits = {
        "zero": np.array(0, np.int64),
        "axes": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64),
        **_wb(3, 32),
    }
    path = save(build(_view_batch_nodes(), inits, ["N", 2, 4, 4]), tmp_path)
    g = load_onnx(path)
    assert [layer.name for layer in g.layers] == ["fc"] and g.input_size == 32
    assert all(row["supported"] for row in inspect_onnx(path))
    x = rand(rng, 5, 2, 4, 4)
    np.testing.assert_allclose(g.forward_float(x), ort_run(path, x), rtol=1e-5, atol=1e-5)


def test_reshape_mixing_batch_by_shape_arithmetic(tmp_path: Path) -> None:
    """Gathering axis 1 instead of the batch gives (2, -1): rejected, the batch is mixed in."""
    inits = {
        "zero": np.array(1, np.int64),
        "axes": np.array([0], np.int64),
        "minus1": np.array([-1], np.int64),
        **_wb(3, 32),
    }
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(build(_view_batch_nodes(), inits, ["N", 2, 4, 4]), tmp_path))
    assert_clean(err, "node '/Reshape' (Reshape)", "not a flatten")


def test_dropout_identity_and_folded_constants(tmp_path: Path) -> None:
    """Weights as a Constant node, a Transpose of an initializer and a Cast from fp16."""
    rng = np.random.default_rng(6)
    w1 = rand(rng, 5, 4)
    w2 = rand(rng, 3, 5).astype(np.float16)
    nodes = [
        helper.make_node("Constant", [], ["w1"], name="k", value=tensor("v", w1)),
        helper.make_node("Transpose", ["w2h"], ["w2t"], name="tr", perm=[1, 0]),
        helper.make_node("Cast", ["w2t"], ["w2"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1", transB=1),
        helper.make_node("Dropout", ["h", "ratio"], ["d"], name="drop"),
        helper.make_node("Relu", ["d"], ["r"], name="relu"),
        helper.make_node("Identity", ["r"], ["i"], name="id"),
        helper.make_node("MatMul", ["i", "w2"], ["y"], name="mm"),
    ]
    inits = {"w2h": w2, "ratio": np.array(0.5, dtype=np.float32)}
    path = save(build(nodes, inits, ["N", 4]), tmp_path)
    g = load_onnx(path)
    assert [layer.shape for layer in g.layers] == [(5, 4), (3, 5)]
    assert g.layers[0].relu
    x = rand(rng, 7, 4)
    np.testing.assert_allclose(g.forward_float(x), ort_run(path, x), rtol=1e-4, atol=1e-4)


def test_gemm_then_constant_add_folds(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1),
        helper.make_node("Add", ["h", "b2"], ["y"], name="shift"),
    ]
    inits = {"w": rand(rng, 3, 4), "b": rand(rng, 3), "b2": rand(rng, 1, 3)}
    path = save(build(nodes, inits, ["N", 4]), tmp_path)
    g = load_onnx(path)
    assert len(g.layers) == 1
    np.testing.assert_allclose(g.layers[0].bias, inits["b"] + inits["b2"][0], rtol=1e-6)


def test_fixed_batch_reference_pads_last_chunk(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    node = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)
    path = save(build([node], {"w": rand(rng, 2, 3)}, [3, 3]), tmp_path)
    x = rand(rng, 7, 3)
    g = load_onnx(path)
    ref = onnx_reference(path, x)
    assert ref.shape == (7, 2)
    np.testing.assert_allclose(g.forward_float(x), ref, rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=2, max_size=5),
    relus=st.lists(st.booleans(), min_size=4, max_size=4),
    trans=st.lists(st.integers(0, 1), min_size=4, max_size=4),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_gemm_chain_matches_onnxruntime(
    sizes: list[int], relus: list[bool], trans: list[int], seed: int
) -> None:
    """Any chain of double-precision Gemm(+Relu) layers imports to the same function."""
    rng = np.random.default_rng(seed)
    nodes, inits, cur = [], {}, "x"
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = rng.standard_normal((n_out, n_in) if trans[i] else (n_in, n_out))
        inits[f"w{i}"], inits[f"b{i}"] = w, rng.standard_normal(n_out)
        out = "y" if i == len(sizes) - 2 and not relus[i] else f"h{i}"
        nodes.append(
            helper.make_node("Gemm", [cur, f"w{i}", f"b{i}"], [out], name=f"fc{i}", transB=trans[i])
        )
        cur = out
        if relus[i]:
            out = "y" if i == len(sizes) - 2 else f"r{i}"
            nodes.append(helper.make_node("Relu", [cur], [out], name=f"relu{i}"))
            cur = out
    model = build(nodes, inits, ["N", sizes[0]], elem=TensorProto.DOUBLE)
    with tempfile.TemporaryDirectory() as d:
        path = save(model, Path(d))
        g = load_onnx(path)
        assert [layer.relu for layer in g.layers] == relus[: len(sizes) - 1]
        x = rng.standard_normal((5, sizes[0]))
        np.testing.assert_allclose(g.forward_float(x), ort_run(path, x), rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"model file '.*x\.onnx' not found") as err:
        load_onnx(tmp_path / "x.onnx")
    assert_clean(err)


def test_directory_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as err:
        load_onnx(tmp_path)
    assert_clean(err, "not a file")


@pytest.mark.parametrize(
    "content",
    [b"hello, this is a text file\nnot a model\n", b"", b"\x08\x07\x12\x05hello"],
    ids=["text", "empty", "no_graph"],
)
def test_not_an_onnx_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(BadInputError) as err:
        load_onnx(path)
    assert_clean(err, "bad.onnx")


def test_truncated_protobuf(tmp_path: Path) -> None:
    good = (Path(__file__).parents[2] / "examples" / "digits_mlp.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(BadInputError) as err:
        load_onnx(path)
    assert_clean(err, "cut.onnx")
    with pytest.raises(BadInputError):
        onnx_reference(path, np.zeros((1, 64)))
    with pytest.raises(BadInputError):
        inspect_onnx(path)


def test_checker_failure_is_bad_input(tmp_path: Path) -> None:
    node = helper.make_node("NoSuchOp", ["x"], ["y"], name="weird")
    path = save(build([node], {}, ["N", 3]), tmp_path)
    with pytest.raises(BadInputError) as err:
        load_onnx(path)
    assert_clean(err, "not a valid ONNX model")


# --------------------------------------------------------------------------- unsupported models


def _gemm(name: str = "fc", inp: str = "x", out: str = "y", **attrs: object) -> onnx.NodeProto:
    return helper.make_node("Gemm", [inp, "w", "b"], [out], name=name, transB=1, **attrs)


def _wb(rows: int = 3, cols: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(9)
    return {"w": rand(rng, rows, cols), "b": rand(rng, rows)}


def test_unsupported_op_sigmoid(tmp_path: Path) -> None:
    nodes = [_gemm(out="h"), helper.make_node("Sigmoid", ["h"], ["y"], name="sig_7")]
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(build(nodes, _wb(), ["N", 4]), tmp_path))
    assert_clean(err, "node 'sig_7' (Sigmoid)", "operator Sigmoid is not supported by nnlcc yet")


def test_conv_imports_and_matches_onnxruntime(tmp_path: Path) -> None:
    """Was an unsupported op for MLPs; a CNN layer since issue 6."""
    rng = np.random.default_rng(10)
    node = helper.make_node("Conv", ["x", "k"], ["y"], name="Conv_3", kernel_shape=[3, 3])
    path = save(build([node], {"k": rand(rng, 2, 1, 3, 3)}, ["N", 1, 8, 8], out_rank=4), tmp_path)
    g = load_onnx(path)
    assert [layer.kind for layer in g.layers] == ["conv"] and g.output_size == 2 * 6 * 6
    x = rand(rng, 3, 1, 8, 8)
    np.testing.assert_allclose(
        g.forward_float(x.reshape(3, -1)), ort_run(path, x).reshape(3, -1), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(("key", "value"), [("w", np.nan), ("b", np.inf), ("w", -np.inf)])
def test_non_finite_parameters(tmp_path: Path, key: str, value: float) -> None:
    inits = _wb()
    inits[key][0] = value
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(build([_gemm()], inits, ["N", 4]), tmp_path))
    assert_clean(err, "node 'fc' (Gemm)", "NaN or Inf")


def test_zero_size_layer(tmp_path: Path) -> None:
    inits = {"w": np.zeros((0, 4), np.float32), "b": np.zeros(0, np.float32)}
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(build([_gemm()], inits, ["N", 4]), tmp_path))
    assert_clean(err, "node 'fc' (Gemm)", "zero-size layer (0x4)")


def test_weight_computed_at_run_time(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    nodes = [
        helper.make_node("Mul", ["wa", "wb"], ["w"], name="scale"),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="mm_2"),
    ]
    inits = {"wa": rand(rng, 4, 3), "wb": rand(rng, 4, 3)}
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(build(nodes, inits, ["N", 4]), tmp_path))
    assert_clean(err, "node 'mm_2' (MatMul)", "not a constant", "'scale' (Mul)")


def test_data_as_weight_operand(tmp_path: Path) -> None:
    node = helper.make_node("MatMul", ["w", "x"], ["y"], name="mm_swapped")
    inits = {"w": np.ones((2, 3), np.float32)}
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(build([node], inits, [3, 4]), tmp_path))
    assert_clean(err, "node 'mm_swapped' (MatMul)", "operand A")


def test_trans_a(tmp_path: Path) -> None:
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc_t", transA=1, transB=1)
    path = save(build([node], _wb(3, 4), [4, 2]), tmp_path)
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(path)
    assert_clean(err, "node 'fc_t' (Gemm)", "transA=1")
    rows = inspect_onnx(path)
    assert rows[0]["supported"] is False and "transA=1" in rows[0]["reason"]


@pytest.mark.parametrize("first", [True, False])
def test_relu_not_after_a_matrix_layer(tmp_path: Path, first: bool) -> None:
    if first:
        nodes = [helper.make_node("Relu", ["x"], ["r"], name="early"), _gemm(inp="r")]
    else:
        nodes = [
            _gemm(out="h"),
            helper.make_node("Relu", ["h"], ["r"], name="r1"),
            helper.make_node("Relu", ["r"], ["y"], name="early"),
        ]
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(build(nodes, _wb(), ["N", 4]), tmp_path))
    assert_clean(err, "node 'early' (Relu)")


def test_branching_graph_is_a_residual_add(tmp_path: Path) -> None:
    """Was refused as branching; an Add of two computed tensors is a residual add now."""
    nodes = [_gemm(out="h"), helper.make_node("Add", ["h", "h"], ["y"], name="skip")]
    path = save(build(nodes, _wb(), ["N", 4]), tmp_path)
    g = load_onnx(path)
    assert [layer.kind for layer in g.layers] == ["dense", "add"]
    assert g.layers[1].inputs == ("fc", "fc")
    x = rand(np.random.default_rng(3), 5, 4)
    np.testing.assert_allclose(g.forward_float(x), ort_run(path, x), rtol=1e-5, atol=1e-5)


def test_several_outputs(tmp_path: Path) -> None:
    nodes = [_gemm(out="h"), helper.make_node("Relu", ["h"], ["y"], name="r")]
    model = build(nodes, _wb(), ["N", 4], extra_outputs=["h"])
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(model, tmp_path))
    assert_clean(err, "2 outputs")


def test_dynamic_feature_axis(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(build([_gemm()], _wb(), ["N", "F"]), tmp_path))
    assert_clean(err, "input 'x'", "axis 1 is dynamic")


@pytest.mark.parametrize(
    ("node", "shape", "consumer", "parts"),
    [
        (
            helper.make_node("Flatten", ["x"], ["f"], name="fl", axis=2),
            None,
            helper.make_node("Gemm", ["f", "w"], ["y"], name="fc", transB=1),
            ["node 'fl' (Flatten)", "axis=2"],
        ),
        (
            helper.make_node("Reshape", ["x", "s"], ["f"], name="rs"),
            [-1, 4, 8],
            helper.make_node("MatMul", ["f", "w"], ["y"], name="mm"),
            ["node 'rs' (Reshape)", "not a flatten"],
        ),
        (
            helper.make_node("Reshape", ["x", "s"], ["f"], name="rs"),
            [32, -1],
            helper.make_node("Gemm", ["f", "w"], ["y"], name="fc", transB=1),
            ["node 'rs' (Reshape)", "not a flatten"],
        ),
    ],
    ids=["flatten_axis2", "reshape_rank3", "reshape_batch_mixed"],
)
def test_bad_flatten(
    tmp_path: Path,
    node: onnx.NodeProto,
    shape: list[int] | None,
    consumer: onnx.NodeProto,
    parts: list[str],
) -> None:
    """Valid ONNX models whose reshape moves the batch axis or leaves features unflattened."""
    w = {"fl": np.ones((3, 16)), "rs": np.ones((8, 3) if shape == [-1, 4, 8] else (3, 32))}
    inits = {"w": w[node.name].astype(np.float32)}
    if shape is not None:
        inits["s"] = np.array(shape, np.int64)
    rank = 3 if shape == [-1, 4, 8] else 2
    model = build([node, consumer], inits, ["N", 2, 4, 4], out_rank=rank)
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(model, tmp_path))
    assert_clean(err, *parts)


def test_dropout_in_training_mode(tmp_path: Path) -> None:
    nodes = [
        _gemm(out="h"),
        helper.make_node("Dropout", ["h", "ratio", "train"], ["y"], name="drop"),
    ]
    inits = {**_wb(), "ratio": np.array(0.1, np.float32), "train": np.array(True)}
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(save(build(nodes, inits, ["N", 4]), tmp_path))
    assert_clean(err, "node 'drop' (Dropout)", "training_mode")


def test_inspect_rows(tmp_path: Path) -> None:
    nodes = [_gemm(out="h"), helper.make_node("Sigmoid", ["h"], ["y"], name="sig")]
    rows = inspect_onnx(save(build(nodes, _wb(), ["N", 4]), tmp_path))
    assert [(r["name"], r["op"], r["supported"]) for r in rows] == [
        ("fc", "Gemm", True),
        ("sig", "Sigmoid", False),
    ]
    assert rows[0]["in_shapes"][0] == "(N, 4)" and rows[0]["out_shapes"] == ["(N, 3)"]
    assert "not supported" in rows[1]["reason"]
