"""A coder is one room: a toy coder defined here (a code class with its IR text and a
:class:`Coder`), registered at runtime with no edit to ir/, auto or report/, is tried by auto
and chosen where it is cheapest, shows in the report, and its layer round-trips through the IR
text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnlcc.driver import (
    CompileOptions,
    compile_model,
    load_data,
    load_model,
    resolve_pipeline,
    run_passes,
)
from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.code_text import CodeReader, CodeWriter
from nnlcc.ir.fixed_point import quantize_weights, sqnr_db
from nnlcc.ir.lower import lower_network
from nnlcc.ir.matrix import FloatArray, MatrixLayer, Term
from nnlcc.ir.text_syntax import Line, child, fields, numbers, rest_of, row_text
from nnlcc.passes import register_coder, unregister_coder
from nnlcc.passes.auto import Auto, AutoRecord
from nnlcc.passes.coder import Coder, CoderContext, Design
from nnlcc.passes.csd import CsdCode
from nnlcc.passes.registry import auto_coders
from nnlcc.passes.text import parse_graph, print_graph

# ----------------------------------------------------------------------- the toy coder


@dataclass
class OuterCode:
    """A rank-one matrix ``(u 2**-fu)(v 2**-fv)^T``: the sum ``s = v.x`` once, then one
    multiple of ``s`` per row (both as CSD), where plain CSD sums every weight of every row."""

    u: npt.NDArray[np.int64]
    v: npt.NDArray[np.int64]
    fu: int
    fv: int
    name: str = "outer"

    def implemented(self) -> FloatArray:
        return np.outer(np.ldexp(self.u.astype(float), -self.fu), np.ldexp(self.v, -self.fv))

    def lower(self, graph: AdderGraph, inputs: list[int]) -> list[Term]:
        (s,) = CsdCode(self.v[None, :], self.fv, cse=False).lower(graph, inputs)
        if s.node is None:
            return [Term(None, 0) for _ in self.u]
        rows = CsdCode(self.u[:, None], self.fu, cse=False).lower(graph, [s.node])
        return [t if t.node is None else Term(t.node, t.exp + s.exp, t.neg != s.neg) for t in rows]

    def summary(self) -> dict[str, Any]:
        return {"outer_frac_bits": self.fu + self.fv}

    def text_lines(self, ind: str, out: CodeWriter) -> list[str]:
        return [
            f"{ind}code outer fu={self.fu} fv={self.fv}",
            f"{ind}  u {row_text(self.u)}",
            f"{ind}  v {row_text(self.v)}",
        ]


def outer_code(m: FloatArray, target_db: float) -> OuterCode:
    """``m``'s leading singular pair rounded to the fewest bits reaching ``target_db``."""
    u, s, vt = np.linalg.svd(m)
    a, b = u[:, 0] * np.sqrt(s[0]), vt[0] * np.sqrt(s[0])
    for bits in range(2, 21):
        ui, fu = quantize_weights(a[:, None], bits)
        vi, fv = quantize_weights(b[None, :], bits)
        code = OuterCode(ui[:, 0], vi[0], fu, fv)
        if sqnr_db(m, code.implemented()) >= target_db:
            return code
    raise BadInputError(f"not of rank one at {target_db:.2f} dB")


class OuterCoder(Coder):
    kind: ClassVar[str] = "outer"
    in_auto: ClassVar[bool] = True

    def parse(self, line: Line, shape: tuple[int, int], reader: CodeReader) -> OuterCode:
        _, kv = fields(line, ("fu", "fv"))
        u, v = child(line, 0, "u").leaf(), child(line, 1, "v").leaf()
        with line.at():
            fu, fv = int(kv["fu"]), int(kv["fv"])
        uv = [
            np.array(numbers(ln, rest_of(ln), n, int)) for ln, n in ((u, shape[0]), (v, shape[1]))
        ]
        return OuterCode(uv[0], uv[1], fu, fv)

    def candidates(self, layer: MatrixLayer, ctx: CoderContext) -> list[Design]:
        if not ctx.priced:
            return []
        return [Design("outer", lambda m: outer_code(m, ctx.coding_db))]


# ------------------------------------------------------------------------------- tests


@pytest.fixture
def outer() -> Iterator[OuterCoder]:
    coder = register_coder(OuterCoder())
    try:
        yield coder  # type: ignore[misc]
    finally:
        unregister_coder("outer")


