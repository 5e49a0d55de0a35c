"""Common-subexpression sharing (nnlcc.passes.shift_add) and the CSD code that uses it: exact
on every search, never more adders than no sharing, and never switched off silently."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nnlcc.errors import PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.csd import csd_adders
from nnlcc.passes import format_pipeline, parse_pipeline
from nnlcc.passes.csd import Csd, CsdCode, csd_terms
from nnlcc.passes.shift_add import CSE_EFFORT, build_terms_sum

# weights with many zeros, negatives and powers of two (+-2**k) among ordinary values
_WEIGHT = st.one_of(
    st.just(0),
    st.integers(-600, 600),
    st.builds(lambda k, s: s * (1 << k), st.integers(0, 9), st.sampled_from([-1, 1])),
)
_MATRIX = st.tuples(st.integers(1, 16), st.integers(1, 16)).flatmap(
    lambda shape: arrays(np.int64, shape, elements=_WEIGHT)
)
# effort 0 forces the partial (windowed) search even on a tiny layer
_SEARCHES = [(False, CSE_EFFORT), (True, CSE_EFFORT), (True, 0)]


def _lower(w_int: np.ndarray, cse: bool, effort: int) -> tuple[CsdCode, AdderGraph, list]:
    code = CsdCode(w_int=w_int, frac=0, cse=cse, cse_effort=effort)
    graph = AdderGraph.with_inputs([(-128, 127)] * w_int.shape[1])
    return code, graph, code.lower(graph, list(range(w_int.shape[1])))


def _values(graph: AdderGraph, terms: list, x: np.ndarray, frac: int = 0) -> np.ndarray:
    """Each term's exact integer value times ``2**frac`` on inputs ``x`` (a zero row is 0)."""
    graph.outputs = [t.node for t in terms if t.node is not None]
    vals = graph.evaluate(x)
    out = np.zeros((len(x), len(terms)), dtype=np.int64)
    k = 0
    for j, t in enumerate(terms):
        if t.node is not None:
            assert t.exp + frac >= 0
            out[:, j] = vals[:, k] * (-1 if t.neg else 1) << (t.exp + frac)
            k += 1
    return out


@settings(max_examples=40, deadline=None)
@given(_MATRIX, st.integers(0, 2**31))
def test_lowered_graph_is_exact_for_every_search(w: np.ndarray, seed: int) -> None:
    x = np.random.default_rng(seed).integers(-128, 128, size=(16, w.shape[1]))
    for cse, effort in _SEARCHES:
        _, graph, terms = _lower(w, cse, effort)
        assert np.array_equal(_values(graph, terms, x), x @ w.T), (cse, effort)


@settings(max_examples=40, deadline=None)
@given(_MATRIX)
def test_sharing_never_adds_adders(w: np.ndarray) -> None:
    _, plain, _ = _lower(w, False, CSE_EFFORT)
    assert plain.adders == csd_adders(w)
    for effort in (CSE_EFFORT, 0):
        code, shared, _ = _lower(w, True, effort)
        assert shared.adders <= plain.adders
        assert plain.adders - shared.adders == code.summary()["cse_adders_saved"]
        assert code.summary()["adders"] == shared.adders


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, 4), st.booleans()), min_size=0, max_size=8
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([CSE_EFFORT, 0]),
)
def test_repeated_terms_in_a_row_stay_exact(rows: list, effort: int) -> None:
    """A row may name the same (node, shift) twice; sharing must keep both."""
    graph = AdderGraph.with_inputs([(-100, 100)] * 4)
    terms = build_terms_sum(graph, [list(r) for r in rows], cse_effort=effort)
    x = np.random.default_rng(0).integers(-100, 101, size=(8, 4))
    want = np.array(
        [[sum((-1 if g else 1) * int(xs[n]) << s for n, s, g in r) for r in rows] for xs in x]
    )
    assert np.array_equal(_values(graph, terms, x), want)


def test_layer_above_the_old_budget_now_shares() -> None:
    """32x64 Gaussian at 9 bits: the old pair search (830 k steps > 500 k) shared nothing."""
    w = np.random.default_rng(0).normal(size=(32, 64))
    shared, plain = CsdCode.from_weights(w, 9), CsdCode.from_weights(w, 9, cse=False)
    assert csd_terms(shared.w_int, list(range(64))).search_work() > CSE_EFFORT
    gs, gp = AdderGraph.with_inputs([(0, 255)] * 64), AdderGraph.with_inputs([(0, 255)] * 64)
    terms = shared.lower(gs, list(range(64)))
    plain.lower(gp, list(range(64)))
    assert gs.adders < 0.6 * gp.adders
    facts = shared.summary()
    assert facts["cse"] == "partial" and "cse_effort=500000" in facts["cse_note"]
    assert facts["cse_adders_saved"] == gp.adders - gs.adders
    assert facts["adders"] == gs.adders
    assert facts["cse_pairs_shared"] > 0
    x = np.random.default_rng(1).integers(0, 256, size=(8, 64))
    assert np.array_equal(_values(gs, terms, x, shared.frac), x @ shared.w_int.T)


def test_summary_says_full_partial_or_off() -> None:
    w = np.random.default_rng(2).normal(size=(8, 16))
    full = CsdCode.from_weights(w, 8).summary()
    assert full["cse"] == "full" and full["cse_note"] == "" and full["cse_pairs_shared"] > 0
    partial = CsdCode.from_weights(w, 8, cse_effort=0).summary()
    assert partial["cse"] == "partial" and "cse_effort=0" in partial["cse_note"]
    off = CsdCode.from_weights(w, 8, cse=False).summary()
    assert off["cse"] == "off" and off["cse_pairs_shared"] == 0 and off["cse_adders_saved"] == 0


def test_summary_before_and_after_lowering_agree() -> None:
    w = np.random.default_rng(4).normal(size=(12, 40))
    code = CsdCode.from_weights(w, 8, cse_effort=10_000)
    before = code.summary()  # searched on a scratch graph
    _, graph, _ = _lower(code.w_int, True, 10_000)
    code.lower(AdderGraph.with_inputs([(-1, 1)] * 40), list(range(40)))
    assert code.summary() == before
    assert before["cse_adders_saved"] == csd_adders(code.w_int) - graph.adders
    assert before["adders"] == graph.adders


def test_cse_effort_is_a_pass_option() -> None:
    (p,) = parse_pipeline("csd{cse_effort=1000}")
    assert isinstance(p, Csd) and p.cse_effort == 1000
    assert "cse_effort=1000" in format_pipeline([p])
    with pytest.raises(PassOptionError):
        parse_pipeline("csd{cse_effort=-1}")
