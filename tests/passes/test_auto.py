"""The ``auto`` matrix pass: per layer the cheapest candidate (estimated LUTs) at equal error,
deterministic, configurable per layer; alkaid's solution as a bit-exact code; the failure
message naming every coder."""

from __future__ import annotations

import dataclasses
import itertools
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nnlcc.config import parse_config
from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.cost import estimate
from nnlcc.ir.family import ECP5, ICE40, XC7, Family
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.lower import lower_layer, lower_network
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.ir.truncate import RESERVE_DB
from nnlcc.passes import PassContext, attach_layer_settings, resolve_pipeline, run_passes
from nnlcc.passes.alkaid import AlkaidCode, available
from nnlcc.passes.auto import Auto, AutoRecord, CandidateRecord
from nnlcc.passes.csd import weight_bits_for
from nnlcc.passes.runner import DEFAULT_PIPELINE
from nnlcc.passes.text import parse_graph, print_graph

needs_alkaid = pytest.mark.skipif(not available(), reason="alkaid not installed (bench extra)")


def mlp(seed: int = 3, sizes: tuple[int, ...] = (12, 10, 6)) -> MatrixGraph:
    rng = np.random.default_rng(seed)
    layers = [
        DenseLayer(f"fc{i + 1}", rng.normal(0, 0.5, (o, n)), rng.normal(0, 0.1, o), relu=i == 0)
        for i, (n, o) in enumerate(itertools.pairwise(sizes))
    ]
    return MatrixGraph("m", "x", sizes[0], "y", layers)  # type: ignore[arg-type]


def calib(graph: MatrixGraph) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, size=(64, graph.input_size))


def coded(pipeline: str, graph: MatrixGraph | None = None, family: Family = ECP5) -> MatrixGraph:
    g = graph if graph is not None else mlp()
    run_passes(g, resolve_pipeline(pipeline), calib(g), family)
    return g


def luts(graph: MatrixGraph, family: Family = ECP5) -> dict[str, int]:
    return {low.name: estimate(low.graph, family).luts for low in lower_network(graph).layers}


def test_auto_is_the_default_matrix_pass() -> None:
    assert DEFAULT_PIPELINE == "quantize,auto"
    assert [p.name for p in resolve_pipeline("quantize")] == ["quantize", "auto"]


def test_auto_picks_the_cheapest_candidate_it_lowered() -> None:
    g = coded("quantize,auto")
    est = luts(g)
    for layer in g.matrix_layers():
        rec = layer.notes[AutoRecord]
        priced = [c for c in rec.candidates if c.est_luts is not None]
        assert len(priced) >= 4, rec  # csd, lcc both ways, fs (and alkaid when installed)
        best = min(priced, key=lambda c: c.est_luts or 0)
        assert rec.coder == best.coder
        # the record prices exactly the design the layer got
        assert est[layer.name] == best.est_luts


@pytest.mark.parametrize(
    "single", ["csd{weight_bits=9}", "lcc{transpose=no}", "lcc{transpose=yes}"]
)
def test_auto_is_no_dearer_than_a_single_coder_at_the_same_error(single: str) -> None:
    auto = sum(luts(coded("quantize,auto")).values())
    alone = sum(luts(coded(f"quantize,{single}")).values())
    assert auto <= alone


def test_every_candidate_meets_the_same_error() -> None:
    p = Auto(sqnr_db=40)
    g = mlp()
    run_passes(g, resolve_pipeline("quantize"), calib(g), ECP5)
    built = 0
    for layer in g.matrix_layers():
        for design in p.designs(layer):
            try:
                code = design.build(layer.weight)
            except BadInputError:  # a coder may refuse a layer it cannot reach the error on
                continue
            built += 1
            assert sqnr_db(layer.weight, code.implemented()) >= 40 + RESERVE_DB - 1e-9, design
    assert built >= 2 * 4  # csd, lcc both ways and fs on both layers (alkaid when installed)
    coded_g = coded("quantize,auto{sqnr_db=40}")
    for layer in coded_g.matrix_layers():
        low = lower_layer(layer, layer.in_fmt)  # type: ignore[arg-type]
        if low.truncation is not None:
            assert low.truncation["target_db"] == pytest.approx(40, abs=1e-3)


def test_auto_is_deterministic() -> None:
    a, b = coded("quantize,auto"), coded("quantize,auto")
    assert print_graph(a) == print_graph(b)
    assert [la.notes[AutoRecord] for la in a.matrix_layers()] == [
        la.notes[AutoRecord] for la in b.matrix_layers()
    ]


def test_auto_prices_on_the_family_it_is_given() -> None:
    g = coded("quantize,auto", family=ICE40)
    assert {la.notes[AutoRecord].family for la in g.matrix_layers()} == {ICE40}
    g = coded("quantize,auto{family=xc7}", family=ICE40)
    assert {la.notes[AutoRecord].family for la in g.matrix_layers()} == {XC7}


def test_per_layer_auto_settings() -> None:
    cfg = parse_config('[layers.fc1]\nauto = { coders = "csd", sqnr_db = 30 }\n', Path("x.toml"))
    g = mlp()
    passes, applied = attach_layer_settings(g, resolve_pipeline(None), cfg.layer_settings(g))
    run_passes(g, passes, calib(g), ECP5)
    fc1, fc2 = g.matrix_layers()
    bits = weight_bits_for(fc1.weight, 30 + RESERVE_DB)
    assert bits is not None and bits < weight_bits_for(fc1.weight, 45 + RESERVE_DB)  # type: ignore[operator]
    assert [c.coder for c in fc1.notes[AutoRecord].candidates] == [f"csd{{weight_bits={bits}}}"]
    assert fc1.code is not None and fc1.code.name == "csd"
    assert len(fc2.notes[AutoRecord].candidates) > 1
    assert applied["fc1"]["auto"] == {"coders": "csd", "sqnr_db": 30}


