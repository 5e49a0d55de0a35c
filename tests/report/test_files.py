"""The report files of an output directory: writing, reading back, re-rendering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_samples import SWEEP, images, sample_report

from nnlcc.errors import BadInputError
from nnlcc.report import read_report, rerender, write_reports


def test_write_then_rerender(tmp_path: Path) -> None:
    paths = write_reports(sample_report(sweep=SWEEP), tmp_path)
    assert [p.name for p in paths] == ["report.json", "report.md", "report.html"]
    before = (tmp_path / "report.md").read_text()
    (tmp_path / "report.md").unlink()
    (tmp_path / "report.html").unlink()
    rerender(tmp_path)
    assert (tmp_path / "report.md").read_text() == before
    assert images((tmp_path / "report.html").read_text())


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "has no report.json"), ("[1,", "is not valid JSON"), ('{"model": 1}', "missing")],
)
def test_read_report_errors(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "report.json").write_text(content)
    with pytest.raises(BadInputError, match=message):
        read_report(tmp_path)


def test_report_json_roundtrips_numpy_values(tmp_path: Path) -> None:
    import numpy as np

    r = sample_report()
    assert r.accuracy is not None
    r.totals.adders = np.int64(1200)  # type: ignore[assignment]
    r.accuracy.sqnr_db = np.float32(34.5)  # type: ignore[assignment]
    write_reports(r, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["totals"]["adders"] == 1200
