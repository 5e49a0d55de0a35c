"""report.md, rendered from report.json (the JSON is the source of truth)."""

from __future__ import annotations

from typing import Any

from nnlcc.report.columns import accuracy_table


def _columns(lay: dict[str, Any]) -> str:
    """``used→shared (pre-adders)`` of a layer (pruning and weight sharing), ``–`` if absent."""
    if "kept_columns" not in lay:
        return "–"
    return f"{lay['kept_columns']}→{lay['shared_columns']} ({lay['pre_adders']})"


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
