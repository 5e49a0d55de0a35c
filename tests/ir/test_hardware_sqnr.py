"""The hardware's SQNR (nnlcc.ir.truncate.hardware_sqnr): without truncation it is the coding
SQNR exactly; with it, it is lower by the measured truncation noise, close to what the budget
modelled; conv layers are measured on their window vectors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_tiny_cnn, compile_graph

from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.matrix import DenseLayer, MatrixGraph, MatrixLayer
from nnlcc.ir.truncate import TruncationBudget, hardware_sqnr


def _graph(seed: int = 3, rows: int = 12, cols: int = 24) -> MatrixGraph:
    rng = np.random.default_rng(seed)
    layer = DenseLayer("fc", rng.normal(0, 0.5, size=(rows, cols)), rng.normal(0, 0.1, size=rows))
    return MatrixGraph("g", "x", cols, "y", [layer])


def _sqnr(pipeline: str) -> tuple[MatrixLayer, float, np.ndarray]:
    g = _graph()
    x = np.random.default_rng(1).uniform(-1, 1, size=(256, g.input_size))
    net = compile_graph(g, pipeline, x)
    layer = g.matrix_layers()[0]
    return layer, hardware_sqnr(g, net, net.quantize_input(x))["fc"], x


def test_untruncated_hardware_sqnr_is_the_coding_sqnr() -> None:
    layer, hw, _ = _sqnr("quantize,csd{weight_bits=5,truncate=off}")
    assert layer.code is not None
    assert hw == pytest.approx(sqnr_db(layer.weight, layer.code.implemented()), abs=1e-9)


def test_truncation_lowers_the_hardware_sqnr_by_about_the_budgeted_noise() -> None:
    layer, hw, _ = _sqnr("quantize,csd{weight_bits=8,truncate=30}")
    assert layer.code is not None
    coding = sqnr_db(layer.weight, layer.code.implemented())
    budget = layer.notes.get(TruncationBudget)
    assert budget is not None
    assert hw < coding  # the truncation's noise is real, and measured
    assert hw > 30 - 3  # and the budget (30 dB, modelled) roughly holds on real inputs


def test_conv_layers_are_measured_on_their_windows() -> None:
    g = build_tiny_cnn()
    x = np.random.default_rng(0).uniform(0, 1, size=(32, g.input_size))
    net = compile_graph(g, "quantize,csd{weight_bits=6,truncate=off}", x)
    hw = hardware_sqnr(g, net, net.quantize_input(x))
    for layer in g.matrix_layers():
        assert layer.code is not None
        assert hw[layer.name] == pytest.approx(
            sqnr_db(layer.weight, layer.code.implemented()), abs=1e-9
        )
