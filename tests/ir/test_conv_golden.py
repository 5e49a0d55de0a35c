"""CNN golden model: conv/pool/add/flatten lowering, the fixed-point rules behind it, and the
passes skipping non-matrix layers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import nnlcc.passes.lcc
import nnlcc.passes.quantize  # noqa: F401
from nnlcc.frontends import load_onnx, onnx_reference
from nnlcc.ir.fixed_point import FixedFormat, add_plan, avg_pool_plan
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import (
    ConvLayer,
    MatrixGraph,
    PoolLayer,
    Window,
)

EXAMPLES = Path(__file__).parents[2] / "examples"
Compile = Callable[..., LoweredNetwork]


def test_golden_cnn_is_faithful_and_ranges_hold(
    tiny_cnn: Callable[[int], MatrixGraph], golden_model: Compile
) -> None:
    g = tiny_cnn(0)
    x = np.random.default_rng(1).uniform(-1, 1, size=(60, 72))
    net = golden_model(g, "quantize{act_bits=12,input_bits=10},csd{weight_bits=10}", x)
    xi = net.quantize_input(x)
    y = net.output_fmt.to_real(net.evaluate(xi))
    ref = g.forward_float(x)
    assert np.max(np.abs(y - ref)) < 0.02 * np.max(np.abs(ref))
    # every layer's adder graph stays inside its declared ranges on the real inputs
    env = {"x": net._stored_input(xi)}
    for i, (layer, out) in enumerate(zip(net.layers, net.evaluate_layers(xi), strict=True)):
        ins = [env[t] for t in net.inputs_of(i)]
        if layer.window is not None:
            vec = layer.window.windows(ins[0], fill=layer.pad_value)
        elif layer.kind == "add":
            vec = np.concatenate([a.reshape(-1, a.shape[-1]) for a in ins], axis=1)
        else:
            vec = ins[0]
        layer.graph.check_ranges(vec.reshape(-1, layer.graph.n_inputs))
        env[layer.name] = out
    assert [layer.kind for layer in net.layers] == [layer.kind for layer in g.layers]


def test_conv_golden_is_the_graph_on_each_window(
    tiny_cnn: Callable[[int], MatrixGraph], golden_model: Compile
) -> None:
    """The definition the hardware follows: output pixel = graph(zero-padded window)."""
    g = tiny_cnn(2)
    x = np.random.default_rng(3).uniform(-1, 1, size=(3, 72))
    net = golden_model(g, "quantize,csd", x)
    layer = net.layers[0]
    xi = net._stored_input(net.quantize_input(x))
    got = layer.evaluate(xi)
    c, h, w = layer.image
    pad = np.zeros((3, h + 2, w + 2, c), dtype=np.int64)
    pad[:, 1:-1, 1:-1] = xi
    for b in range(3):
        for oy in range(h):
            for ox in range(w):
                vec = pad[b, oy : oy + 3, ox : ox + 3, :].reshape(1, -1)  # (i, j, c) order
                np.testing.assert_array_equal(got[b, oy, ox], layer.graph.evaluate(vec)[0])


def test_max_pool_pads_with_the_format_minimum(golden_model: Compile) -> None:
    g = MatrixGraph(
        "mp",
        "x",
        9,
        "y",
        [
            ConvLayer("c", np.array([[-1.0]]), np.zeros(1), image=(1, 3, 3), window=Window((1, 1))),
            PoolLayer("p", "max", (1, 3, 3), Window((2, 2), (2, 2), (1, 1, 0, 0))),
        ],
        input_shape=(1, 3, 3),
    )
    x = np.abs(np.random.default_rng(4).uniform(0.1, 1, size=(5, 9)))  # conv output all < 0
    net = golden_model(g, "quantize,csd", x)
    y = net.output_fmt.to_real(net.evaluate(net.quantize_input(x)))
    assert np.all(y < 0)  # padding never wins the max
    np.testing.assert_allclose(y, g.forward_float(x), atol=2 * net.output_fmt.step)


@pytest.mark.parametrize("taps", [1, 4, 9, 49, 16])
def test_avg_pool_plan(taps: int) -> None:
    fin, out = FixedFormat(8, 4, False), FixedFormat(8, 6, False)
    plan = avg_pool_plan(taps, fin, out, relu=False)
    s = np.arange(0, 255 * taps + 1, dtype=np.int64)
    got = plan.requant.apply(s * plan.mult)
    exact = np.clip(np.floor(s / taps * 2.0 ** (out.frac - fin.frac) + 0.5), out.lo, out.hi)
    if taps & (taps - 1) == 0:
        np.testing.assert_array_equal(got, exact)  # a shift: exact round half up
        assert plan.mult == 1
    else:
        assert plan.mult.bit_length() == 16
        assert np.mean(got != exact) < 0.01 and np.max(np.abs(got - exact)) <= 1


def test_add_plan_aligns_scales_exactly() -> None:
    fa, fb, out = FixedFormat(8, 5, True), FixedFormat(8, 2, False), FixedFormat(9, 3, False)
    plan = add_plan(fa, fb, out, relu=True)
    a = np.arange(fa.lo, fa.hi + 1)[:, None]
    b = np.arange(fb.lo, fb.hi + 1)[None, :]
    got = plan.requant.apply((a << plan.sa) + (b << plan.sb))
    real = a * 2.0**-fa.frac + b * 2.0**-fb.frac
    exact = np.clip(np.floor(real * 2.0**out.frac + 0.5), 0, out.hi)
    np.testing.assert_array_equal(got, exact)


def test_lcc_codes_only_matrix_layers_and_residual_cnn_is_accurate(
    tmp_path: Path, torch_cnn: Callable[..., Path], golden_model: Compile
) -> None:
    path = torch_cnn("residual", tmp_path / "res.onnx")
    g = load_onnx(path)
    x = np.random.default_rng(6).uniform(-1, 1, (40, 3 * 81))
    net = golden_model(g, "quantize{act_bits=10,input_bits=10},lcc{sqnr_db=40}", x)
    assert all(layer.code is not None for layer in g.matrix_layers())
    assert len(g.matrix_layers()) == 5 and len(g.layers) == 10
    y = net.output_fmt.to_real(net.evaluate(net.quantize_input(x)))
    ref = onnx_reference(path, x)
    err = np.sqrt(np.mean((y - ref) ** 2)) / np.sqrt(np.mean(ref**2))
    assert err < 0.05


def test_digits_cnn_golden_accuracy_within_a_point_of_float(golden_model: Compile) -> None:
    from nnlcc.data import load_npz

    model = EXAMPLES / "digits_cnn.onnx"
    if not model.is_file():
        pytest.skip("examples/digits_cnn.onnx not built")
    g = load_onnx(model)
    d = load_npz(EXAMPLES / "digits.npz", g.input_size)
    net = golden_model(g, "quantize,lcc", d.x_calib)
    y_float = onnx_reference(model, d.x_test)
    y_gold = net.evaluate(net.quantize_input(d.x_test))
    acc_float = np.mean(y_float.argmax(1) == d.y_test)
    acc_gold = np.mean(y_gold.argmax(1) == d.y_test)
    assert acc_gold >= acc_float - 0.01
