"""Cost-driven LCC: the search keeps the cheapest design for its objective, the seeds are
pruned when unused, and the lowering (small-first sums, inlined single-use codewords) keeps
the code's adder count and computes its matrix."""

from __future__ import annotations

import numpy as np
import pytest

from nnlcc.errors import PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.passes import parse_pipeline
from nnlcc.passes.lcc import LccCode, LccOptions, search
from nnlcc.passes.lcc.fp import SliceProgram
from nnlcc.passes.lcc.search import base_width, build_best, choices
from nnlcc.passes.lcc.seeds import pair_seeds, prune_unused
from nnlcc.passes.pricing import Pricing, price_code


def test_choices_cover_both_orientations_and_respect_fixed_options() -> None:
    got = choices((64, 200), 40)
    assert {c.transpose for c in got} == {"no", "yes"}
    assert {c.width for c in got if c.transpose == "no"} >= {base_width(64)}
    fixed = choices((64, 200), 40, transpose="yes", width="9")
    assert [(c.transpose, c.width) for c in fixed] == [("yes", 9)]


@pytest.mark.parametrize("objective", ["luts", "adders", "area"])
def test_search_keeps_the_cheapest_for_its_objective(objective: str) -> None:
    w = np.random.default_rng(0).normal(size=(24, 40))
    pr = Pricing()
    opts = LccOptions(sqnr_db=30, objective=objective)  # type: ignore[arg-type]
    best = build_best(w, opts, pr, LccCode.build)
    assert best.summary_reached and best.options["objective"] == objective
    for ch in choices(w.shape, 30):
        other = LccCode.build(
            w, LccOptions(sqnr_db=30, transpose=ch.transpose, slice=str(ch.width))
        )
        if objective == "adders":
            assert best.adders <= other.adders
        else:
            a, b = price_code(best, pr, w, 30), price_code(other, pr, w, 30)
            key = (lambda c: c.luts) if objective == "luts" else (lambda c: max(c.luts, c.ffs))
            assert key(a) <= key(b)


def test_low_sqnr_prefers_wider_slices() -> None:
    """At a few dB (a residual), the search's widths go beyond round(log2 N)."""
    w = np.random.default_rng(1).normal(size=(64, 64))
    assert max(c.width for c in choices(w.shape, 15)) >= base_width(64) + 6
    code = build_best(w, LccOptions(sqnr_db=15), Pricing(), LccCode.build)
    assert code.summary()["slice_width"] > base_width(64)


def test_lcc_pass_objective_option() -> None:
    assert parse_pipeline("lcc{objective=adders}")[0].objective == "adders"  # type: ignore[attr-defined]
    with pytest.raises(PassOptionError, match="not one of luts, area, adders"):
        parse_pipeline("lcc{objective=speed}")


def test_unused_seeds_are_pruned_and_the_matrix_is_unchanged() -> None:
    w = np.random.default_rng(2).normal(size=(30, 6))
    code = LccCode.build(w, LccOptions(sqnr_db=35, transpose="no", slice="6", seeds="yes"))
    (prog,) = code.slices
    k = prog.width
    # every codeword is read by an output or by another codeword: nothing dead is left
    used = np.zeros(k + len(prog.src), dtype=bool)
    used[prog.out[prog.out >= 0]] = True
    used[prog.src[prog.src >= 0]] = True
    assert used[k:].all()
    assert len(pair_seeds(6)) == 30
    # pruning a program with a dead codeword drops it and keeps the block
    dead = SliceProgram(
        cols=prog.cols,
        scale=prog.scale,
        src=np.concatenate([prog.src, [[0, 1]]]).astype(prog.src.dtype),
        exp=np.concatenate([prog.exp, [[0, 0]]]).astype(prog.exp.dtype),
        neg=np.concatenate([prog.neg, [[False, False]]]),
        out=prog.out,
        block=prog.block,
    )
    assert len(prune_unused(dead).src) == len(prog.src)


@pytest.mark.parametrize("transpose", ["no", "yes"])
def test_lowering_keeps_the_adder_count(transpose: str) -> None:
    w = np.random.default_rng(3).laplace(size=(20, 33))
    code = LccCode.build(w, LccOptions(sqnr_db=38, transpose=transpose))  # type: ignore[arg-type]
    g = AdderGraph.with_inputs([(-128, 127)] * 33)
    terms = code.lower(g, list(range(33)))
    g.outputs = [t.node for t in terms if t.node is not None]
    assert g.adders == code.adders


def test_truncated_layers_also_try_coding_targets_closer_to_the_layer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the layer's SQNR after truncation given, the search prices every design truncated
    to it and also codes the cheapest at MARGINS_DB above it: never dearer than without."""
    w = np.random.default_rng(5).normal(size=(24, 40))
    pr = Pricing()
    opts = LccOptions(sqnr_db=30.41)
    with_margins = build_best(w, opts, pr, LccCode.build, layer_db=30.0)
    monkeypatch.setattr(search, "MARGINS_DB", ())
    without = build_best(w, opts, pr, LccCode.build, layer_db=30.0)
    assert with_margins.reached_db >= 30.0  # type: ignore[attr-defined]
    assert with_margins.options["est_luts_alone"] <= without.options["est_luts_alone"]
    assert with_margins.options["searched"] > without.options["searched"]
    # the lcc pass records the coding target its search chose
    (lcc,) = parse_pipeline("lcc{sqnr_db=30}")
    code = lcc.build_priced(w, pr)  # type: ignore[attr-defined]
    assert code.target_db == 30.0 and code.options["coding_target_db"] >= 30.41 - 1e-9
    assert code.reached_db >= code.options["coding_target_db"] - 1e-9
