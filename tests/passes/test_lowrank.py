"""The ``lowrank`` coder (``W ≈ U·V + E``): its adder graph computes exactly the matrix the
code implements, for low-rank, random, heavy-tailed and odd-shaped matrices (1xN, Nx1, zero
columns, all zero), alone and after ``share``; it reaches its target; bad options and
unreachable ranks are one clear line naming the layer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from exactness import check_exact, coded_graph

from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.matrix import Term
from nnlcc.ir.text import print_graph
from nnlcc.ir.truncate import RESERVE_DB
from nnlcc.passes import parse_graph, parse_pipeline
from nnlcc.passes.csd import CsdCode
from nnlcc.passes.lcc import LccCode, LccOptions
from nnlcc.passes.lowrank import LowRankCode, Spectrum, build
from nnlcc.passes.lowrank.terms import lower_on_terms
from nnlcc.passes.pricing import Pricing

CODERS = "csd+lcc"


def low_rank(rng: np.random.Generator, rows: int, cols: int, rank: int, noise: float) -> np.ndarray:
    w = rng.normal(size=(rows, rank)) @ rng.normal(size=(rank, cols))
    return w + noise * float(np.std(w) or 1.0) * rng.normal(size=(rows, cols))


@st.composite
def matrices(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """A matrix and a rank: low rank plus noise, heavy tailed, with zero columns or rows,
    of any shape down to a single row or column."""
    rows = draw(st.integers(1, 24))
    cols = draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["lowrank", "heavy", "gauss"]))
    r = draw(st.integers(1, min(rows, cols)))
    if kind == "lowrank":
        w = low_rank(rng, rows, cols, r, draw(st.sampled_from([0.0, 0.01, 0.05])))
    elif kind == "heavy":
        w = rng.standard_t(2, size=(rows, cols))
    else:
        w = rng.normal(size=(rows, cols))
    if cols > 1 and draw(st.booleans()):
        w[:, rng.integers(cols)] = 0.0
    if rows > 1 and draw(st.booleans()):
        w[rng.integers(rows)] = 0.0
    return w * 10.0 ** draw(st.integers(-3, 3)), r


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(matrices(), st.sampled_from([20, 40]), st.sampled_from(["csd", "lcc", CODERS]))
def test_lowrank_graph_is_the_exact_product(
    case: tuple[np.ndarray, int], db: int, coders: str
) -> None:
    w, r = case
    pipeline = f"quantize,lowrank{{sqnr_db={db},rank={r},coders={coders}}}"
    if np.linalg.matrix_rank(w) < r:  # an explicit rank the matrix does not have
        with pytest.raises(BadInputError, match="layer fc: lowrank: rank"):
            coded_graph(w, pipeline)
        return
    g = coded_graph(w, pipeline)
    code = g.layers[0].code  # type: ignore[union-attr]
    assert isinstance(code, LowRankCode) and code.rank == r
    assert sqnr_db(w, code.implemented()) >= db + RESERVE_DB - 1e-6
    check_exact(g)


@pytest.mark.parametrize("shape", [(1, 9), (9, 1), (1, 1), (12, 7)])
def test_odd_shapes_and_all_zero(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    w = low_rank(rng, *shape, 1, 0.0)
    check_exact(coded_graph(w, f"quantize,lowrank{{sqnr_db=30,rank=1,coders={CODERS}}}"))
    zero = np.zeros(shape)  # no rank at all: coded whole (to zero, no adders)
    g = coded_graph(zero, f"quantize,lowrank{{sqnr_db=30,coders={CODERS}}}")
    assert not isinstance(g.layers[0].code, LowRankCode)  # type: ignore[union-attr]
    assert check_exact(g).adders == 0


def test_auto_rank_finds_the_knee_and_beats_coding_whole() -> None:
    """Rank 4 plus 1 % noise: the spectrum's knee is rank 4, and the design costs fewer
    adders than the best coder on the whole matrix."""
    w = low_rank(np.random.default_rng(5), 32, 32, 4, 0.01)
    assert Spectrum.of(w).candidates(40)[0] == 4
    g = coded_graph(w, f"quantize,lowrank{{sqnr_db=40,coders={CODERS}}}")
    code = g.layers[0].code  # type: ignore[union-attr]
    assert isinstance(code, LowRankCode) and code.rank == 4
    s = code.summary()
    assert s["sqnr_db"] >= 40 + RESERVE_DB - 1e-6 and s["rank_candidates_db"].startswith("4: ")
    assert all(isinstance(v, int | float | str | bool) for v in s.values())  # report facts
    plain = coded_graph(w, "quantize,lcc{sqnr_db=40}")
    assert check_exact(g).adders < check_exact(plain).adders
    # the record is honest: the summary's adders are the lowered graph's
    assert s["adders"] == check_exact(g).adders


def test_lowrank_round_trips_through_the_ir_text() -> None:
    w = low_rank(np.random.default_rng(8), 12, 10, 2, 0.02)
    for shape2 in ("csd", "lcc"):
        g = coded_graph(w, f"quantize,lowrank{{sqnr_db=35,rank=2,coders={shape2}}}")
        text = print_graph(g)
        back = parse_graph(text)
        assert print_graph(back) == text
        a, b = g.layers[0].code, back.layers[0].code  # type: ignore[union-attr]
        assert np.array_equal(a.implemented(), b.implemented())  # type: ignore[union-attr]


def test_lowrank_after_share() -> None:
    w = low_rank(np.random.default_rng(2), 16, 20, 3, 0.0)
    w[:, 5] = w[:, 4]  # two equal columns: share merges them
    g = coded_graph(
        w, f"quantize,share{{clusters=19}},lowrank{{sqnr_db=40,rank=3,coders={CODERS}}}"
    )
    assert g.layers[0].code.name == "share+lowrank"  # type: ignore[union-attr]
    check_exact(g)


@pytest.mark.parametrize(
    "text",
    ["lowrank{rank=0}", "lowrank{rank=x}", "lowrank{coders=csd+fft}", "lowrank{sqnr_db=0}"],
)
def test_bad_options_are_one_line(text: str) -> None:
    with pytest.raises(PassOptionError, match="lowrank: "):
        parse_pipeline(text)


def test_unreachable_rank_names_the_layer() -> None:
    w = low_rank(np.random.default_rng(3), 6, 5, 2, 0.0)
    with pytest.raises(BadInputError, match=r"layer fc: lowrank: rank 9 is outside 1\.\.5"):
        coded_graph(w, "quantize,lowrank{rank=9,coders=csd}")


def test_unmeetable_budget_names_the_layer_and_the_best_sqnr() -> None:
    """A full-rank matrix (coded whole) at a target no factor coder reaches: one line with
    the layer and the best SQNR reached."""
    w = np.random.default_rng(4).normal(size=(5, 7))
    with pytest.raises(BadInputError) as e:
        coded_graph(w, "quantize,lowrank{sqnr_db=140,coders=lcc}")
    msg = str(e.value)
    assert msg.startswith("layer fc: lowrank: no coder among 'lcc' reaches 140.41 dB (best ")
    assert "\n" not in msg


@pytest.mark.parametrize("coder", ["csd", "lcc", "lcc_t"])
def test_factor_codes_lower_exactly_on_signed_shifted_terms(coder: str) -> None:
    """A factor reads the first stage's outputs as ``±node·2**exp``: its rows must come out
    as the code's matrix times those values, for every sign and shift."""
    rng = np.random.default_rng(4)
    m = rng.normal(size=(9, 6))
    if coder == "csd":
        code: CsdCode | LccCode = CsdCode.from_weights(m, 8)
    else:
        side = "yes" if coder == "lcc_t" else "no"
        code = LccCode.build(m, LccOptions(sqnr_db=35, transpose=side))
    graph = AdderGraph.with_inputs([(-100, 90)] * 6)
    shifts = rng.integers(-5, 6, size=6)
    negs = rng.random(6) < 0.5
    terms = lower_on_terms(
        code,
        graph,
        [(i, int(s), bool(g)) for i, (s, g) in enumerate(zip(shifts, negs, strict=True))],
    )
    graph.outputs = [t.node for t in terms if t.node is not None]
    x = rng.integers(-100, 91, size=(20, 6))
    got = graph.evaluate(x)
    vals = np.where(negs, -1.0, 1.0) * np.ldexp(1.0, shifts) * x  # what each column reads
    want = vals @ code.implemented().T
    k = 0
    for r, t in enumerate(terms):
        if t.node is None:
            assert np.allclose(want[:, r], 0)
            continue
        assert np.array_equal(
            (-1 if t.neg else 1) * np.ldexp(got[:, k].astype(float), t.exp), want[:, r]
        )
        k += 1


def test_build_keeps_the_cheaper_design() -> None:
    w = low_rank(np.random.default_rng(6), 24, 24, 3, 0.02)
    code = build(w, 35.0, Pricing(), coders=CODERS)
    assert code.options["est_luts_alone"] > 0 and code.reached_db >= 35 - 1e-9
    assert isinstance(
        code.lower(AdderGraph.with_inputs([(-128, 127)] * 24), list(range(24)))[0], Term
    )
