"""The shipped default model imports as 64→16→10 and keeps its trained accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnlcc.frontends import load_onnx, onnx_reference

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODEL = EXAMPLES / "digits_mlp.onnx"


def test_digits_mlp_shapes() -> None:
    g = load_onnx(MODEL)
    g.verify()
    assert (g.name, g.input_name, g.output_name) == ("digits_mlp", "x", "logits")
    assert [layer.shape for layer in g.layers] == [(16, 64), (10, 16)]
    assert [layer.relu for layer in g.layers] == [True, False]
    assert [layer.name for layer in g.layers] == ["fc1", "fc2"]


def test_digits_mlp_accuracy_matches_onnxruntime() -> None:
    data = np.load(EXAMPLES / "digits.npz")
    x, y = data["x_test"], data["y_test"]
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    g = load_onnx(MODEL)
    ours = g.forward_float(x)
    ref = onnx_reference(MODEL, x)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    acc = float(np.mean(ours.argmax(axis=1) == y))
    assert acc == float(np.mean(ref.argmax(axis=1) == y))
    assert acc >= 0.95
