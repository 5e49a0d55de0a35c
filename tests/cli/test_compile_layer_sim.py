"""``nnlcc compile --layer``: one matrix layer as Verilog, bit-exact in cocotb.

The fast tests use the digits CNN; the slow one a 128 x 1152 convolution (the shape of a
ResNet-34 stage-2 conv: 128 channels, 3x3 window) with about 130 k LCC adders, written by the
flat Verilog writer and simulated on 300 random window vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

import nnlcc.compile_layer as lv
from nnlcc.cli import app
from nnlcc.driver import CompileOptions
from nnlcc.sim.runner import available_simulators

EXAMPLES = Path(__file__).parents[2] / "examples"
needs_sim = pytest.mark.skipif(not available_simulators(), reason="no HDL simulator")


def _mid_conv(path: Path, channels: int = 128) -> Path:
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((channels, channels, 3, 3)) / np.sqrt(9 * channels)).astype(np.float32)
    b = (rng.standard_normal(channels) * 0.1).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="mid", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)],
        initializer=[onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@needs_sim
@pytest.mark.parametrize("flat", [False, True], ids=["amaranth", "flat"])
def test_digits_cnn_layer_bit_exact(
    tmp_path: Path, flat: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if flat:
        monkeypatch.setattr(lv, "FLAT_NODES", 0)
    opts = CompileOptions(model=EXAMPLES / "digits_cnn.onnx", outdir=tmp_path, random_vectors=200)
    r = lv.compile_layer(opts, "conv2", lambda _: None)
    assert r["shape"] == [8, 36] and r["kind"] == "conv" and r["window"].startswith("k=3x3")
    assert r["verification"]["bit_exact"] and r["verification"]["vectors"] == 200
    assert r["verilog_writer"] == ("flat" if flat else "amaranth")
    assert json.loads((tmp_path / "layer.json").read_text())["adders"] == r["adders"]


def test_huge_layer_warns_with_its_size_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lv, "HUGE_LAYER_ADDERS", 10)
    result = CliRunner().invoke(
        app,
        [
            "compile",
            str(EXAMPLES / "digits_cnn.onnx"),
            "--layer",
            "fc",
            "--no-verify",
            "-o",
            str(tmp_path),
            "-v",
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "warning: layer fc is huge" in out and "adders" in out
    assert out.index("is huge") < out.index("verilog:")
    assert (tmp_path / "fc.v").is_file() and "NOT verified" in out


def test_unknown_layer_is_one_line_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["compile", str(EXAMPLES / "digits_cnn.onnx"), "--layer", "pool1", "-q"]
    )
    assert result.exit_code == 2
    assert "no matrix layer 'pool1'" in result.output and "conv1, conv2, fc" in result.output


@pytest.mark.slow
@needs_sim
def test_mid_size_conv_layer_bit_exact(tmp_path: Path) -> None:
    model = _mid_conv(tmp_path / "mid.onnx")
    opts = CompileOptions(model=model, outdir=tmp_path / "out", random_vectors=300)
    r = lv.compile_layer(opts, "mid", lambda _: None)
    assert r["shape"] == [128, 1152]
    assert r["adders"] > 100_000 and r["verilog_writer"] == "flat"
    assert r["verification"] == {"simulator": "verilator", "vectors": 300, "bit_exact": True}
