"""The fit verdict of a network too big to lower: the cost model on the lowered sample, the
rest scaled by adders, block RAM from the line buffers, the largest parts of ECP5 and xc7."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import compile_graph, wide_line_graph

from nnlcc.boards import code_fit as cf
from nnlcc.boards import get_board
from nnlcc.boards.fit import model_resources
from nnlcc.ir.family import ECP5, XC7
from nnlcc.ir.matrix import MatrixGraph
from nnlcc.report.rows import code_adders


@pytest.fixture(scope="module")
def cnn() -> tuple[MatrixGraph, dict[str, int]]:
    graph = wide_line_graph()
    compile_graph(graph, "quantize,csd", np.random.default_rng(6).uniform(0, 1, (64, 320)))
    adders = {la.name: code_adders(la.code, la.shape[1]) for la in graph.matrix_layers()}
    return graph, adders


def test_whole_sample_is_the_lowered_estimate(
    cnn: tuple[MatrixGraph, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nnlcc.ir.lower import lower_network

    graph, adders = cnn
    board = get_board("ulx3s")
    monkeypatch.setattr(cf, "SAMPLE_WEIGHTS", 10**9)
    res = cf.code_fit(graph, adders, board)
    model = model_resources(lower_network(graph, board.family), board.family)
    assert (res["luts"], res["ffs"], res["bram"]) == (model["luts"], model["ffs"], model["bram"])
    assert res["bram"] == 8 and res["scaled_adders_pct"] == 0.0 and res["fits"]


def test_scaled_layers_and_largest_parts(
    cnn: tuple[MatrixGraph, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    graph, adders = cnn
    board = get_board("ulx3s-12f")
    monkeypatch.setattr(cf, "SAMPLE_WEIGHTS", 300)  # the smallest layer only (c1, 144)
    res = cf.code_fit(graph, adders, board)
    assert res["sampled_layers"] == ["c1"]
    scaled = adders["c2"] + adders["fc"]
    assert res["scaled_adders_pct"] == round(100 * scaled / sum(adders.values()), 1) > 50
    for family in (ECP5, XC7):
        v = res["families"][family.name]
        part = family.largest_part
        assert v["largest_part"] == part.name
        assert v["parts_needed"] == max(
            math.ceil(v["luts"] / part.luts),
            math.ceil(v["ffs"] / part.ffs),
            math.ceil(v["bram"] / part.bram),
        )
    msg = res["message"]
    assert "\n" not in msg and msg.startswith(f"{graph.name} ") and "LFE5U-12F (ulx3s-12f)" in msg
    assert "x LFE5U-85F (ecp5)" in msg and "x XC7V2000T (xc7)" in msg
    assert ("does not fit" in msg) is not res["fits"]


def test_report_only_of_a_network_too_big_to_lower(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``nnlcc compile --report-only`` on a network over the lowering limit (the limit lowered
    here, as ResNet-34 crosses it) writes the typed verdict into report.json's resources and
    reads it back."""
    import json

    from nnlcc.driver import CompileOptions, compile_model
    from nnlcc.examples import CNN
    from nnlcc.report import rows
    from nnlcc.report.schema import Report

    monkeypatch.setattr(rows, "LOWER_LIMIT_WEIGHTS", 0)
    lines: list[str] = []
    opts = CompileOptions(
        model=CNN, passes="quantize,csd", report_only=True, outdir=tmp_path / "out"
    )
    report = compile_model(opts, lines.append)
    res = report.resources
    assert res is not None and res.families is not None and res.message is not None
    assert set(res.families) == {ECP5.name, XC7.name} and res.estimate
    assert res.families[ECP5.name].largest_part == ECP5.largest_part.name
    assert res.family is not None and res.families[res.family].luts == res.luts
    assert res.message in lines
    assert not (tmp_path / "out" / "ir.txt").exists()
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert Report.from_json(written).resources == res