def test_big_layers_are_priced_on_samples() -> None:
    """Above full_entries every candidate is priced (on a sample of the matrix) and the
    cheapest is coded whole; the record says the prices are sampled."""
    g = coded("quantize,auto{full_entries=100}")
    fc1 = g.matrix_layers()[0]  # 10x12 = 120 weights
    rec = fc1.notes[AutoRecord]
    cands = rec.candidates
    assert {c.coder.split("{")[0] for c in cands} == {"csd", "lcc"}
    assert all(c.est_luts and c.est_luts > 0 and c.sampled and 0 < c.sampled <= 1 for c in cands)
    best = min(cands, key=lambda c: c.est_luts or 0)
    assert rec.coder == best.coder and rec.note is not None and "priced on samples" in rec.note
    assert fc1.code is not None and fc1.code.name == best.coder.split("{")[0]
    assert "sampled" in best.to_json() and CandidateRecord.from_json(best.to_json()) == best


def test_a_layer_whose_coders_all_fail_names_them() -> None:
    with pytest.raises(BadInputError) as e:
        coded("quantize,auto{sqnr_db=150,coders=csd+lcc}")
    msg = str(e.value)
    assert msg.startswith("layer fc1: no auto candidate reaches sqnr_db=150 (coded to 150.41")
    assert "; best reached: " in msg
    assert "\n" not in msg  # one line
    best = float(msg.split("best reached: ")[1].split(" dB")[0])
    assert 30 < best < 150  # the best SQNR any candidate reached, and who reached it
    assert "csd: no weight width up to 20 bits" in msg
    assert "lcc{transpose=no}: target not reached" in msg


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"coders": "csd+fft"}, "auto: coders must be names from csd, lcc, alkaid"),
        ({"family": "stratix"}, "auto: unknown family 'stratix'"),
        ({"sqnr_db": 0.0}, "auto: sqnr_db must be in (0, 150]"),
        ({"truncate": "some"}, "auto: truncate must be auto, off or an SQNR"),
    ],
)
def test_bad_options(opts: dict[str, object], message: str) -> None:
    with pytest.raises(PassOptionError, match=re.escape(message)):
        Auto(**opts)  # type: ignore[arg-type]


def test_share_plans_are_kept() -> None:
    g = coded("quantize,share{clusters=8,layers=fc1},auto")
    fc1 = g.matrix_layers()[0]
    assert fc1.code is not None and fc1.code.name.startswith("share+")
    assert all(c.coder.startswith("share+") for c in fc1.notes[AutoRecord].candidates)


# ------------------------------------------------------------------------------ alkaid


@needs_alkaid
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alkaid_code_lowers_to_its_exact_matrix(seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(7, 9)) * np.where(rng.random((7, 9)) < 0.2, 0, 1)
    code = AlkaidCode.build(w, 7, (-128, 127))
    layer = DenseLayer("fc", w, np.zeros(7))
    g = MatrixGraph("a", "x", 9, "y", [layer])
    layer.code = code
    from nnlcc.ir.adder_graph import AdderGraph

    graph = AdderGraph.with_inputs([(-128, 127)] * 9)
    terms = code.lower(graph, list(range(9)))
    assert graph.adders == code.adders
    graph.outputs = [t.node for t in terms if t.node is not None]
    x = rng.integers(-128, 128, size=(32, 9))
    got = graph.evaluate(x)
    exact = code.implemented()
    k = 0
    for r, t in enumerate(terms):
        want = [sum(Fraction(exact[r, j]) * int(v[j]) for j in range(9)) for v in x]
        if t.node is None:
            assert all(v == 0 for v in want)
            continue
        sign = -1 if t.neg else 1
        assert [sign * Fraction(int(v)) * Fraction(2) ** t.exp for v in got[:, k]] == want
        k += 1
    assert g.verify() is None


@needs_alkaid
def test_alkaid_code_round_trips_through_the_text_ir() -> None:
    g = coded("quantize,auto{coders=alkaid}")
    assert all(la.code is not None and la.code.name == "alkaid" for la in g.matrix_layers())
    text = print_graph(g)
    back = parse_graph(text)
    assert print_graph(back) == text
    x = np.random.default_rng(1).integers(0, 128, size=(16, g.input_size))
    a, b = lower_network(g), lower_network(back)
    assert np.array_equal(a.evaluate(x), b.evaluate(x))


@needs_alkaid
def test_a_wrong_alkaid_program_is_refused() -> None:
    code = AlkaidCode.build(np.random.default_rng(0).normal(size=(4, 5)), 6, (0, 255))
    bad = dataclasses.replace(code, w_int=code.w_int + np.eye(4, 5, dtype=np.int64))
    with pytest.raises(BadInputError, match="does not compute the quantized matrix"):
        bad.check()


def test_auto_records_survive_the_text_ir() -> None:
    g = coded("quantize,auto{coders=csd+lcc}")
    back = parse_graph(print_graph(g))
    assert [la.notes[AutoRecord] for la in back.matrix_layers()] == [
        la.notes[AutoRecord] for la in g.matrix_layers()
    ]
    _ = PassContext  # the context type the pass reads (family)
