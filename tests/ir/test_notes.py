"""Typed layer notes (nnlcc.ir.notes): the container's rules, every note's JSON round trip,
and the IR text's note tables."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from conftest import compile_graph

from nnlcc.errors import BadInputError
from nnlcc.ir.code_text import Syntax
from nnlcc.ir.family import XC7
from nnlcc.ir.imported import ActQuant, ImportedQuant, Rounding, WeightQuant
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.ir.notes import BatchNormLayer, JsonNote, LayerNotes, OnnxNodes
from nnlcc.ir.text import IR_NOTES
from nnlcc.ir.timing import ScheduleSetting
from nnlcc.ir.truncate import InputPower, TruncationBudget
from nnlcc.passes import LayerSettings, parse_graph, print_graph
from nnlcc.passes.auto import AutoRecord, CandidateRecord
from nnlcc.passes.prune import ColumnOrigin, KeptColumns
from nnlcc.passes.registry import _NOTES, coder_kinds, get_coder, note_classes, text_syntax
from nnlcc.passes.share import SharePlan

#: one note of every JSON class nnlcc has
EXAMPLES: list[JsonNote] = [
    OnnxNodes(["Gemm /fc1/Gemm", "Add bias"]),
    BatchNormLayer(),
    InputPower(0.33),
    TruncationBudget(41.5, 2.5, 1e-4, 1e-5),
    ScheduleSetting(XC7, every=2),
    LayerSettings("csd", {"csd": {"weight_bits": 6}}, ["fc*"]),
    KeptColumns([0, 2, 3]),
    ColumnOrigin([1, 4]),
    AutoRecord(
        "csd{weight_bits=5}",
        45.0,
        XC7,
        (CandidateRecord("csd{weight_bits=5}", 90, 12), CandidateRecord("lcc", failed="no")),
        None,
    ),
    ImportedQuant(
        weight=WeightQuant(4, True, True, 3, (0.125, 0.1875), ("Quant /fc1/weight_quant",)),
        input=ActQuant(0.0625, 0, -128, 127, Rounding.ROUND, ("QuantizeLinear in",)),
        output=ActQuant(0.25, 3, 0, 15, Rounding.ROUND, zp_in_rounding=True),
        gain=(1.0, 1.5),
        folded=["Quant /fc1/bias_quant"],
        caveats=["float bias 'fc1.bias'"],
    ),
]


def test_every_json_note_class_has_an_example() -> None:
    assert {type(n) for n in EXAMPLES} == set(IR_NOTES) | set(note_classes().values())


@pytest.mark.parametrize("note", EXAMPLES, ids=lambda n: n.key)
def test_a_note_reads_back_what_it_wrote(note: JsonNote) -> None:
    text = json.dumps(note.to_json())
    assert type(note).from_json(json.loads(text)) == note


@pytest.mark.parametrize(
    ("cls", "bad"),
    [
        (OnnxNodes, "Gemm"),
        (BatchNormLayer, False),
        (InputPower, "0.3"),
        (TruncationBudget, {"target_db": 1.0}),
        (ScheduleSetting, {"every": "2", "mhz": None, "family": "xc7"}),
        (LayerSettings, {"matrix": 3}),
        (KeptColumns, [0, -1]),
        (ColumnOrigin, [True]),
        (AutoRecord, {"coder": "csd"}),
        (ImportedQuant, {"weight": {"bits": 4}}),
        (ImportedQuant, [1, 2]),
    ],
)
def test_a_malformed_note_is_refused(cls: type[JsonNote], bad: Any) -> None:
    with pytest.raises((ValueError, BadInputError)):
        cls.from_json(bad)


def test_the_note_keys_are_unique_and_match_their_tables() -> None:
    assert all(note_classes()[key].key == key for key in _NOTES)
    blocks = [get_coder(k).blocks for k in coder_kinds()]
    keys = [c.key for c in IR_NOTES] + list(_NOTES) + [SharePlan.key]
    assert len(keys) == len(set(keys)) and sum(map(len, blocks)) == 1  # share's plan
    assert set(text_syntax().notes) == set(_NOTES)


def test_notes_keep_their_first_place_and_one_per_class() -> None:
    notes = LayerNotes(InputPower(1.0), KeptColumns([0]))
    notes.put(InputPower(2.0))  # replaced in place
    notes.put(OnnxNodes(["a"]))
    assert [n.key for n in notes] == ["input_ms", "kept_column_indices", "onnx_nodes"]
    assert notes[InputPower].mean_square == 2.0 and len(notes) == 3
    assert notes.pop(KeptColumns) == KeptColumns([0]) and notes.pop(KeptColumns) is None
    assert notes.get(KeptColumns) is None and KeptColumns not in notes
    with pytest.raises(KeyError, match="'truncation'"):
        notes[TruncationBudget]
    rest = notes.without(OnnxNodes)
    assert [n.key for n in rest] == ["input_ms"] and OnnxNodes in notes
    assert notes.of_weights() == []
    notes.put(TruncationBudget(1.0, 1.0, 0.0, 0.1))
    assert [n.key for n in notes.of_weights()] == ["truncation"]


def test_two_classes_cannot_share_a_key() -> None:
    class Other(InputPower):
        pass

    notes = LayerNotes(InputPower(1.0))
    with pytest.raises(ValueError, match="share key 'input_ms'"):
        notes.put(Other(2.0))


def tiny_mlp() -> MatrixGraph:
    rng = np.random.default_rng(3)
    layers = [
        DenseLayer("fc1", rng.normal(size=(4, 5)), rng.normal(size=4), relu=True),
        DenseLayer("fc2", rng.normal(size=(2, 4)), rng.normal(size=2)),
    ]
    return MatrixGraph("tiny", "x", 5, "y", layers)  # type: ignore[arg-type]


def _text_with_info(info: str) -> tuple[str, int]:
    g = tiny_mlp()
    text = print_graph(g)
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("dense")) + 1
    lines.insert(at, f"  info {info}")
    return "\n".join(lines) + "\n", at + 1


def test_an_unknown_note_key_names_its_line() -> None:
    text, line = _text_with_info('{"input_ms": 0.5, "colour": "red"}')
    with pytest.raises(BadInputError, match=rf"line {line}: unknown note 'colour' in info"):
        parse_graph(text)


def test_a_bad_note_value_names_its_line() -> None:
    text, line = _text_with_info('{"kept_column_indices": [0, "one"]}')
    with pytest.raises(BadInputError, match=rf"line {line}: kept_column_indices must be a list"):
        parse_graph(text)


def test_without_the_registry_only_the_ir_notes_parse() -> None:
    from nnlcc.ir import text as ir_text

    text, _ = _text_with_info('{"onnx_nodes": ["Gemm g"], "input_ms": 0.5}')
    back = ir_text.parse_graph(text, Syntax())
    assert back.layers[0].notes[OnnxNodes].nodes == ["Gemm g"]
    text, _ = _text_with_info('{"column_origin": [0]}')
    with pytest.raises(BadInputError, match="unknown note 'column_origin'"):
        ir_text.parse_graph(text, Syntax())


def test_compiled_notes_survive_the_text() -> None:
    g = tiny_mlp()
    compile_graph(g, "quantize,auto{coders=csd},schedule{every=2}", family=XC7)
    back = parse_graph(print_graph(g))
    for a, b in zip(g.layers, back.layers, strict=True):
        assert list(a.notes) == list(b.notes)
    fc = back.matrix_layers()[0]
    assert fc.notes[ScheduleSetting] == ScheduleSetting(XC7, every=2)
    assert isinstance(fc.notes[InputPower].mean_square, float)
    assert np.isfinite(fc.notes[AutoRecord].sqnr_db)
