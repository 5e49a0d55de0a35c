"""nnlcc inspect: support verdicts, weight statistics and the CSD / LCC addition estimates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from nnlcc import inspect as im
from nnlcc.driver import EXAMPLE_MODEL, load_model
from nnlcc.errors import BadInputError
from nnlcc.passes.lcc import Lcc
from nnlcc.report.rows import csd_baseline


def test_example_layers_match_the_compiler() -> None:
    info = im.inspect_model(EXAMPLE_MODEL)
    assert info["supported"] and info["problem"] is None
    assert [n["op"] for n in info["nodes"]] == ["Gemm", "Relu", "Gemm"]
    assert all(n["supported"] for n in info["nodes"])
    fc1, fc2 = info["layers"]
    assert fc1["matrix"] == [16, 64] and fc1["relu"] and not fc2["relu"]
    graph = load_model(EXAMPLE_MODEL)
    # the CSD column is the baseline every report prints
    assert info["totals"]["csd_adders"] == csd_baseline(graph)
    # small matrices: the LCC column is the lcc pass itself at its defaults
    assert fc2["lcc"]["method"] == "exact"
    assert fc2["lcc"]["adders"] == Lcc().build(graph.layers[1].weight).adders
    s = fc1["stats"]
    w = graph.layers[0].weight
    assert s["min"] == pytest.approx(w.min(), abs=1e-6) and s["zeros"] == 0
    assert 35 < s["sqnr_db_8bit"] < 50


def test_sampled_lcc_estimate_is_close_to_the_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    w = np.random.default_rng(1).standard_normal((64, 96))
    exact = im.lcc_estimate(w, 40.0)
    assert exact["method"] == "exact"
    monkeypatch.setattr(im, "LCC_EXACT_ENTRIES", 100)
    monkeypatch.setattr(im, "LCC_SAMPLE_SLICES", 4)
    sampled = im.lcc_estimate(w, 40.0)
    assert sampled["method"] == "sampled 28 of 64 rows"  # wide: 4 slices of log2(96) rows
    assert sampled["adders"] == pytest.approx(exact["adders"], rel=0.25)


def test_unsupported_model_names_the_node(tmp_path: Path) -> None:
    w = onnx.numpy_helper.from_array(np.ones((3, 4), dtype=np.float32), "w")
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"], name="fc", transB=1),
        helper.make_node("Softsign", ["h"], ["y"], name="squash"),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [w],
    )
    path = tmp_path / "softsign.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    info = im.inspect_model(path)
    assert not info["supported"] and "squash" in info["problem"]
    verdicts = {n["name"]: n["supported"] for n in info["nodes"]}
    assert verdicts == {"fc": True, "squash": False}
    assert "not supported" in im.render_text(info)


def test_unreadable_file_raises() -> None:
    with pytest.raises(BadInputError, match="not found"):
        im.inspect_model("no/such/model.onnx")


def test_text_summary_line() -> None:
    text = im.render_text(im.inspect_model(EXAMPLE_MODEL, lcc=False))
    assert "digits_mlp: supported; 1184 weights; CSD 1783 adders" in text
    assert "LCC" not in text
