"""ResNet-34 through the frontend: 36 convs + 1 dense layer, 21.8 M weights after folding batch
norm, 16 residual adds, and the float IR equal to onnxruntime on a 224x224 image.  (The
--report-only compile of the whole network is the benchmark benchmarks/resnet34.py.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nnlcc.frontends import load_onnx, onnx_reference
from nnlcc.ir.matrix import AddLayer, ConvLayer, PoolLayer
from nnlcc.ir.notes import BatchNormLayer, OnnxNodes

EXAMPLE = Path(__file__).parents[2] / "examples" / "resnet34.py"


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("example_resnet34", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_resnet34_torch_model_has_the_published_size() -> None:
    model = _example().seeded_model()
    convs = [m for m in model.modules() if type(m).__name__ == "Conv2d"]
    weights = sum(p.numel() for p in model.parameters() if p.dim() > 1)
    assert len(convs) == 36 and weights == 21_779_648


@pytest.mark.slow
def test_resnet34_imports_and_matches_onnxruntime(tmp_path: Path) -> None:
    path = _example().export(tmp_path / "resnet34.onnx")
    g = load_onnx(path)
    matrix = g.matrix_layers()
    assert len(matrix) == 37 and sum(layer.weight.size for layer in matrix) == 21_779_648
    assert sum(isinstance(layer, ConvLayer) for layer in matrix) == 36
    assert sum(isinstance(layer, AddLayer) for layer in g.layers) == 16
    assert [layer.op for layer in g.layers if isinstance(layer, PoolLayer)] == ["max", "avg"]
    # every BatchNormalization folded into its conv (none left as a diagonal layer)
    assert all(BatchNormLayer not in layer.notes for layer in matrix)
    assert sum(len(layer.notes[OnnxNodes].nodes) == 2 for layer in matrix) == 36
    x = np.random.default_rng(0).uniform(-1, 1, size=(1, g.input_size))
    ref = onnx_reference(path, x)
    np.testing.assert_allclose(g.forward_float(x), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
