"""The circulant pass: the projection is the Frobenius-optimal block-circulant matrix, exact
block-circulant matrices are detected and kept, every hardware form lowers to an adder graph
computing the code's exact product, and bad options get one clear line."""

from __future__ import annotations

import numpy as np
import pytest
from exactness import check_exact, coded_graph
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlcc.driver import (
    EXAMPLE_CNN,
    EXAMPLE_MODEL,
    load_data,
    load_model,
    resolve_pipeline,
    run_passes,
)
from nnlcc.errors import PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.family import ECP5, Family
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.matrix import ConvLayer
from nnlcc.passes import PassContext, parse_pipeline
from nnlcc.passes.circulant import CirculantCode, Layout
from nnlcc.passes.circulant.blocks import crt_forward, crt_inverse
from nnlcc.passes.circulant.forms import fft_spectrum, fft_vectors

layouts = st.builds(
    lambda kind, rows, n, taps, b: (
        Layout.dense(rows, n, b) if kind == "dense" else Layout.conv(rows, taps, n, b)
    ),
    st.sampled_from(["dense", "conv"]),
    st.integers(1, 20),
    st.integers(1, 20),
    st.integers(1, 4),
    st.integers(2, 9),
)


@settings(max_examples=80, deadline=None)
@given(layouts, st.integers(0, 2**32 - 1))
def test_projection_is_the_frobenius_optimum(lay: Layout, seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(lay.rows, lay.cols))
    vecs, exact = lay.project(w)
    proj = lay.expand(vecs)
    # the residual is orthogonal to every block-circulant matrix: the orthogonal projection
    for _ in range(3):
        other = lay.expand(rng.normal(size=lay.shape))
        assert abs(np.sum((w - proj) * other)) <= 1e-9 * np.sum(np.abs(w)) * np.max(np.abs(other))
    # and no nearby block-circulant matrix is closer
    nearby = lay.expand(vecs + 1e-3 * rng.normal(size=lay.shape))
    assert np.sum((w - proj) ** 2) <= np.sum((w - nearby) ** 2) + 1e-12
    # idempotent, and a projection is exactly block-circulant
    again, again_exact = lay.project(proj)
    assert again_exact and np.array_equal(lay.expand(again), proj)
    assert exact == bool(np.array_equal(proj, w))


