"""Quantized models in: QONNX Quant/BipolarQuant and ONNX QDQ/QCDQ keep their exact integers,
and the golden model equals the model's own arithmetic (onnxruntime, qonnx) bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import helper
from quant_models import (
    assert_bit_exact,
    const,
    dyadic_inputs,
    golden,
    model,
    qdq_mlp,
    qonnx_mlp,
    save,
)

from nnlcc.frontends import load_model, onnx_reference
from nnlcc.ir.imported import ImportedQuant, imported_ints
from nnlcc.ir.lower import lower_network
from nnlcc.passes import parse_graph, print_graph

QONNX = "qonnx.custom_op.general"


def test_qonnx_mlp_facts(tmp_path: Path) -> None:
    g = load_model(save(qonnx_mlp(), tmp_path / "m.onnx"))
    fc1, fc2 = g.layers
    f1, f2 = fc1.notes.get(ImportedQuant), fc2.notes.get(ImportedQuant)
    assert f1 is not None and f2 is not None
    assert f1.input is not None and str(f1.input.fmt) == "s8.4"
    assert f1.weight is not None and f1.weight.bits == 4 and f1.weight.narrow
    assert len(f1.weight.scales) == 6  # per channel, powers of two: folded into the integers
    assert f1.weight.frac == 4 and not f1.gain
    assert f1.output is not None and str(f1.output.fmt) == "u4.3" and fc1.relu
    assert f2.output is None and f2.weight is not None  # float output: kept exact
    assert {"in_quant", "w1_quant", "b1_quant", "act_quant"} <= set(f1.folded)
    assert {"w2_quant", "b2_quant"} <= set(f2.folded)
    ints, _ = imported_ints(fc1) or (None, 0)
    assert ints is not None and np.abs(ints).max() <= 7 << 2  # 4 bits, shifted by 2^0..2^-2
    assert not f1.inexact() and not f2.inexact()


@pytest.mark.parametrize("rounding", ["ROUND", "FLOOR", "CEIL"])
def test_qonnx_golden_equals_qonnx(tmp_path: Path, rounding: str) -> None:
    path = save(qonnx_mlp(act_rounding=rounding), tmp_path / "m.onnx")
    assert_bit_exact(path, dyadic_inputs(400, 8))


@pytest.mark.parametrize(("in_zp", "act_zp"), [(1, 3), (-2, 4)])
def test_qonnx_zero_points_are_exact(tmp_path: Path, in_zp: int, act_zp: int) -> None:
    """qonnx rounds x / scale + zero point: an odd zero point turns ties of the centered value
    to odd; the golden model follows."""
    path = save(qonnx_mlp(in_zp=in_zp, act_zp=act_zp), tmp_path / "m.onnx")
    g = assert_bit_exact(path, dyadic_inputs(600, 8, step=2.0**-5))
    f = g.layers[0].notes.get(ImportedQuant)
    assert f is not None and f.input is not None and f.output is not None
    assert (f.input.lo, f.input.hi) == (-128 - in_zp, 127 - in_zp)
    assert (f.output.lo, f.output.hi) == (-act_zp, 15 - act_zp)


@pytest.mark.parametrize(
    "passes",
    ["quantize,csd", "quantize,auto{coders=csd}", "quantize,auto{coders=alkaid}"],
)
def test_every_exact_coder_keeps_the_integers(tmp_path: Path, passes: str) -> None:
    path = save(qonnx_mlp(seed=3, w_bits=6, act_bits=6), tmp_path / "m.onnx")
    g = assert_bit_exact(path, dyadic_inputs(300, 8, seed=2), passes)
    for layer in g.matrix_layers():
        assert layer.code is not None
        assert np.array_equal(layer.code.implemented(), layer.weight)


def test_lcc_codes_the_imported_integers_approximately(tmp_path: Path) -> None:
    path = save(qonnx_mlp(seed=3, w_bits=8), tmp_path / "m.onnx")
    x = dyadic_inputs(300, 8)
    y, _, g = golden(path, x, "quantize,lcc{sqnr_db=30}")
    ref = onnx_reference(path, x)
    assert np.corrcoef(y.ravel(), ref.ravel())[0, 1] > 0.95
    assert all(layer.code is not None and layer.code.name == "lcc" for layer in g.layers)


def test_csd_below_the_imported_width_rounds(tmp_path: Path) -> None:
    path = save(qonnx_mlp(w_bits=8), tmp_path / "m.onnx")
    _, _, g = golden(path, dyadic_inputs(50, 8), "quantize,csd{weight_bits=3}")
    assert not np.array_equal(g.layers[0].code.implemented(), g.layers[0].weight)


@pytest.mark.parametrize("clip", [None, 15])
def test_qdq_golden_equals_onnxruntime(tmp_path: Path, clip: int | None) -> None:
    path = save(qdq_mlp(act_clip=clip), tmp_path / "m.onnx")
    g = assert_bit_exact(path, dyadic_inputs(500, 8))
    f1, f2 = g.layers[0].notes.get(ImportedQuant), g.layers[1].notes.get(ImportedQuant)
    assert f1 is not None and f2 is not None
    assert f1.input is not None and (f1.input.lo, f1.input.hi) == (-128, 127)  # zero point 128
    assert f1.output is not None and f1.output.hi == (clip or 255)
    assert f2.output is not None and (f2.output.lo, f2.output.hi) == (-131, 124)
    assert f2.output.fmt.bits == 9
    assert "act_clip" in f1.folded if clip else "act_dq" in f1.folded


def test_qdq_int4_opset21(tmp_path: Path) -> None:
    """int4 weights and activations (QuantizeLinear to INT4, opset 21)."""
    rng = np.random.default_rng(5)
    inits = [
        const("s", 2.0**-2),
        helper.make_tensor("zi4", 22, [], [0]),  # INT4 zero point
        helper.make_tensor("W", 22, [3, 5], rng.integers(-8, 8, 15).tolist()),
        const("sw", 2.0**-3),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zi4"], ["xq"], name="q"),
        helper.make_node("DequantizeLinear", ["xq", "s", "zi4"], ["xd"], name="dq"),
        helper.make_node("DequantizeLinear", ["W", "sw", "zi4"], ["Wd"], name="wdq"),
        helper.make_node("Gemm", ["xd", "Wd"], ["y"], name="fc", transB=1),
    ]
    path = save(model(nodes, inits, 5, 3, opset=21), tmp_path / "m.onnx")
    g = assert_bit_exact(path, dyadic_inputs(300, 5))
    facts = g.layers[0].notes.get(ImportedQuant)
    assert facts is not None and facts.weight is not None and facts.weight.bits == 4
    assert facts.input is not None and (facts.input.lo, facts.input.hi) == (-8, 7)


def test_bipolar_quant(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    inits = [
        const("s1", 1.0),
        const("s_w", 2.0**-1),
        const("W1", rng.normal(size=(6, 5))),
        const("W2", rng.normal(size=(6, 3))),
        const("b", rng.integers(-3, 4, size=6) * 0.5),
    ]
    nodes = [
        helper.make_node("BipolarQuant", ["x", "s1"], ["xq"], name="in_bq", domain=QONNX),
        helper.make_node("BipolarQuant", ["W1", "s_w"], ["W1q"], name="w1_bq", domain=QONNX),
        helper.make_node("Gemm", ["xq", "W1q", "b"], ["h"], name="fc1", transB=1),
        helper.make_node("BipolarQuant", ["h", "s1"], ["hq"], name="act_bq", domain=QONNX),
        helper.make_node("BipolarQuant", ["W2", "s1"], ["W2q"], name="w2_bq", domain=QONNX),
        helper.make_node("MatMul", ["hq", "W2q"], ["y"], name="fc2"),
    ]
    path = save(model(nodes, inits, 5, 3, qonnx=True), tmp_path / "m.onnx")
    g = assert_bit_exact(path, np.random.default_rng(0).normal(size=(300, 5)))
    f = g.layers[0].notes.get(ImportedQuant)
    assert f is not None and f.output is not None and f.output.bipolar
    assert f.input is not None and f.input.fmt.bits == 2


def test_non_power_of_two_scales_fold_into_the_requantization(tmp_path: Path) -> None:
    """Scales like PyTorch's QDQ export: not exact, never silently rounded, and within the
    model's own float32 noise of onnxruntime."""
    sw = np.array([0.0123, 0.0071, 0.0301, 0.0093, 0.0155, 0.0088], np.float32)
    m = qdq_mlp(s_in=0.0371, s_act=0.0519, s_out=0.097, s_w=sw)
    path = save(m, tmp_path / "m.onnx")
    x = np.random.default_rng(3).normal(size=(400, 8)) * 3
    y, _, g = golden(path, x)
    ref = onnx_reference(path, x)
    step = 0.097
    assert np.max(np.abs(y - ref)) <= step * 1.0001  # at most one LSB, near ties only
    assert np.mean(y.astype(np.float32) == ref.astype(np.float32)) > 0.98
    f1 = g.layers[0].notes.get(ImportedQuant)
    assert f1 is not None and f1.gain and "non-power-of-two" in "; ".join(f1.inexact())


