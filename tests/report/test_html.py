"""report.html rendering from report.json."""

from __future__ import annotations

import re

from report_samples import RESOURCES, SWEEP, images, sample_report

from nnlcc.report.html import render_html, resource_bars
from nnlcc.report.schema import Resources


def test_html_is_self_contained_with_a_row_per_layer() -> None:
    html = render_html(sample_report())
    assert html.count('<tr class="layer">') == 2
    assert "fc&lt;2&gt;" in html and "fc<2>" not in html  # names are escaped
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing external
    imgs = images(html)
    assert set(imgs) == {"adders"}  # no sweep, no resources: only the adders plot
    assert imgs["adders"].startswith(b"\x89PNG")
    assert "bit-exact" in html and "1.49×" in html  # verdict, CSD ratio 1783/1200


def test_html_plots_sweep_and_resources() -> None:
    html = render_html(sample_report(sweep=SWEEP, resources=RESOURCES))
    assert set(images(html)) == {"adders", "tradeoff", "resources"}
    assert html.count('<tr class="sweep">') == 3
    assert "107.4" in html  # utilization


def test_html_verdicts() -> None:
    skipped = {"simulator": None, "vectors": 0, "bit_exact": None, "skipped": "--no-verify"}
    assert "<b>not</b> verified" in render_html(sample_report(verification=skipped))
    bad = {"simulator": "icarus", "vectors": 10, "bit_exact": False}
    assert "MISMATCH" in render_html(sample_report(verification=bad))


def test_resource_bars_pair_usage_with_capacity() -> None:
    bars = resource_bars(Resources.from_json(RESOURCES))
    assert bars[0] == ("LUTs", 22336.0, 20800)
    assert ("DSP", 0.0, None) in bars
    assert resource_bars(Resources(skipped="report only")) == []
