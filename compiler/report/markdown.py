"""report.md, rendered from the :class:`~nnlcc.report.schema.Report` read back from
report.json (the JSON is the source of truth)."""

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
from nnlcc.report.schema import Report, Resources, Verification

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


def _latency(r: Report) -> str:
    cycles = r.latency_cycles
    return f"{cycles} cycles" if cycles is not None else "not measured (report only)"


def render_markdown(r: Report) -> str:
    t = r.totals
    acc = r.accuracy
    ver = r.verification or Verification(None, 0, None)
    res = r.resources or Resources()
    lines = [
        f"# nnlcc report: {r.model_name or r.model}",
        "",
        f"- model: `{r.model}`",
        f"- board: `{r.board}`",
        f"- passes: `{r.passes}`",
        f"- input format: `{r.input_fmt}`, output format: `{r.output_fmt}`",
        f"- latency: {_latency(r)}, {r.throughput or 'one input vector per clock'}",
        *(
            [
                f"- throughput: {r.steps_per_second:,.0f} time steps per second at"
                f" {r.steps_per_second_at}"
            ]
            if r.steps_per_second is not None
            else []
        ),
        "",
        "## Layers",
        "",
        _spec_table(LAYER_COLUMNS, r.layers),
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
                    t.adders,
                    t.weights,
                    t.adders_per_weight,
                    *(v if v is not None else "–" for _, v in csd_totals(t)),
                    t.const_adders,
                    *(v for _, v in estimate_totals(t)),
                ]
            ],
        ),
        "",
        "## Accuracy",
        "",
        _spec_table(ACCURACY_COLUMNS, [acc] if acc is not None else []),
        "",
        "## Verification",
        "",
    ]
    if ver.skipped:
        lines.append(f"Not run ({ver.skipped}): the design is **not** verified.")
    else:
        verdict = "bit-exact" if ver.bit_exact else "MISMATCH"
        lines.append(
            f"cocotb + {ver.simulator}: {ver.vectors} vectors back-to-back, "
            f"**{verdict}** against the golden model."
        )
    lines += ["", "## Resources", ""]
    if res.skipped:
        lines.append(f"Not computed ({res.skipped}).")
    else:
        kind = "estimate" if res.estimate else "post place-and-route"
        tool = res.tool or ""
        label = tool if kind in tool else f"{tool} ({kind})"
        lines.append(f"{label}, device {res.device}:")
        lines.append("")
        lines.append(_spec_table(RESOURCE_COLUMNS, [res]))
        lines += [x for note in resource_notes(res) for x in ("", note)]
    text, heads, rows = accuracy_drop_lines(r)
    if text:
        lines += ["", "## Accuracy-driven SQNR targets", "", text, "", _table(heads, rows)]
    if r.sweep:
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
                        f"`{p.setting if p.setting is not None else p.passes}`"
                        + (" (compiled)" if p.chosen else ""),
                        p.adders,
                        p.adders_per_weight,
                        p.weight_sqnr_db,
                        p.output_sqnr_db,
                        p.golden,
                    ]
                    for p in r.sweep
                ],
            )
        )
    return "\n".join(lines) + "\n"
