"""The column specs shared by report.md and report.html: both formats take their layer,
accuracy and resources tables from :mod:`nnlcc.report.columns`."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from report_samples import RESOURCES, layer, sample_report

from nnlcc.report import render_markdown
from nnlcc.report.columns import (
    ACCURACY_COLUMNS,
    LAYER_COLUMNS,
    RESOURCE_COLUMNS,
    Column,
    Writer,
    estimate_totals,
    resource_notes,
    table,
)
from nnlcc.report.html import render_html
from nnlcc.report.layer_row import LayerRow
from nnlcc.report.schema import Accuracy, Resources, Totals


def md_headers(md: str, section: str) -> list[str]:
    body = md.split(f"## {section}\n", 1)[1]
    line = next(x for x in body.splitlines() if x.startswith("| "))
    return [c.strip() for c in line.strip("|").split("|")]


def html_headers(html: str, section: str) -> list[str]:
    body = html.split(f"<h2>{section}</h2>", 1)[1]
    head = re.search(r"<thead><tr>(.*?)</tr></thead>", body)
    assert head is not None
    return [unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", head.group(1))]


def shown(columns: tuple[Column[Any], ...], rows: list[Any], writer: Writer) -> list[str]:
    return table(columns, rows, writer).headers


def test_both_formats_take_their_tables_from_the_shared_specs() -> None:
    r = sample_report(resources={**RESOURCES, "fmax_mhz": 100.0})
    rows = r.layers
    md, html = render_markdown(r), render_html(r)
    for writer, headers in ((Writer.MARKDOWN, md_headers), (Writer.HTML, html_headers)):
        out = md if writer is Writer.MARKDOWN else html
        assert headers(out, "Layers") == shown(LAYER_COLUMNS, rows, writer)
        assert headers(out, "Accuracy") == shown(ACCURACY_COLUMNS, [r.accuracy], writer)
        assert headers(out, "Resources") == shown(RESOURCE_COLUMNS, [r.resources], writer)
    # the columns both formats show come in the same order, with the same headers
    both = [
        c.header
        for c in LAYER_COLUMNS
        if c.show(Writer.MARKDOWN, rows) and c.show(Writer.HTML, rows)
    ]
    assert [h for h in md_headers(md, "Layers") if h in both] == both
    assert [h for h in html_headers(html, "Layers") if h in both] == both
    assert both[:4] == ["layer", "shape", "pass", "adders"] and "max bits" in both
    assert md_headers(md, "Accuracy") == html_headers(html, "Accuracy")


def test_the_formats_differ_only_by_the_spec_flags() -> None:
    rows = [LayerRow.from_json(layer("fc1", 16, 64, 1000))]
    md = shown(LAYER_COLUMNS, rows, Writer.MARKDOWN)
    html = shown(LAYER_COLUMNS, rows, Writer.HTML)
    assert "columns used→shared (pre-adders)" in md and "CSD baseline" not in md
    assert "CSD baseline" in html and "adder bits (≈LUTs)" in html
    assert "pre-adders" not in html  # optional: no row has pre-adders
    shared = LayerRow.from_json({**layer("fc1", 16, 64, 1000), "kept_columns": 50,
                                 "shared_columns": 40, "pre_adders": 10})  # fmt: skip
    html = shown(LAYER_COLUMNS, [*rows, shared], Writer.HTML)
    assert html[-2:] == ["pre-adders", "kept columns"]
    md_cells = table(LAYER_COLUMNS, [*rows, shared], Writer.MARKDOWN).rows
    assert md_cells[0][5] == "–" and md_cells[1][5] == "50→40 (10)"  # no est. columns here
    # resources: report.md names utilization by its key and shows it only when known; fmax
    # is in every computed resources record (null for an estimate)
    partial = Resources(luts=5)
    assert shown(RESOURCE_COLUMNS, [partial], Writer.MARKDOWN) == ["luts", "fmax_mhz"]
    html = shown(RESOURCE_COLUMNS, [partial], Writer.HTML)
    assert html == ["luts", "fmax_mhz", "utilization %", "fits"]
    full = Resources.from_json(RESOURCES)
    assert "utilization_pct" in shown(RESOURCE_COLUMNS, [full], Writer.MARKDOWN)


def test_html_left_aligns_the_leading_text_columns() -> None:
    rows = [LayerRow.from_json(layer("fc1", 16, 64, 1000))]
    assert table(LAYER_COLUMNS, rows, Writer.HTML).left == 3
    assert table(RESOURCE_COLUMNS, [Resources.from_json(RESOURCES)], Writer.HTML).left == 0
    assert table(ACCURACY_COLUMNS, [Accuracy("d", 1, None, None)], Writer.HTML).left == 1


def test_cost_model_columns_sit_next_to_adders_when_known() -> None:
    est = {**layer("fc1", 16, 64, 1000), "est_luts": 16631, "est_ffs": 22643}
    rows = [LayerRow.from_json(est), LayerRow.from_json({**layer("fc2", 10, 16, 200),
                                                         "est_luts": None, "est_ffs": None})]  # fmt: skip
    assert rows[0].est_luts == 16631 and rows[0].to_json()["est_ffs"] == 22643
    for writer in Writer:
        headers = shown(LAYER_COLUMNS, rows, writer)
        i = headers.index("adders")
        assert headers[i + 1 : i + 3] == ["est. LUTs", "est. FFs"]
        cells = table(LAYER_COLUMNS, rows, writer).rows
        assert cells[0][i + 1 : i + 3] == [16631, 22643] and cells[1][i + 1] is None
        # a report written before the cost model has no such column
        old = [LayerRow.from_json(layer("fc1", 16, 64, 1000))]
        assert "est. LUTs" not in shown(LAYER_COLUMNS, old, writer)


def test_totals_and_notes_of_the_cost_model() -> None:
    base = {"adders": 1, "weights": 1, "adders_per_weight": 1.0, "csd_adders": 1}
    assert estimate_totals(Totals.from_json({**base, "est_luts": None})) == []
    est = Totals.from_json({**base, "est_luts": 5, "est_ffs": 7, "est_family": "xc7"})
    assert estimate_totals(est) == [("est. LUTs (xc7)", 5), ("est. FFs (xc7)", 7)]
    res = {**RESOURCES, "tool": "nnlcc cost model (xc7, calibrated estimate)",
           "calibration": "benchmarks/results/x/cost_model.md", "model_error": "LUTs: max 11 %",
           "fit_advice": {"message": "design does not fit X: 1 LUT6s of 0", "source": "model",
                          "biggest_layers": [], "levers": []}}  # fmt: skip
    notes = resource_notes(Resources.from_json(res))
    assert "benchmarks/results/x/cost_model.md" in notes[0] and "LUTs: max 11 %" in notes[0]
    assert notes[-1] == "Does not fit: design does not fit X: 1 LUT6s of 0"
    t = {"adders": 1200, "weights": 1184, "adders_per_weight": 1.01, "csd_adders": 1800,
         "est_luts": 20552, "est_ffs": 27843, "est_family": "xc7"}  # fmt: skip
    r = sample_report(resources=res, totals=t)
    md, html = render_markdown(r), render_html(r)
    assert "est. LUTs (xc7)" in md_headers(md, "Totals")
    assert "est. LUTs (xc7)" in html_headers(html, "Totals")
    for out in (md, html):
        assert "benchmarks/results/x/cost_model.md" in out and "Does not fit: design" in out
    # a tool's figures replace the model's: the model's stay beside them
    refined = {**RESOURCES, "model_estimate": {"tool": "nnlcc cost model (xc7, calibrated "
               "estimate)", "luts": 20552, "ffs": 27843, "calibration": "c.md", "model_error": "e"}}  # fmt: skip
    notes = resource_notes(Resources.from_json(refined))
    assert notes[0].startswith("nnlcc cost model (xc7, calibrated estimate): 20,552 LUTs")
    assert "c.md" in notes[1]
