"""``--accuracy-drop``: per-layer SQNR targets searched against the golden accuracy, and the
one-line refusals of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnlcc.data import Dataset
from nnlcc.driver import EXAMPLE_DATA, CompileOptions, compile_model
from nnlcc.errors import BadInputError
from nnlcc.ir.family import ECP5
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.passes import resolve_pipeline, run_passes
from nnlcc.passes.auto import Auto, AutoRecord
from nnlcc.sweep import TARGET_LEVELS, choose_targets


def labelled_mlp(n: int = 300) -> tuple[MatrixGraph, Dataset]:
    rng = np.random.default_rng(5)
    layers = [
        DenseLayer("fc1", rng.normal(0, 0.5, (10, 12)), rng.normal(0, 0.1, 10), relu=True),
        DenseLayer("fc2", rng.normal(0, 0.5, (4, 10)), rng.normal(0, 0.1, 4)),
    ]
    g = MatrixGraph("m", "x", 12, "y", layers)  # type: ignore[arg-type]
    x = rng.uniform(0, 1, size=(n, 12))
    y = g.forward_float(x).argmax(1)  # labels the float network gets right: float = 1.0
    return g, Dataset("synthetic", x[:64], x, y)


def test_targets_meet_the_floor_and_save_luts() -> None:
    g, data = labelled_mlp()
    run_passes(g, resolve_pipeline("quantize", default="quantize"), data.x_calib, ECP5)
    rec = choose_targets(g, Auto(coders="csd+lcc"), data, 2.0, ECP5)
    assert rec.float_accuracy == 1.0 and rec.floor == pytest.approx(0.98)
    assert rec.golden >= rec.floor
    start = rec.points[0]
    assert start.targets == {"fc1": TARGET_LEVELS[0], "fc2": TARGET_LEVELS[0]}
    assert rec.est_luts <= start.est_luts
    assert min(rec.targets.values()) < TARGET_LEVELS[0]  # it gave up some SQNR
    # the graph holds the chosen codes, recorded with their targets
    assert {la.name: la.notes[AutoRecord].sqnr_db for la in g.matrix_layers()} == rec.targets
    # every point accepted on the way met the floor; the chosen one is the cheapest of them
    ok = [p for p in rec.points if p.golden >= rec.floor]
    assert rec.est_luts == min(p.est_luts for p in ok if p.targets == rec.targets)


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"accuracy_drop": -1.0}, "--accuracy-drop must be a number of accuracy points in 0..100"),
        (
            {"accuracy_drop": 0.5, "passes": "quantize,lcc"},
            "--accuracy-drop cannot be used: it chooses the SQNR targets of the auto matrix pass,"
            " and the pipeline codes with lcc",
        ),
    ],
)
def test_bad_accuracy_drop_is_one_line(
    opts: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(BadInputError) as e:
        compile_model(CompileOptions(outdir=tmp_path / "o", report_only=True, **opts))  # type: ignore[arg-type]
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unlabelled_data_is_refused(tmp_path: Path) -> None:
    x = np.random.default_rng(0).uniform(0, 1, size=(20, 64))
    np.savez(tmp_path / "d.npz", x_test=x, x_train=x)
    with pytest.raises(BadInputError, match="has no labels"):
        compile_model(
            CompileOptions(
                data=tmp_path / "d.npz", accuracy_drop=0.5, outdir=tmp_path / "o", report_only=True
            )
        )


def test_small_test_sets_get_a_warning(tmp_path: Path) -> None:
    _, data = labelled_mlp(n=50)
    from nnlcc.driver import accuracy_drop

    logged: list[str] = []
    opts = CompileOptions(data=tmp_path / "d.npz")
    assert accuracy_drop(opts, resolve_pipeline(None), data, False, logged.append) == 0.5
    assert any("fewer than 100" in m and "50 test samples" in m for m in logged)


@pytest.mark.slow
def test_digits_mlp_default_with_data(tmp_path: Path) -> None:
    r = compile_model(
        CompileOptions(data=EXAMPLE_DATA, outdir=tmp_path / "o", report_only=True)
    ).to_json()
    d = r["accuracy_drop"]
    assert d["drop_points"] == 0.5
    assert r["accuracy"]["golden"] >= r["accuracy"]["float"] - 0.005
    assert r["totals"]["est_luts"] == d["est_luts"]
    assert d["est_luts"] * 2 < d["points"][0]["est_luts"]  # measured: 4,292 vs 11,664 (xc7)
    html = (tmp_path / "o" / "report.html").read_text()
    assert "Accuracy-driven SQNR targets" in html and "accuracy vs estimated LUTs" in html
