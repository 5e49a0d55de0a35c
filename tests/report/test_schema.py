"""report.json's schema (nnlcc.report.schema): a compile's report.json reads back into a
Report and writes out again byte for byte, and the schema knows every key its producers
write."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from report_samples import RESOURCES, SWEEP, sample_json

from nnlcc.boards import get_board
from nnlcc.boards.fit import fit_advice, model_resources
from nnlcc.boards.toolchain import count_cells
from nnlcc.driver import CompileOptions, compile_model
from nnlcc.errors import BadInputError
from nnlcc.hdl.top import StreamStrategy, VectorStrategy
from nnlcc.ir.family import ICE40
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.report.files import dumps
from nnlcc.report.schema import (
    Accuracy,
    AccuracyDrop,
    Estimate,
    FitAdvice,
    Report,
    Resources,
    Totals,
    Verification,
)

DROP = {
    "drop_points": 0.5, "float": 0.9667, "floor": 0.9617, "golden": 0.9689, "est_luts": 4292,
    "family": "xc7", "targets": {"fc1": 18.0, "fc2": 24.0},
    "points": [{"targets": {"fc1": 45.0, "fc2": 45.0}, "est_luts": 11664, "golden": 0.9644}],
}  # fmt: skip


def _kept(a: Any, b: Any) -> bool:
    """Everything of ``a`` is in ``b`` (which may add keys)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and all(k in b and _kept(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_kept, a, b))
    return bool(a == b)


def _same(obj: dict[str, Any]) -> None:
    """``obj`` reads into a Report and writes back with nothing lost (the fields it lacks
    added, in the schema's order), and that is a fixed point."""
    out = Report.from_json(obj).to_json()
    assert _kept(obj, out)
    assert json.dumps(Report.from_json(out).to_json()) == json.dumps(out)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"sweep": SWEEP, "resources": RESOURCES, "accuracy_drop": DROP, "throughput": "fast"},
        {"config": "nnlcc.toml", "layer_config": {"fc1": {"matrix": "csd", "csd": {"x": 1}}}},
    ],
)
def test_a_report_round_trips_unchanged(extra: dict[str, Any]) -> None:
    _same(sample_json(**extra))


def test_a_compiled_report_json_round_trips_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = compile_model(CompileOptions(report_only=True, outdir=out, sweep=["csd"]))
    text = (out / "report.json").read_text()
    back = Report.from_json(json.loads(text))
    assert dumps(back.to_json()) + "\n" == text
    assert back.outdir is None and report.outdir == str(out)  # the file has no outdir
    assert dataclasses.replace(report, outdir=None, json_notes=back.json_notes) == back


def test_unknown_keys_and_wrong_types_name_the_record() -> None:
    with pytest.raises(BadInputError, match="Totals has no key 'luts'"):
        Report.from_json(sample_json(totals={**sample_json()["totals"], "luts": 3}))
    with pytest.raises(BadInputError, match=r"Totals\.adders must be a int, not '12'"):
        Report.from_json(sample_json(totals={**sample_json()["totals"], "adders": "12"}))
    with pytest.raises(BadInputError, match="Report lacks board"):
        Report.from_json({k: v for k, v in sample_json().items() if k != "board"})
    with pytest.raises(BadInputError, match=r"Verification\.bit_exact must be a bool"):
        Verification.from_json({"simulator": "v", "vectors": 1, "bit_exact": 1})


def test_a_missing_field_of_an_older_report_gets_its_default() -> None:
    t = Totals.from_json({"adders": 1, "weights": 2, "adders_per_weight": 0.5, "csd_adders": 3})
    assert t.csd_weight_bits == 8 and t.est_luts is None and t.const_adders is None


def test_resources_skipped_and_placement_facts() -> None:
    assert Resources(skipped="report only").to_json() == {"skipped": "report only"}
    estimate = Resources(board="b", estimate=True).to_json()
    assert "timing_met" not in estimate and estimate["fmax_mhz"] is None
    placed = Resources(board="b", estimate=False, fmax_mhz=None).to_json()
    assert placed["timing_met"] is None  # placed: written, unknown


def test_the_schema_knows_what_the_producers_write(tiny_net: LoweredNetwork) -> None:
    # every testbench fact a top repeats is a field of Verification
    names = {f.name for f in dataclasses.fields(Verification)}
    for top in (VectorStrategy, StreamStrategy):
        assert set(top.summary_facts) <= names
    # the cost model's and yosys's counts are Estimates (the resources' counts too)
    counts = model_resources(tiny_net, ICE40)
    assert Estimate.from_json(counts).to_json() == counts
    cells = count_cells(ICE40, {"SB_LUT4": 3, "SB_DFF": 2, "SB_CARRY": 1})
    assert Estimate.from_json(cells).to_json() == cells
    Resources.from_json({**counts, **cells})
    # the fit advice of a design that does not fit
    small = dataclasses.replace(get_board("icebreaker"), luts=1)
    advice = fit_advice(small, tiny_net, counts, "cost model")
    assert advice is not None
    assert FitAdvice.from_json(advice).to_json() == advice


def test_accuracy_and_drop_records_name_float_as_report_json_does() -> None:
    acc = Accuracy("d", 3, 20.0, 1.0, float_accuracy=0.5, golden=0.4)
    assert list(acc.to_json()) == [
        "dataset", "samples", "sqnr_db", "argmax_agreement", "float", "golden"
    ]  # fmt: skip
    assert AccuracyDrop.from_json(DROP).to_json() == DROP
