"""Reports: typed per-layer rows, report.json, report.md and report.html.

report.json is written first; the markdown and HTML renderings are made from the parsed JSON
only, so ``nnlcc report OUTDIR`` reproduces them exactly.
"""

from nnlcc.report.files import read_report, render_reports, rerender, write_reports
from nnlcc.report.layer_row import LayerRow
from nnlcc.report.markdown import render_markdown

__all__ = [
    "LayerRow",
    "read_report",
    "render_markdown",
    "render_reports",
    "rerender",
    "write_reports",
]
