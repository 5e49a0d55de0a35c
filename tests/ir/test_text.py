"""The matrix IR text round-trips: print -> parse -> print is a fixed point, and the parsed
graph lowers to the same adder graphs and computes the same floats as the original."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest
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
from nnlcc.errors import BadInputError
from nnlcc.ir.family import ECP5
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.lower import lower_network
from nnlcc.ir.matrix import (
    AddLayer,
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    Layer,
    MatrixGraph,
    MatrixLayer,
    PoolLayer,
    Window,
    conv_matrix,
)
from nnlcc.ir.notes import JsonNote, LayerNotes, OnnxNodes
from nnlcc.passes import PassContext, parse_pipeline
from nnlcc.passes.csd import CsdCode
from nnlcc.passes.prune import ColumnOrigin
from nnlcc.passes.share import ShareCode, SharePlan
from nnlcc.passes.text import parse_graph, print_graph


def _bits(a: np.ndarray) -> bytes:
    """Bit pattern of an array (tells -0.0 from 0.0 and keeps NaNs comparable)."""
    return np.ascontiguousarray(a).tobytes()


def _same_plan(p: SharePlan, q: SharePlan) -> None:
    assert _bits(p.reduced) == _bits(q.reduced) and _bits(p.expand) == _bits(q.expand)
    assert p.members == q.members and p.error_sqnr_db == q.error_sqnr_db


def _same_layer(a: Layer, b: Layer) -> None:
    assert type(a) is type(b)
    for f in ("name", "inputs", "relu", "in_fmt", "out_fmt", "kind"):
        assert getattr(a, f, None) == getattr(b, f, None), f
    # the JSON notes in order (a block note is printed apart from them)
    assert {type(n) for n in a.notes} == {type(n) for n in b.notes}
    assert [n.key for n in a.notes if isinstance(n, JsonNote)] == [
        n.key for n in b.notes if isinstance(n, JsonNote)
    ]
    for note in a.notes:
        if isinstance(note, SharePlan):
            _same_plan(note, b.notes[SharePlan])
        else:
            assert note == b.notes[type(note)], note.key
    for f in ("image", "window", "op", "shape", "in_fmt_b"):
        assert getattr(a, f, None) == getattr(b, f, None), f
    if isinstance(a, MatrixLayer):
        assert isinstance(b, MatrixLayer)
        assert a.weight.shape == b.weight.shape and _bits(a.weight) == _bits(b.weight)
        assert _bits(a.bias) == _bits(b.bias)
        assert (a.code is None) == (b.code is None)
        if a.code is not None and b.code is not None:
            assert a.code.name == b.code.name
            assert np.array_equal(a.code.implemented(), b.code.implemented())
            assert a.code.summary() == b.code.summary()
            if isinstance(a.code, ShareCode):
                assert isinstance(b.code, ShareCode)
                _same_plan(a.code.plan, b.code.plan)


def assert_round_trip(g: MatrixGraph, x: np.ndarray | None = None) -> MatrixGraph:
    text = print_graph(g)
    back = parse_graph(text)
    assert print_graph(back) == text
    for f in ("name", "input_name", "input_size", "input_shape", "output_name", "input_fmt"):
        assert getattr(back, f) == getattr(g, f), f
    assert len(back.layers) == len(g.layers)
    for a, b in zip(g.layers, back.layers, strict=True):
        _same_layer(a, b)
    if all(isinstance(la, MatrixLayer) and la.code is not None for la in g.matrix_layers()):
        for la, lb in zip(lower_network(g).layers, lower_network(back).layers, strict=True):
            assert la.graph.to_text() == lb.graph.to_text(), la.name
    if x is not None:
        assert _bits(g.forward_float(x)) == _bits(back.forward_float(x))
        assert _bits(g.forward_float(x, implemented=True)) == _bits(
            back.forward_float(x, implemented=True)
        )
    return back


def _example(model: object, pipeline: str) -> tuple[MatrixGraph, np.ndarray]:
    g = load_model(model)  # type: ignore[arg-type]
    data = load_data(g, model, None, 0)  # type: ignore[arg-type]
    run_passes(g, resolve_pipeline(pipeline), data)
    return g, data.x_test[:50]


@pytest.mark.parametrize(
    "pipeline",
    [
        "quantize,csd",
        "quantize,lcc",
        "quantize,share{clusters=8},lcc",
        "quantize,share{clusters=8},csd",
        "quantize,lcc{transpose=yes,algo=fs}",
    ],
)
def test_digits_mlp_round_trips(pipeline: str) -> None:
    g, x = _example(EXAMPLE_MODEL, pipeline)
    back = assert_round_trip(g, x)
    if "share" in pipeline:  # the layer's plan note is the share code's plan, as before
        for layer in back.matrix_layers():
            assert layer.notes.get(SharePlan) is getattr(layer.code, "plan", None)


def test_digits_cnn_round_trips() -> None:
    g, x = _example(EXAMPLE_CNN, "quantize,lcc")
    assert {type(la) for la in g.layers} == {ConvLayer, PoolLayer, FlattenLayer, DenseLayer}
    assert_round_trip(g, x)


def residual_avg_graph(seed: int = 0) -> MatrixGraph:
    """conv -> max pool -> conv -> residual add -> average pool (padded) -> flatten -> dense."""
    rng = np.random.default_rng(seed)

    def conv(name: str, cin: int, cout: int, hw: int, relu: bool = True) -> ConvLayer:
        w = rng.normal(size=(cout, cin, 3, 3)) / math.sqrt(cin * 9)
        win = Window((3, 3), (1, 1), (1, 1, 1, 1))
        return ConvLayer(
            name, conv_matrix(w), rng.normal(size=cout) * 0.1, relu, image=(cin, hw, hw), window=win
        )

    layers: list[Layer] = [
        conv("c1", 2, 3, 6),
        PoolLayer("p1", "max", (3, 6, 6), Window((2, 2), (2, 2))),
        conv("c2", 3, 3, 3, relu=False),
        AddLayer("a1", ("c2", "p1"), (3, 3, 3), relu=True),
        PoolLayer("avg", "avg", (3, 3, 3), Window((2, 2), (1, 1), (1, 1, 0, 0))),
        FlattenLayer("fl", (3, 3, 3)),
        DenseLayer("fc", rng.normal(size=(4, 27)) * 0.3, rng.normal(size=4) * 0.1),
    ]
    return MatrixGraph("residual", "x", 72, "y", layers, input_shape=(2, 6, 6))


@pytest.mark.parametrize("pipeline", ["quantize,lcc", "quantize{act_bits=10},csd{cse=false}"])
def test_residual_and_avg_pool_round_trip(pipeline: str) -> None:
    g = residual_avg_graph()
    x = np.random.default_rng(1).uniform(-1, 1, size=(40, 72))
    for p in parse_pipeline(pipeline):
        p.apply(g, PassContext(x, ECP5))
    assert_round_trip(g, x)


def test_uncoded_graph_and_odd_names_round_trip() -> None:
    g = residual_avg_graph(3)
    g.layers[0].name = 'conv "one", a=b'
    g.layers[1].inputs = ('conv "one", a=b',)
    g.source = "some dir/model.onnx"
    g.layers[-1].notes = LayerNotes(ColumnOrigin([3, 1, 2]), OnnxNodes(["Gemm ünïcode"]))
    back = assert_round_trip(g, np.random.default_rng(2).uniform(-1, 1, size=(5, 72)))
    assert back.layers[0].name == 'conv "one", a=b'


# ----------------------------------------------------------------------------- property

_FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64) | st.sampled_from(
    [0.0, -0.0, 5e-324, -1.7976931348623157e308, 0.1, 1 / 3]
)
_FMTS = st.none() | st.builds(FixedFormat, st.integers(1, 24), st.integers(-8, 30), st.booleans())


@st.composite
def dense_graphs(draw: st.DrawFn) -> MatrixGraph:
    sizes = draw(st.lists(st.integers(1, 5), min_size=2, max_size=4))
    layers: list[Layer] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = np.array(draw(st.lists(_FLOATS, min_size=n_in * n_out, max_size=n_in * n_out)))
        b = np.array(draw(st.lists(_FLOATS, min_size=n_out, max_size=n_out)))
        layer = DenseLayer(
            draw(st.text(min_size=1, max_size=6).filter(lambda s: s.strip() == s and s != "")),
            w.reshape(n_out, n_in),
            b,
            relu=draw(st.booleans()),
            in_fmt=draw(_FMTS),
            out_fmt=draw(_FMTS),
        )
        if draw(st.booleans()):
            ints = draw(st.lists(st.integers(-(2**20), 2**20), min_size=w.size, max_size=w.size))
            layer.code = CsdCode(
                np.array(ints, dtype=np.int64).reshape(n_out, n_in),
                frac=draw(st.integers(-5, 30)),
                cse=draw(st.booleans()),
            )
        layer.name = f"{layer.name}{i}"  # unique
        layers.append(layer)
    return MatrixGraph(
        draw(st.text(min_size=1, max_size=5)), "in put", sizes[0], "out", layers, draw(_FMTS)
    )


@settings(max_examples=60, deadline=None)
@given(dense_graphs())
def test_random_dense_graphs_round_trip(g: MatrixGraph) -> None:
    text = print_graph(g)
    back = parse_graph(text)
    assert print_graph(back) == text
    assert back.name == g.name and back.input_fmt == g.input_fmt
    for a, b in zip(g.layers, back.layers, strict=True):
        _same_layer(a, b)


# ------------------------------------------------------------------------------- errors


def _mlp_text() -> str:
    g, _ = _example(EXAMPLE_MODEL, "quantize,csd")
    return print_graph(g)


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("out=s8.2", "out=s8.2 extra=1", "unexpected or repeated field 'extra'"),
        ("dense fc2", "dance fc2", "unknown layer kind"),
        ("relu=0 in=u8.4", "relu=2 in=u8.4", "expected 0 or 1"),
        ("in=u8.4 out=s8.2", "in=u8.4 out=q8.2", "bad fixed-point format"),
        ("code csd frac=", "code nope frac=", "cannot rebuild code 'nope'"),
        ("graph digits_mlp", "grab digits_mlp", "expected a 'graph' header"),
    ],
)
def test_parse_errors_name_the_line(old: str, new: str, why: str) -> None:
    text = _mlp_text()
    assert old in text
    bad = text.replace(old, new, 1)
    line = next(i for i, ln in enumerate(bad.splitlines(), 1) if new in ln)
    with pytest.raises(BadInputError, match=why) as e:
        parse_graph(bad)
    assert f"line {line}:" in str(e.value)


def test_a_short_matrix_row_is_reported_on_its_line() -> None:
    text = _mlp_text()
    lines = text.splitlines()
    at = lines.index(
        "  weight", lines.index(next(ln for ln in lines if ln.startswith("dense fc2")))
    )
    lines[at + 3] = lines[at + 3].rsplit(" ", 1)[0]
    with pytest.raises(BadInputError, match=f"line {at + 4}: expected 16 numbers, got 15"):
        parse_graph("\n".join(lines))


def test_a_verify_failure_names_the_layer_line() -> None:
    text = _mlp_text().replace(
        "graph digits_mlp input=x shape=64", "graph digits_mlp input=x shape=63"
    )
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("dense fc1"))
    with pytest.raises(BadInputError, match=f"line {line}: fc1: expects 64 inputs, gets 63"):
        parse_graph(text)


def test_a_share_plan_without_a_code_round_trips() -> None:
    """The share pass alone leaves its plan note: printed as a plan block."""
    g = residual_avg_graph(4)
    x = np.random.default_rng(5).uniform(-1, 1, size=(30, 72))
    for p in parse_pipeline("quantize,share{clusters=4,layers=fc}"):
        p.apply(g, PassContext(x, ECP5))
    assert "\n  plan rows=4 cols=27 clusters=4 " in print_graph(g)
    back = assert_round_trip(g, x)
    assert isinstance(back.layers[-1].notes.get(SharePlan), SharePlan)


@dataclass
class _OwnCode:
    """A matrix code of a user's own, which the text cannot rebuild."""

    w: np.ndarray
    name: str = "mine"

    def implemented(self) -> np.ndarray:
        return self.w


def test_an_unknown_code_prints_but_does_not_parse() -> None:
    g, _ = _example(EXAMPLE_MODEL, "quantize,csd")
    fc2 = g.matrix_layers()[1]
    fc2.code = _OwnCode(fc2.weight)  # type: ignore[assignment]  # printing needs only name
    text = print_graph(g)
    line = text.splitlines().index("  code mine unsupported") + 1
    with pytest.raises(BadInputError, match=f"line {line}: cannot rebuild code 'mine'"):
        parse_graph(text)
