"""Report rows: one builder for every layer kind, from the lowered network or (--report-only
on big networks) from the matrix codes; both agree on what they share, and the IR's
line-buffer size agrees with the streaming hardware's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nnlcc.report.rows
from nnlcc.baselines import layer_facts
from nnlcc.driver import CompileOptions, compile_model
from nnlcc.ir.family import ECP5
from nnlcc.ir.lower import lower_network
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import (
    AddLayer,
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    MatrixGraph,
    PoolLayer,
)
from nnlcc.ir.window import Window
from nnlcc.passes import resolve_pipeline, run_passes
from nnlcc.report.layer_row import LayerRow
from nnlcc.report.rows import csd_baseline, layer_rows, layer_totals

EXAMPLES = Path(__file__).parents[2] / "examples"
KEYS = ("name", "kind", "shape", "adders", "kernel", "stride", "line_buffer_bits")
MATRIX_ONLY = ("weight_sqnr_db", "relu", "csd_baseline_adders", "kept_columns", "pre_adders")


@pytest.fixture(scope="module")
def tiny() -> tuple[MatrixGraph, LoweredNetwork]:
    """conv, conv, residual add, max pool, flatten, dense on a 1x6x6 image, CSD coded."""
    rng = np.random.default_rng(0)
    w3 = Window((3, 3), (1, 1), (1, 1, 1, 1))

    def weights(rows: int, cols: int) -> tuple[Any, Any]:
        return rng.normal(size=(rows, cols)), 0.1 * rng.normal(size=rows)

    layers = [
        ConvLayer("c1", *weights(2, 9), relu=True, image=(1, 6, 6), window=w3),
        ConvLayer("c2", *weights(2, 18), image=(2, 6, 6), window=w3),
        AddLayer("res", ("c1", "c2"), (2, 6, 6), relu=True),
        PoolLayer("pool", "max", (2, 6, 6), Window((2, 2), (2, 2))),
        FlattenLayer("flat", (2, 3, 3)),
        DenseLayer("fc", *weights(4, 18)),
    ]
    graph = MatrixGraph("tiny", "x", 36, "fc", layers, input_shape=(1, 6, 6))
    run_passes(graph, resolve_pipeline("quantize,csd"), rng.uniform(0, 1, size=(32, 36)), ECP5)
    return graph, lower_network(graph)


def test_rows_of_every_layer_kind(tiny: tuple[MatrixGraph, LoweredNetwork]) -> None:
    graph, net = tiny
    rows = layer_rows(graph, net, facts=layer_facts(graph))
    assert [(r.kind, r.pass_name) for r in rows] == [
        ("conv", "csd"),
        ("conv", "csd"),
        ("add", "add"),
        ("pool", "max"),
        ("flatten", "flatten"),
        ("dense", "csd"),
    ]
    for row, low in zip(rows, net.layers, strict=True):
        assert (row.adders, row.depth, row.latency) == (
            low.graph.adders,
            low.graph.depth,
            low.graph.latency,
        )
        assert row.in_fmt == str(low.in_fmt) and row.out_bits == low.out_fmt.bits
    c1, _, add, pool, flat, fc = (r.to_json() for r in rows)
    assert c1["shape"] == [2, 9] and fc["shape"] == [4, 18]
    for matrix in (c1, fc):
        assert all(k in matrix for k in MATRIX_ONLY) and "csd_digits" in matrix  # summary
        assert matrix["adders_per_weight"] == round(matrix["adders"] / np.prod(matrix["shape"]), 4)
    for plain in (add, pool, flat):
        assert not any(k in plain for k in MATRIX_ONLY) and plain["adders_per_weight"] is None
    assert flat["adders"] == 0 and flat["shape"] == [18, 18]
    assert (c1["kernel"], pool["kernel"], pool["stride"]) == ([3, 3], [2, 2], [2, 2])
    assert "window_delay" in pool and "kernel" not in add and "kernel" not in fc
    assert [LayerRow.from_json(r.to_json()) for r in rows] == rows


def test_code_rows_agree_with_lowered_rows(tiny: tuple[MatrixGraph, LoweredNetwork]) -> None:
    graph, net = tiny
    facts = layer_facts(graph)
    lowered = [r.to_json() for r in layer_rows(graph, net, facts=facts)]
    coded = [r.to_json() for r in layer_rows(graph, facts=facts)]
    for low, code in zip(lowered, coded, strict=True):
        # the same keys: code rows lack only the streaming hardware's window delay
        assert set(low) - set(code) <= {"window_delay"} and set(code) <= set(low)
        known = {k: v for k, v in code.items() if v is not None}
        assert known == {k: low[k] for k in known}, code["name"]
        if code["kind"] in ("dense", "conv"):  # what only a lowered graph knows
            assert code["depth"] is None and code["adder_bits"] is None
    totals = layer_totals(graph, layer_rows(graph, net))
    assert totals.adders == sum(r["adders"] for r in lowered)
    assert totals.csd_adders == csd_baseline(graph)
    assert totals.weights == 2 * 9 + 2 * 18 + 4 * 18
    assert layer_totals(graph, layer_rows(graph)).adders == totals.adders


def test_rows_carry_the_cost_model_estimate(tiny: tuple[MatrixGraph, LoweredNetwork]) -> None:
    from nnlcc.ir.cost import estimate, estimate_network

    graph, net = tiny
    cost = estimate_network(net, ECP5)
    rows = layer_rows(graph, net, ECP5, cost.layers)
    for row, low in zip(rows, net.layers, strict=True):
        want = estimate(low.graph, ECP5)
        assert (row.est_luts, row.est_ffs) == (want.luts, want.ffs_synth), row.name
    assert layer_rows(graph, net, ECP5) == rows  # the same without the precomputed costs
    totals = layer_totals(graph, rows, ECP5)
    assert cost.total is not None
    assert (totals.est_luts, totals.est_ffs) == (cost.total.luts, cost.total.ffs_synth)
    assert totals.est_family == "ecp5"
    # code-only rows: the small lowered layers have an estimate, matrix layers none
    coded = layer_rows(graph, None, ECP5)
    for row, low in zip(coded, rows, strict=True):
        if row.kind in ("dense", "conv"):
            assert row.est_luts is None and row.est_ffs is None
        else:
            assert (row.est_luts, row.est_ffs) == (low.est_luts, low.est_ffs)
    assert layer_totals(graph, coded, ECP5).est_luts is None  # unknown, not a partial sum
    assert layer_totals(graph, rows).est_luts is None  # no family: no estimate


def _report(tmp_path: Path, limit: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(nnlcc.report.rows, "LOWER_LIMIT_WEIGHTS", limit)
    opts = CompileOptions(
        model=EXAMPLES / "digits_cnn.onnx", report_only=True, outdir=tmp_path / str(limit)
    )
    return compile_model(opts).to_json()  # report.json's data


def test_code_rows_match_lowered_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (EXAMPLES / "digits_cnn.onnx").is_file():
        pytest.skip("examples/digits_cnn.onnx not built")
    light = _report(tmp_path, 0, monkeypatch)
    full = _report(tmp_path, 10**9, monkeypatch)
    assert [{k: r.get(k) for k in KEYS} for r in light["layers"]] == [
        {k: r.get(k) for k in KEYS} for r in full["layers"]
    ]
    assert [r["kind"] for r in light["layers"]] == [
        "conv",
        "pool",
        "conv",
        "pool",
        "flatten",
        "dense",
    ]
    assert light["totals"]["adders"] == full["totals"]["adders"]
    assert light["totals"]["csd_adders"] == full["totals"]["csd_adders"]
    assert light["totals"]["pre_adders"] == full["totals"]["pre_adders"]
    assert light["latency_cycles"] is None and "skipped" in light["accuracy"]
    assert light["accuracy"]["sqnr_db"] > 25
    assert full["accuracy"]["golden"] >= full["accuracy"]["float"] - 0.01