@settings(max_examples=80, deadline=None)
@given(layouts, st.integers(0, 2**32 - 1))
def test_exact_block_circulant_matrices_are_detected_and_kept(lay: Layout, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # values whose mean along a diagonal would round (thirds): kept bit for bit
    w = lay.expand(rng.normal(size=lay.shape) / 3.0)
    vecs, exact = lay.project(w)
    assert exact and np.array_equal(lay.expand(vecs), w)
    if w.size and np.any(w):
        bent = w.copy()
        r, c = np.argwhere(w != 0)[0]
        bent[r, c] *= 1.5
        # a diagonal with a single real entry stays circulant whatever its value
        on_diag = _diagonal_size(lay, int(r), int(c))
        assert lay.project(bent)[1] == (on_diag == 1)


def _diagonal_size(lay: Layout, r: int, c: int) -> int:
    ones = np.zeros((lay.rows, lay.cols))
    ones[r, c] = 1.0
    vecs, _ = lay.project(ones)  # the mean is 1/size on (r, c)'s diagonal
    return round(1.0 / lay.expand(vecs)[r, c])


@settings(max_examples=12, deadline=None)
@given(st.sampled_from([2, 4, 8, 16]), st.integers(0, 2**32 - 1))
def test_crt_is_invertible_and_multiplies_in_the_spectrum(b: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.integers(-100, 100, size=b).astype(np.float64)
    assert np.array_equal(crt_inverse(crt_forward(v)), v)
    wide = rng.integers(-100, 100, size=64).astype(np.float64)
    assert np.array_equal(crt_inverse(crt_forward(wide)), wide)
    lay = Layout.dense(b, b, b)
    x = rng.integers(-100, 100, size=b)
    frac = b.bit_length() - 1  # log2(b): the halvings of the reconstruction, exact
    spec = fft_spectrum(v[None, None, None], frac)
    assert np.array_equal(fft_vectors(spec, frac)[0, 0, 0], v)
    # the fft form's graph computes the circulant product exactly
    code = CirculantCode(lay, np.zeros(lay.shape, np.int64), 0, "fft", spectrum=spec)
    code.spectrum_frac = frac
    g = AdderGraph.with_inputs([(-128, 127)] * b)
    terms = code.lower(g, list(range(b)))
    g.outputs = [t.node for t in terms if t.node is not None]
    got = g.evaluate(x[None])[0]
    want = lay.expand(v[None, None, None]) @ x
    vals = [
        (-1 if t.neg else 1) * int(got[k]) * 2.0**t.exp
        for k, t in enumerate(t for t in terms if t.node is not None)
    ]
    assert np.array_equal(np.array(vals), want[[t.node is not None for t in terms]])


FORMS = ["mcm", "fft", "csd", "lcc"]


@pytest.mark.parametrize("form", FORMS)
@settings(max_examples=4, deadline=None)
@given(
    st.integers(1, 10),
    st.integers(1, 10),
    st.sampled_from([2, 4, 8]),
    st.integers(0, 2**32 - 1),
)
def test_every_form_lowers_to_its_exact_product(
    form: str, rows: int, cols: int, b: int, seed: int
) -> None:
    if b > rows and b > cols:
        b = 2
    if b > rows and b > cols:
        return
    w = np.random.default_rng(seed).normal(size=(rows, cols))
    g = coded_graph(w, f"quantize,circulant{{block={b},form={form},weight_bits=6}}", seed)
    code = g.layers[0].code
    assert isinstance(code, CirculantCode) and code.form == form
    check_exact(g, seed)
    assert code.summary()["stored_weights"] == Layout.dense(rows, cols, b).stored


@pytest.mark.parametrize("form", FORMS)
def test_conv_layers_are_blocked_per_tap_and_lower_exactly(form: str) -> None:
    g = load_model(EXAMPLE_CNN)
    run_passes(g, resolve_pipeline(f"quantize,circulant{{block=4,form={form}}}"), _calib(g))
    conv2 = g.layers[2]
    assert isinstance(conv2, ConvLayer) and conv2.shape == (8, 36)
    code = conv2.code
    assert isinstance(code, CirculantCode)
    assert code.layout.shape == (9, 2, 1, 4)  # 9 taps of an 8x4 matrix: 2x1 blocks of 4
    assert code.summary()["stored_weights"] == 72
    _check_layer_exact(conv2)
    conv1 = g.layers[0]  # 4x1 per tap: one real column per block, trivially circulant
    assert conv1.code is not None and conv1.code.summary()["exact_circulant"]
    assert conv1.code.summary()["pad_cols"] == 3


def _calib(g: object) -> np.ndarray:
    return load_data(g, EXAMPLE_CNN, None, 0)  # type: ignore[arg-type]


def _check_layer_exact(layer: ConvLayer) -> None:
    fmt = layer.in_fmt
    assert fmt is not None and layer.code is not None
    rng = np.random.default_rng(0)
    x = rng.integers(fmt.lo, fmt.hi, size=(20, layer.shape[1]), endpoint=True)
    g = AdderGraph.with_inputs([(fmt.lo, fmt.hi)] * layer.shape[1])
    terms = layer.code.lower(g, list(range(layer.shape[1])))
    g.outputs = [t.node for t in terms if t.node is not None]
    got = g.evaluate(x)
    want = x @ layer.code.implemented().T
    k = 0
    for r, t in enumerate(terms):
        if t.node is None:
            assert np.all(want[:, r] == 0)
            continue
        assert np.array_equal((-1 if t.neg else 1) * got[:, k] * 2.0**t.exp, want[:, r])
        k += 1


def test_auto_picks_the_cheapest_form_by_the_cost_model() -> None:
    w = np.random.default_rng(3).normal(size=(8, 16))
    g = coded_graph(w, "quantize,circulant{block=4}")
    s = g.layers[0].code.summary()  # type: ignore[union-attr]
    costs = dict(item.split("=") for item in s["form_luts_adders"].split())
    luts = {f: int(v.split("/")[0]) for f, v in costs.items()}
    assert set(luts) == {"mcm", "fft", "csd", "lcc"}
    assert luts[s["form"]] == min(luts.values())
    g6 = coded_graph(w, "quantize,circulant{block=6}")  # not a power of two: no fft
    assert "fft" not in g6.layers[0].code.summary()["form_luts_adders"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ("circulant{block=1}", "block must be in 2..64, not 1"),
        ("circulant{block=65}", "block must be in 2..64, not 65"),
        ("circulant{block=-4}", "block must be in 2..64, not -4"),
        ("circulant{block=2.5}", "'2.5' is not a valid int"),
        ("circulant{block=6,form=fft}", "form=fft needs a power-of-two block, not 6"),
        ("circulant{form=fast}", "'fast' is not one of"),
    ],
)
def test_bad_options_get_one_line(pipeline: str, message: str) -> None:
    with pytest.raises(PassOptionError, match=message.replace("(", r"\(")) as e:
        parse_pipeline(pipeline)
    assert "\n" not in str(e.value)


def test_a_block_larger_than_both_dimensions_names_the_layer() -> None:
    g = load_model(EXAMPLE_MODEL)  # fc1 16x64, fc2 10x16
    x = np.zeros((4, 64))
    for p in resolve_pipeline("quantize,circulant{block=32,form=mcm}")[:1]:
        p.apply(g, PassContext(x, ECP5))
    with pytest.raises(
        PassOptionError, match=r"larger than both dimensions of layer fc2 \(10x16\)"
    ):
        resolve_pipeline("quantize,circulant{block=32,form=mcm}")[1].apply(g, PassContext(x, ECP5))


def test_the_pass_meets_its_error_budget_with_fewer_spectrum_bits() -> None:
    w = np.random.default_rng(5).normal(size=(16, 32))
    g = coded_graph(w, "quantize,circulant{block=8,form=fft}")
    s = g.layers[0].code.summary()  # type: ignore[union-attr]
    code = g.layers[0].code
    assert isinstance(code, CirculantCode)
    proj = code.layout.expand(code.layout.project(w)[0])
    from nnlcc.ir.fixed_point import sqnr_db

    assert sqnr_db(proj, code.implemented()) >= s["budget_sqnr_db"] - 1e-6
    assert s["spectrum_frac_bits"] <= s["weight_frac_bits"] + 3  # log2(8): exact would need +3
    assert FixedFormat(8, 7, True).lo == -128  # (formats untouched)


def test_forms_are_priced_on_the_board_family_unless_told_otherwise() -> None:
    from nnlcc.ir.family import XC7
    from nnlcc.ir.matrix import DenseLayer, MatrixGraph

    rng = np.random.default_rng(2)
    w, x = rng.normal(size=(8, 16)), rng.uniform(-1, 1, size=(64, 16))

    def priced(pipeline: str, board_family: Family) -> tuple[str, str]:
        g = MatrixGraph("c", "x", 16, "y", [DenseLayer("fc", w, np.zeros(8))])
        for p in resolve_pipeline(pipeline):
            p.apply(g, PassContext(x, board_family))
        s = g.layers[0].code.summary()  # type: ignore[union-attr]
        return s["cost_family"], s["form_luts_adders"]

    on_xc7 = priced("quantize,circulant{block=4}", XC7)
    on_ecp5 = priced("quantize,circulant{block=4}", ECP5)
    assert (on_xc7[0], on_ecp5[0]) == ("xc7", "ecp5")
    assert on_xc7[1] != on_ecp5[1]  # the families' LUT models differ
    assert priced("quantize,circulant{block=4,family=ecp5}", XC7) == on_ecp5
    with pytest.raises(PassOptionError, match="circulant: unknown family 'virtex'"):
        parse_pipeline("circulant{family=virtex}")