def test_batchnorm_after_a_quantized_layer_folds_into_its_gains(tmp_path: Path) -> None:
    m = qonnx_mlp()
    g_ = m.graph
    nodes = list(g_.node)
    at = next(i for i, n in enumerate(nodes) if n.name == "relu1")
    nodes[at] = helper.make_node("Relu", ["hb"], ["r"], name="relu1")
    nodes.insert(
        at,
        helper.make_node("BatchNormalization", ["h", "g", "beta", "mu", "var"], ["hb"], name="bn1"),
    )
    rng = np.random.default_rng(9)
    inits = [
        *g_.initializer,
        const("g", rng.uniform(-1.5, 1.5, 6)),
        const("beta", rng.normal(size=6) * 0.1),
        const("mu", rng.normal(size=6) * 0.1),
        const("var", rng.uniform(0.5, 2, 6)),
    ]
    path = save(model(nodes, inits, 8, 4, qonnx=True), tmp_path / "m.onnx")
    x = dyadic_inputs(300, 8)
    y, _, g = golden(path, x)
    ref = onnx_reference(path, x)
    assert np.mean(y == ref) > 0.97
    f = g.layers[0].notes.get(ImportedQuant)
    assert f is not None and f.weight is not None and imported_ints(g.layers[0]) is not None
    assert "bn1" in f.folded and any("BatchNormalization" in n for n in f.caveats)


