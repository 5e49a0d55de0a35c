"""Report rows of CNN layers: the code-only rows of --report-only on big networks agree with
the rows of the lowered network, and the IR's line-buffer size with the streaming hardware's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import nnlcc.report.rows
from nnlcc.driver import CompileOptions, compile_model

EXAMPLES = Path(__file__).parents[2] / "examples"
KEYS = ("name", "kind", "shape", "adders", "kernel", "stride", "line_buffer_bits")


def _report(tmp_path: Path, limit: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(nnlcc.report.rows, "LOWER_LIMIT_WEIGHTS", limit)
    opts = CompileOptions(
        model=EXAMPLES / "digits_cnn.onnx", report_only=True, outdir=tmp_path / str(limit)
    )
    return compile_model(opts)


def test_code_rows_match_lowered_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (EXAMPLES / "digits_cnn.onnx").is_file():
        pytest.skip("examples/digits_cnn.onnx not built")
    light = _report(tmp_path, 0, monkeypatch)
    full = _report(tmp_path, 10**9, monkeypatch)
    assert [{k: r.get(k) for k in KEYS} for r in light["layers"]] == [
        {k: r.get(k) for k in KEYS} for r in full["layers"]
    ]
    assert [r["kind"] for r in light["layers"]] == [
        "conv",
        "pool",
        "conv",
        "pool",
        "flatten",
        "dense",
    ]
    assert light["totals"]["adders"] == full["totals"]["adders"]
    assert light["totals"]["csd_adders"] == full["totals"]["csd_adders"]
    assert light["latency_cycles"] is None and "skipped" in light["accuracy"]
    assert light["accuracy"]["sqnr_db"] > 25
    assert full["accuracy"]["golden"] >= full["accuracy"]["float"] - 0.01
