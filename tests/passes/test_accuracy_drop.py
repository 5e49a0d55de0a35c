"""``--accuracy-drop``: per-layer SQNR targets searched against the golden accuracy, and the
one-line refusals of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnlcc.data import VAL_FRACTION, Dataset, load_npz
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
    assert d["drop_points"] == 0.5 and d["default_drop"] is True
    # chosen on a validation split of the training set; the test set's figures apart
    assert d["chosen_on"].startswith("validation split") and d["optimistic"] is False
    assert d["golden"] >= d["float"] - 0.005
    assert d["test_golden"] == r["accuracy"]["golden"]
    assert r["totals"]["est_luts"] == d["est_luts"]
    assert d["est_luts"] * 2 < d["points"][0]["est_luts"]  # measured: 4,292 vs 11,664 (xc7)
    html = (tmp_path / "o" / "report.html").read_text()
    assert "Accuracy-driven SQNR targets" in html and "accuracy vs estimated LUTs" in html


def test_targets_are_chosen_on_validation_data_and_tested_apart() -> None:
    g, data = labelled_mlp(n=400)
    # the test set: labels flipped, so a choice made on it would look very different
    val = Dataset("synthetic", data.x_calib, data.x_test[:200], data.y_test[:200])
    val.x_val, val.y_val = data.x_test[200:], data.y_test[200:]
    val.val_source = "validation split: a test"
    val.y_test = (val.y_test + 1) % 4
    run_passes(g, resolve_pipeline("quantize", default="quantize"), val.x_calib, ECP5)
    rec = choose_targets(g, Auto(coders="csd"), val, 2.0, ECP5)
    assert rec.float_accuracy == 1.0  # on the validation data (labels the float net gets)
    assert rec.optimistic is False and rec.chosen_on == "validation split: a test"
    assert rec.test_float == 0.0 and rec.test_golden is not None and rec.test_golden < 0.1


def test_without_validation_data_the_figure_is_called_optimistic() -> None:
    from nnlcc.report.columns import accuracy_drop_lines
    from nnlcc.report.schema import Report

    g, data = labelled_mlp()
    run_passes(g, resolve_pipeline("quantize", default="quantize"), data.x_calib, ECP5)
    rec = choose_targets(g, Auto(coders="csd"), data, 2.0, ECP5, default=True)
    assert rec.optimistic is True and rec.test_golden is None
    report = Report.__new__(Report)
    report.accuracy_drop = rec
    text = accuracy_drop_lines(report)[0]
    assert "optimistic" in text and "the default: --accuracy-drop not given" in text


def test_a_labelled_training_set_gives_a_seeded_validation_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1, (100, 12)), rng.integers(0, 4, 100)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    data = load_npz(tmp_path / "d.npz", 12, 4)
    assert data.x_val is not None and data.y_val is not None
    assert len(data.x_val) == int(100 * VAL_FRACTION) and len(data.x_calib) == 100
    rows = {tuple(r) for r in x}
    assert all(tuple(r) in rows for r in data.x_val)
    again = load_npz(tmp_path / "d.npz", 12, 4)
    assert again.x_val is not None and np.array_equal(again.x_val, data.x_val)


def test_a_val_file_that_does_not_match_the_model_is_one_line(tmp_path: Path) -> None:
    np.savez(tmp_path / "v.npz", x_val=np.zeros((5, 7)), y_val=np.zeros(5, dtype=int))
    with pytest.raises(BadInputError) as e:
        compile_model(
            CompileOptions(
                data=EXAMPLE_DATA,
                val=tmp_path / "v.npz",
                accuracy_drop=0.5,
                outdir=tmp_path / "o",
                report_only=True,
            )
        )
    msg = str(e.value)
    assert "--val file" in msg and "64 input features" in msg and "\n" not in msg