def test_ir_text_round_trips_the_facts(tmp_path: Path) -> None:
    path = save(qdq_mlp(act_clip=15), tmp_path / "m.onnx")
    x = dyadic_inputs(200, 8)
    _, net, g = golden(path, x)
    text = print_graph(g)
    back = parse_graph(text)
    assert print_graph(back) == text
    assert back.layers[0].notes.get(ImportedQuant) == g.layers[0].notes.get(ImportedQuant)

    net2 = lower_network(back)
    assert np.array_equal(
        net2.evaluate(net2.quantize_input(x)), net.evaluate(net.quantize_input(x))
    )


def test_inspect_shows_imported_formats_and_folded_nodes(tmp_path: Path) -> None:
    from nnlcc.inspect import inspect_model, render_text

    info = inspect_model(save(qdq_mlp(act_clip=15), tmp_path / "m.onnx"), lcc=False)
    fc1 = info["layers"][0]["imported"]
    assert fc1["weights"].startswith("s8") and "per channel" in fc1["weights"]
    assert fc1["output"].startswith("u4.3") and "act_clip" in fc1["folded"]
    text = render_text(info)
    assert "imported quantization" in text and "act_clip" in text


def test_jet_example_exports_agree_and_are_bit_exact() -> None:
    """The shipped Brevitas model, as QONNX and as QCDQ: the same integers, and the golden
    model equals qonnx and onnxruntime on the shipped test set."""
    from nnlcc import examples

    with np.load(examples.JET_DATA) as z:
        x, y = z["x_test"][:1000], z["y_test"][:1000]
    graphs = [
        assert_bit_exact(p, x, "quantize,csd") for p in (examples.JET_QONNX, examples.JET_QDQ)
    ]
    for a, b in zip(*(g.layers for g in graphs), strict=True):
        ia, ib = imported_ints(a), imported_ints(b)
        assert ia is not None and ib is not None
        assert ia[1] == ib[1] and np.array_equal(ia[0], ib[0])
        qa, qb = (
            f.output if f else None
            for f in (a.notes.get(ImportedQuant), b.notes.get(ImportedQuant))
        )
        assert (qa and (qa.scale, qa.lo, qa.hi)) == (qb and (qb.scale, qb.lo, qb.hi))
    assert [la.shape for la in graphs[0].layers] == [(64, 16), (32, 64), (32, 32), (5, 32)]
    net = lower_network(graphs[1])  # the QDQ export's golden model, as checked above
    out = net.output_real(net.evaluate(net.quantize_input(x)))
    assert np.mean(out.argmax(1) == y) > 0.7


