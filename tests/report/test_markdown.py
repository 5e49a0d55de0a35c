"""report.md rendering from report.json."""

from __future__ import annotations

from report_samples import SWEEP, sample_report

from nnlcc.report import render_markdown


def test_markdown_keeps_its_sections_and_adds_the_sweep() -> None:
    md = render_markdown(sample_report())
    for section in ("## Layers", "## Totals", "## Accuracy", "## Verification", "## Resources"):
        assert section in md
    assert "Settings tried" not in md
    md = render_markdown(sample_report(sweep=SWEEP))
    assert "## Settings tried" in md and "(compiled)" in md
