"""Human-readable reports rendered from report.json (the JSON is the source of truth).

:func:`write_reports` writes report.json, report.md and report.html; :func:`rerender` rebuilds
the last two from a directory's report.json (``nnlcc report OUTDIR``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nnlcc.errors import BadInputError


def _columns(lay: dict[str, Any]) -> str:
    """``used→shared (pre-adders)`` of a layer (pruning and weight sharing), ``–`` if absent."""
    if "kept_columns" not in lay:
        return "–"
    return f"{lay['kept_columns']}→{lay['shared_columns']} ({lay['pre_adders']})"


#: Keys every report.json has; ``rerender`` refuses a file without them.
REQUIRED_KEYS = ("model", "board", "passes", "layers", "totals")


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


#: The accuracy table of every report format: (header, report.json key).
ACCURACY_COLUMNS = (
    ("dataset", "dataset"),
    ("samples", "samples"),
    ("float", "float"),
    ("golden (integer)", "golden"),
    ("output SQNR dB", "sqnr_db"),
    ("argmax agreement", "argmax_agreement"),
)


def accuracy_table(acc: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Headers and the one row of the accuracy table."""
    return [h for h, _ in ACCURACY_COLUMNS], [[acc.get(k) for _, k in ACCURACY_COLUMNS]]


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


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
        _table(
            [
                "layer",
                "shape",
                "pass",
                "adders",
                "adders/weight",
                "columns used→shared (pre-adders)",
                "weight SQNR dB",
                "depth",
                "latency",
                "in",
                "out",
                "max bits",
            ],
            [
                [
                    lay["name"],
                    "×".join(map(str, lay["shape"])),
                    lay["pass"],
                    lay["adders"],
                    lay["adders_per_weight"],
                    _columns(lay),
                    lay.get("weight_sqnr_db"),
                    lay["depth"],
                    lay.get("latency"),
                    lay.get("in_fmt"),
                    lay.get("out_fmt"),
                    lay.get("max_bits"),
                ]
                for lay in r["layers"]
            ],
        ),
        "",
        "## Totals",
        "",
        _table(
            [
                "adders",
                "weights",
                "adders/weight",
                f"CSD baseline ({t.get('csd_weight_bits', 8)}-bit)",
                "vs CSD",
                "bias/rounding adders",
            ],
            [
                [
                    t["adders"],
                    t["weights"],
                    t["adders_per_weight"],
                    t["csd_adders"],
                    f"{t['csd_adders'] / max(t['adders'], 1):.2f}× fewer" if t["adders"] else "–",
                    t.get("const_adders"),
                ]
            ],
        ),
        "",
        "## Accuracy",
        "",
        _table(*accuracy_table(acc)),
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
        keys = [
            k
            for k in (
                "luts",
                "ffs",
                "carry",
                "bram",
                "dsp",
                "fmax_mhz",
                "device_luts",
                "utilization_pct",
                "fits",
            )
            if k in res
        ]
        lines.append(_table(keys, [[res.get(k) for k in keys]]))
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


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o)}")


def render_reports(r: dict[str, Any], outdir: Path) -> list[Path]:
    """Write report.md and report.html for ``r`` into ``outdir``; returns their paths."""
    from nnlcc.report_html import render_html

    md, html = Path(outdir) / "report.md", Path(outdir) / "report.html"
    md.write_text(render_markdown(r))
    html.write_text(render_html(r))
    return [md, html]


def write_reports(r: dict[str, Any], outdir: Path) -> list[Path]:
    """Write report.json (the source of truth), then report.md and report.html from it."""
    path = Path(outdir) / "report.json"
    path.write_text(json.dumps(r, indent=2, default=_json_default) + "\n")
    return [path, *render_reports(json.loads(path.read_text()), outdir)]


def read_report(outdir: Path) -> dict[str, Any]:
    """The report.json of a compile output directory, checked enough to render."""
    outdir = Path(outdir)
    path = outdir / "report.json" if outdir.is_dir() else outdir
    if not outdir.exists():
        raise BadInputError(f"'{outdir}' does not exist; give a directory written by nnlcc compile")
    if not path.is_file():
        raise BadInputError(
            f"'{outdir}' has no report.json; give a directory written by nnlcc compile"
        )
    try:
        r = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInputError(
            f"'{path}' is not valid JSON ({e}); re-run nnlcc compile to rewrite it"
        ) from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(r, dict) or k not in r]
    if missing:
        raise BadInputError(
            f"'{path}' is not an nnlcc report (missing {', '.join(missing)});"
            " re-run nnlcc compile to rewrite it"
        )
    return r


def rerender(outdir: Path) -> list[Path]:
    """``nnlcc report OUTDIR``: rebuild report.md and report.html from report.json."""
    r = read_report(outdir)
    target = Path(outdir) if Path(outdir).is_dir() else Path(outdir).parent
    return render_reports(r, target)
