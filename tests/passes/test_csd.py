import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.csd import csd_adders, csd_digits, csd_nonzeros
from nnlcc.passes.csd import CsdCode


def _min_signed_digits_table(width: int = 10) -> dict[int, int]:
    """Brute force: fewest nonzero digits over all {-1,0,1} digit strings of ``width``."""
    best: dict[int, int] = {}
    for digits in itertools.product((-1, 0, 1), repeat=width):
        v = sum(d << i for i, d in enumerate(digits))
        w = sum(1 for d in digits if d)
        best[v] = min(best.get(v, w), w)
    return best


def test_csd_weight_is_minimal_against_brute_force() -> None:
    best = _min_signed_digits_table()
    for v in range(-300, 301):
        assert len(csd_digits(v)) == best[v], v


@given(st.integers(-(2**40), 2**40))
def test_csd_digits_reconstruct_and_are_non_adjacent(v: int) -> None:
    d = csd_digits(v)
    assert sum(s << p for p, s in d) == v
    pos = [p for p, _ in d]
    assert all(b - a >= 2 for a, b in itertools.pairwise(pos))
    assert int(csd_nonzeros([v])[0]) == len(d)


def _lowered_values(code: CsdCode, x: np.ndarray) -> np.ndarray:
    g = AdderGraph.with_inputs([(-128, 127)] * code.w_int.shape[1])
    terms = code.lower(g, list(range(code.w_int.shape[1])))
    out = np.zeros((len(x), len(terms)))
    nodes = [t.node for t in terms if t.node is not None]
    g.outputs = nodes
    vals = g.evaluate(x)
    k = 0
    for j, t in enumerate(terms):
        if t.node is not None:
            out[:, j] = vals[:, k] * (-1.0 if t.neg else 1.0) * 2.0**t.exp
            k += 1
    return out


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 12), st.integers(1, 24), st.integers(2, 10), st.booleans(), st.integers(0, 2**31)
)
def test_csd_lowering_is_exact(rows: int, cols: int, bits: int, cse: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(rows, cols)) * rng.choice([0, 1], size=(rows, cols), p=[0.2, 0.8])
    code = CsdCode.from_weights(w, bits, cse=cse)
    x = rng.integers(-128, 128, size=(40, cols))
    assert np.array_equal(_lowered_values(code, x), x @ code.implemented().T)


def test_cse_saves_adders_and_plain_matches_formula() -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(size=(16, 64))
    plain, shared = CsdCode.from_weights(w, 8, cse=False), CsdCode.from_weights(w, 8, cse=True)
    gp, gs = AdderGraph.with_inputs([(0, 255)] * 64), AdderGraph.with_inputs([(0, 255)] * 64)
    plain.lower(gp, list(range(64)))
    shared.lower(gs, list(range(64)))
    assert gp.adders == csd_adders(plain.w_int)
    assert gs.adders < 0.7 * gp.adders