def test_accuracy_drop_trades_imported_integers_only_when_asked(tmp_path: Path) -> None:
    from nnlcc.driver import CompileOptions, compile_model

    path = save(qonnx_mlp(seed=3, w_bits=8, act_bits=8), tmp_path / "m.onnx")
    x = dyadic_inputs(300, 8)
    np.savez(tmp_path / "d.npz", x_test=x, y_test=onnx_reference(path, x).argmax(1))
    logged: list[str] = []
    opts = {"model": path, "data": tmp_path / "d.npz", "report_only": True, "board": "ulx3s"}
    r = compile_model(CompileOptions(outdir=tmp_path / "a", **opts), logged.append)
    assert r.accuracy_drop is None and any("keeps its integers" in m for m in logged)
    assert r.accuracy is not None
    assert r.accuracy.reference_identical == 1.0 and r.accuracy.golden == 1.0
    assert all(row.imported_exact for row in r.layers)
    r = compile_model(CompileOptions(outdir=tmp_path / "b", accuracy_drop=5.0, **opts))
    d = r.accuracy_drop
    assert d is not None
    assert d.points[0].targets == {"fc1": "exact", "fc2": "exact"}
    assert d.golden >= d.floor and d.est_luts < d.points[0].est_luts
    traded = [k for k, v in d.targets.items() if v != "exact"]
    assert traded
    rows = {row.name: row for row in r.layers}
    for name in traded:  # the report says where precision was given up
        assert rows[name].imported_exact is False
        assert "approximates the imported integers" in (rows[name].imported_inexact or "")
    # report.json holds the same, and reads back into the typed report
    saved = json.loads((tmp_path / "b" / "report.json").read_text())
    assert saved["accuracy_drop"]["targets"] == {k: v for k, v in d.targets.items()}


def test_qdq_cnn_conv_pool_dense_is_bit_exact(tmp_path: Path) -> None:
    """Per-channel int8 conv weights, a quantized ReLU before a max pool, a flatten and a
    dense layer: streaming CNN layers keep the imported integers too."""
    from onnx import TensorProto

    rng = np.random.default_rng(4)
    inits = [
        const("s_in", 2.0**-4),
        const("z8", 0, np.int8),
        const("zu", 0, np.uint8),
        const("W", rng.integers(-127, 128, size=(3, 2, 3, 3)), np.int8),
        const("s_w", 2.0 ** -np.array([5, 6, 7])),
        const("B", rng.integers(-500, 500, size=3), np.int32),
        const("s_b", 2.0 ** -np.array([9, 10, 11])),
        const("s_a", 2.0**-3),
        const("V", rng.integers(-127, 128, size=(4, 12)), np.int8),
        const("s_v", 2.0**-6),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s_in", "z8"], ["xq"], name="in_q"),
        helper.make_node("DequantizeLinear", ["xq", "s_in", "z8"], ["xd"], name="in_dq"),
        helper.make_node("DequantizeLinear", ["W", "s_w"], ["Wd"], name="w_dq", axis=0),
        helper.make_node("DequantizeLinear", ["B", "s_b"], ["Bd"], name="b_dq", axis=0),
        helper.make_node("Conv", ["xd", "Wd", "Bd"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "s_a", "zu"], ["rq"], name="act_q"),
        helper.make_node("DequantizeLinear", ["rq", "s_a", "zu"], ["rd"], name="act_dq"),
        helper.make_node(
            "MaxPool", ["rd"], ["p"], name="pool", kernel_shape=[3, 3], strides=[3, 3]
        ),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("DequantizeLinear", ["V", "s_v"], ["Vd"], name="v_dq"),
        helper.make_node("Gemm", ["f", "Vd"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    m.ir_version = 9
    path = save(m, tmp_path / "cnn.onnx")
    g = assert_bit_exact(path, dyadic_inputs(100, 72), "quantize,csd")
    conv = g.layers[0].notes.get(ImportedQuant)
    assert conv is not None and conv.weight is not None and len(conv.weight.scales) == 3
    assert conv.output is not None and str(conv.output.fmt) == "u8.3"
