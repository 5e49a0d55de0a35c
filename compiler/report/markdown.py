"""report.md, rendered from report.json (the JSON is the source of truth)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from nnlcc.report.columns import (
    ACCURACY_COLUMNS,
    LAYER_COLUMNS,
    RESOURCE_COLUMNS,
    Column,
    Writer,
    accuracy_drop_lines,
    csd_totals,
    estimate_totals,
    resource_notes,
    table,
)
from nnlcc.report.layer_row import LayerRow

R = TypeVar("R")


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _spec_table(columns: Sequence[Column[R]], rows: Sequence[R]) -> str:
    """The table of the shared column spec ``columns`` as report.md shows it."""
    t = table(columns, rows, Writer.MARKDOWN)
    return _table(t.headers, t.rows)


def _latency(r: dict[str, Any]) -> str:
    cycles = r.get("latency_cycles")
    return f"{cycles} cycles" if cycles is not None else "not measured (report only)"


def render_markdown(r: dict[str, Any]) -> str:
    t = r["totals"]
    acc = r.get("accuracy", {})
    ver = r.get("verification", {})
    res = r.get("resources", {})
    lines = [
        f"# nnlcc report: {r.get('model_name', r['model'])}",
        "",
        f"- model: `{r['model']}`",
        f"- board: `{r['board']}`",
        f"- passes: `{r['passes']}`",
        f"- input format: `{r.get('input_fmt')}`, output format: `{r.get('output_fmt')}`",
        f"- latency: {_latency(r)}, {r.get('throughput') or 'one input vector per clock'}",
        "",
        "## Layers",
        "",
        _spec_table(LAYER_COLUMNS, [LayerRow.from_json(lay) for lay in r["layers"]]),
        "",
        "## Totals",
        "",
        _table(
            [
                "adders",
                "weights",
                "adders/weight",
                *(h for h, _ in csd_totals(t)),
                "bias/rounding adders",
                *(h for h, _ in estimate_totals(t)),
            ],
            [
                [
                    t["adders"],
                    t["weights"],
                    t["adders_per_weight"],
                    *(v if v is not None else "–" for _, v in csd_totals(t)),
                    t.get("const_adders"),
                    *(v for _, v in estimate_totals(t)),
                ]
            ],
        ),
        "",
        "## Accuracy",
        "",
        _spec_table(ACCURACY_COLUMNS, [acc]),
        "",
        "## Verification",
        "",
    ]
    if ver.get("skipped"):
        lines.append(f"Not run ({ver['skipped']}): the design is **not** verified.")
    else:
        verdict = "bit-exact" if ver.get("bit_exact") else "MISMATCH"
        lines.append(
            f"cocotb + {ver.get('simulator')}: {ver.get('vectors')} vectors back-to-back, "
            f"**{verdict}** against the golden model."
        )
    lines += ["", "## Resources", ""]
    if res.get("skipped"):
        lines.append(f"Not computed ({res['skipped']}).")
    else:
        kind = "estimate" if res.get("estimate") else "post place-and-route"
        tool = str(res.get("tool", ""))
        label = tool if kind in tool else f"{tool} ({kind})"
        lines.append(f"{label}, device {res.get('device')}:")
        lines.append("")
        lines.append(_spec_table(RESOURCE_COLUMNS, [res]))
        lines += [x for note in resource_notes(res) for x in ("", note)]
    text, heads, rows = accuracy_drop_lines(r)
    if text:
        lines += ["", "## Accuracy-driven SQNR targets", "", text, "", _table(heads, rows)]
    if r.get("sweep"):
        lines += ["", "## Settings tried", ""]
        lines.append(
            _table(
                [
                    "setting (non-default options)",
                    "adders",
                    "adders/weight",
                    "weight SQNR dB",
                    "output SQNR dB",
                    "golden accuracy",
                ],
                [
                    [
                        f"`{p.get('setting', p['passes'])}`"
                        + (" (compiled)" if p.get("chosen") else ""),
                        p["adders"],
                        p["adders_per_weight"],
                        p["weight_sqnr_db"],
                        p.get("output_sqnr_db"),
                        p.get("golden"),
                    ]
                    for p in r["sweep"]
                ],
            )
        )
    return "\n".join(lines) + "\n"
