"""Weight sharing: clustering, the pre-adders in the adder graph, the report, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnlcc.cli import app
from nnlcc.driver import EXAMPLE_MODEL, CompileOptions, compile_model
from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.family import ECP5
from nnlcc.ir.matrix import MatrixCode
from nnlcc.passes import parse_pipeline
from nnlcc.passes.csd import CsdCode
from nnlcc.passes.lcc import LccCode, LccOptions
from nnlcc.passes.share import ShareCode, SharePlan, plan_layer


def exact_rows(code: MatrixCode, n_in: int, x: np.ndarray) -> np.ndarray:
    """Lower ``code`` into a fresh graph and evaluate it exactly: rows of ``x @ M.T`` scaled
    to integers (as the golden model sees them before requantization)."""
    g = AdderGraph.with_inputs([(-128, 127)] * n_in)
    terms = code.lower(g, list(range(n_in)))
    zero = g.const(0)
    g.outputs = [t.node if t.node is not None else zero for t in terms]
    y = g.evaluate(x).astype(object)
    lo = min(t.exp for t in terms)
    out = np.empty_like(y)
    for r, t in enumerate(terms):
        out[:, r] = (-y[:, r] if t.neg else y[:, r]) * 2 ** (t.exp - lo)
    want = x.astype(object) @ (code.implemented() * 2.0**-lo).astype(np.int64).T.astype(object)
    assert np.all(code.implemented() * 2.0**-lo == np.round(code.implemented() * 2.0**-lo))
    return np.asarray(out == want)


def pow2_matrix() -> np.ndarray:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=5), rng.normal(size=5)
    # a, -2a, a/4 (one cluster up to sign and power of two), b, -b, and an unused column
    return np.stack([a, -2 * a, b, np.zeros(5), a / 4, -b], axis=1)


def test_pow2_and_sign_equal_columns_share_exactly() -> None:
    w = pow2_matrix()
    plan = plan_layer(w, 2, 0.0, "pow2", "kmeans", 0, "test")
    assert plan.clusters == 2 and plan.pre_adders == 3  # (3 - 1) + (2 - 1)
    assert sorted(plan.members) == [[0, 1, 4], [2, 5]]
    np.testing.assert_allclose(plan.reduced @ plan.expand, w, atol=1e-12)
    assert plan.error_sqnr_db > 250  # exact up to the rounding of the weighted mean
    assert np.all(plan.expand[:, 3] == 0)  # the unused column costs nothing
    # with mode=plain they are merely different columns: 2 clusters cannot be exact
    assert plan_layer(w, 2, 0.0, "plain", "kmeans", 0, "t").error_sqnr_db < 20


@pytest.mark.parametrize("inner", ["csd", "lcc"])
def test_lowered_pre_adders_compute_the_implemented_matrix(inner: str) -> None:
    rng = np.random.default_rng(7)
    w = rng.normal(size=(12, 20)) * np.ldexp(1.0, rng.integers(-3, 3, size=20))
    plan = plan_layer(w, 9, 0.0, "pow2", "kmeans", 0, "test")
    code = ShareCode(
        plan,
        CsdCode.from_weights(plan.reduced, 8)
        if inner == "csd"
        else LccCode.build(plan.reduced, LccOptions(sqnr_db=40.0)),
    )
    assert code.name == f"share+{inner}"
    x = rng.integers(-128, 128, size=(64, 20))
    assert exact_rows(code, 20, x).all()
    g = AdderGraph.with_inputs([(-128, 127)] * 20)
    code.lower(g, list(range(20)))
    g2 = AdderGraph.with_inputs([(-128, 127)] * 9)
    code.inner.lower(g2, list(range(9)))
    assert g.adders == g2.adders + plan.pre_adders  # the report counts the pre-adders


def test_tolerance_picks_the_fewest_clusters_within_it() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, 30))
    plan = plan_layer(w, 0, 0.3, "plain", "kmeans", 0, "test")
    rel = np.linalg.norm(w - plan.reduced @ plan.expand) / np.linalg.norm(w)
    assert rel <= 0.3 and plan.clusters < 30
    fewer = plan_layer(w, plan.clusters - 1, 0.0, "plain", "kmeans", 0, "test")
    assert np.linalg.norm(w - fewer.reduced @ fewer.expand) / np.linalg.norm(w) > 0.3


def test_share_in_the_pipeline_reports_kept_shared_and_pre_adders(tmp_path: Path) -> None:
    r = compile_model(
        CompileOptions(
            passes="quantize,share{clusters=40,layers=fc1},csd", report_only=True, outdir=tmp_path
        )
    ).to_json()
    fc1, fc2 = r["layers"]
    assert fc1["pass"] == "share+csd" and fc2["pass"] == "csd"
    assert (fc1["kept_columns"], fc1["shared_columns"], fc1["pre_adders"]) == (64, 40, 24)
    assert (fc2["kept_columns"], fc2["shared_columns"], fc2["pre_adders"]) == (16, 16, 0)
    assert r["totals"]["pre_adders"] == 24
    assert r["accuracy"]["golden"] >= 0.9  # 40 of 64 pixel columns still read digits
    assert fc1["weight_sqnr_db"] < 40  # measured against the unshared weights: honest


def test_share_refuses_more_clusters_than_columns() -> None:
    (p,) = parse_pipeline("share{clusters=20,layers=fc2}")
    from nnlcc.driver import load_data, load_model
    from nnlcc.passes import PassContext

    graph = load_model(EXAMPLE_MODEL)
    data = load_data(graph, EXAMPLE_MODEL, None, 0)
    with pytest.raises(BadInputError, match="20 clusters asked for layer fc2, which has only 16"):
        p.apply(graph, PassContext(data.x_calib, ECP5))
    assert all(SharePlan not in layer.notes for layer in graph.layers)  # nothing changed


def test_cli_cluster_count_too_large_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "compile",
            "--passes",
            "quantize,share{clusters=100},lcc",
            "--report-only",
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 2
    assert "100 clusters asked for" in res.output and "Traceback" not in res.output
    assert not out.exists()


@pytest.mark.parametrize(
    "text",
    [
        "share",  # neither clusters nor tolerance
        "share{clusters=4,tolerance=0.1}",
        "share{tolerance=1.5}",
        "share{mode=scaled,clusters=3}",
        "share{algo=affinity,clusters=3}",
    ],
)
def test_bad_share_options(text: str) -> None:
    with pytest.raises(PassOptionError):
        parse_pipeline(text)


def test_share_plan_without_used_columns() -> None:
    plan = plan_layer(np.zeros((3, 4)), 0, 0.1, "pow2", "kmeans", 0, "t")
    assert isinstance(plan, SharePlan) and plan.clusters == 0 and plan.pre_adders == 0


@pytest.mark.parametrize("inner", ["csd", "lcc"])
def test_zero_columns_cost_nothing(inner: str) -> None:
    """Pruned network inputs stay as zero columns: the matrix codes must skip them (transposed
    LCC is left out: its slice width follows the row count of W.T, zero rows included)."""
    rng = np.random.default_rng(5)
    dense = rng.normal(size=(12, 20))
    sparse = np.zeros((12, 32))
    sparse[:, np.sort(rng.choice(32, size=20, replace=False))] = dense  # same order

    def adders(w: np.ndarray) -> int:
        code: MatrixCode = (
            CsdCode.from_weights(w, 8)
            if inner == "csd"
            else LccCode.build(w, LccOptions(sqnr_db=40.0, transpose="no"))
        )
        g = AdderGraph.with_inputs([(-128, 127)] * w.shape[1])
        code.lower(g, list(range(w.shape[1])))
        return g.adders

    assert adders(sparse) == adders(dense)