def rank_one_mlp(path: Path) -> Path:
    """12 -> 10 (rank one, relu) -> 6 as ONNX Gemms."""
    rng = np.random.default_rng(7)
    w1 = np.outer(rng.normal(size=10), rng.normal(size=12)) * 0.3
    w2 = rng.normal(size=(6, 10)) * 0.4
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], name="fc2", transB=1),
    ]
    inits = [("W1", w1), ("B1", rng.normal(size=10) * 0.1), ("W2", w2), ("B2", np.zeros(6))]
    graph = helper.make_graph(
        nodes,
        "rank_one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6])],
        [numpy_helper.from_array(a.astype(np.float32), n) for n, a in inits],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def built_in() -> list[str]:
    """The registry's own coders auto tries (csd, lcc, alkaid, and any added since)."""
    return [k for k in auto_coders() if k != "outer"]


def test_a_registered_coder_joins_auto_and_leaves_with_unregistering(outer: OuterCoder) -> None:
    assert built_in()[:3] == ["csd", "lcc", "alkaid"]
    assert Auto().coders == "+".join([*built_in(), "outer"])  # after the registry's own
    Auto(coders="outer")  # a name auto accepts
    unregister_coder("outer")
    assert Auto().coders == "+".join(built_in())
    known = ", ".join(built_in())
    with pytest.raises(PassOptionError, match=f"coders must be names from {known} joined"):
        Auto(coders="outer")


def rivals() -> str:
    """The coders the toy competes with: the built-in ones but ``lowrank`` (a rank-r coder
    with shared subexpressions, which beats the toy on its own ground), then the toy."""
    return "+".join([*(k for k in built_in() if k != "lowrank"), "outer"])


def test_auto_picks_the_toy_where_cheapest_and_the_report_and_ir_show_it(
    outer: OuterCoder, tmp_path: Path
) -> None:
    model = rank_one_mlp(tmp_path / "rank_one.onnx")
    opts = CompileOptions(
        model=model,
        report_only=True,
        outdir=tmp_path / "out",
        board="ulx3s",
        passes=f"quantize,auto{{coders={rivals()}}}",
    )
    report = compile_model(opts).to_json()
    fc1, fc2 = report["layers"][0], report["layers"][-1]

    # auto tried it on every layer: chosen for the rank-one layer, as the cheapest ...
    assert (fc1["auto_coder"], fc1["pass"]) == ("outer", "outer")
    assert f"auto{{sqnr_db=45.0,coders={rivals()}," in report["passes"]
    # ... and a runner-up that failed on the other (it is not of rank one)
    assert (
        fc2["auto_coder"] != "outer" and "outer failed: not of rank one" in fc2["auto_runners_up"]
    )
    assert fc1["csd_best_luts"] > fc1["est_luts"]  # the baseline, priced by the compile step
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| fc1 | 10×12 | outer |" in md

    # the IR text holds the toy's own block and reads back with it (and only with it)
    text = (tmp_path / "out" / "ir.txt").read_text()
    assert "\n  code outer fu=" in text
    back = parse_graph(text)
    assert print_graph(back) == text
    assert lower_network(back).layers[0].graph.adders == fc1["adders"]
    unregister_coder("outer")
    with pytest.raises(BadInputError, match=r"line [0-9]+: cannot rebuild code 'outer'"):
        parse_graph(text)


def test_auto_chose_the_cheapest_and_the_text_round_trips(
    outer: OuterCoder, tmp_path: Path
) -> None:
    model = rank_one_mlp(tmp_path / "m.onnx")
    graph = load_model(model)
    pipeline = resolve_pipeline(f"quantize,auto{{coders={rivals()}}}")
    run_passes(graph, pipeline, load_data(graph, model, None, 0))
    rec = graph.matrix_layers()[0].notes[AutoRecord]
    assert [c.coder for c in rec.candidates][-1] == "outer"  # after the built-in coders
    priced = [c for c in rec.candidates if c.est_luts is not None]
    assert rec.coder == min(priced, key=lambda c: c.est_luts or 0).coder == "outer"
    assert json.dumps(rec.to_json())  # the record stays JSON
    back = parse_graph(print_graph(graph))
    for a, b in zip(lower_network(graph).layers, lower_network(back).layers, strict=True):
        assert a.graph.to_text() == b.graph.to_text()
    x = np.random.default_rng(0).integers(-128, 128, size=(20, 12))
    assert np.array_equal(lower_network(graph).evaluate(x), lower_network(back).evaluate(x))
