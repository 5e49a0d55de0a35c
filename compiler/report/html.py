"""report.html: one self-contained page (inline CSS, matplotlib PNGs embedded as base64)
rendered from the :class:`~nnlcc.report.schema.Report` read back from report.json, like
report.md.  No JavaScript, no external files: it opens the
same from a mail attachment as from the build directory."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from html import escape
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
from nnlcc.report.schema import Report, Resources, SweepPoint, Verification

R = TypeVar("R")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:78rem;
 color:#1d2430;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
 border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
.meta{color:#57606a;font-size:.9rem}.meta code{background:#f6f8fa;padding:0 .25rem;
 word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #d0d7de;border-radius:.5rem;padding:.6rem .9rem;min-width:10rem}
.card .v{font-size:1.4rem;font-weight:600}.card .k{color:#57606a;font-size:.8rem}
.ok{color:#1a7f37}.bad{color:#cf222e}.warn{color:#9a6700}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:right}
th{background:#f6f8fa}td.l,th.l{text-align:left;white-space:nowrap}
tr.sweep td.l{white-space:normal;overflow-wrap:anywhere;max-width:40rem}
figure{display:inline-block;vertical-align:top;margin:.5rem 1rem .5rem 0}
figure img{max-width:36rem;border:1px solid #eaeef2}figcaption{font-size:.8rem;color:#57606a}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "∞" if math.isinf(v) else f"{v:.4g}"
    return str(v)


def _table(headers: list[str], rows: list[list[Any]], row_class: str = "", left: int = 1) -> str:
    """``left`` leading columns are text (left-aligned); the rest are numbers."""
    cls = f' class="{row_class}"' if row_class else ""
    head = "".join(
        f"<th{' class=l' if i < left else ''}>{escape(h)}</th>" for i, h in enumerate(headers)
    )
    body = "".join(
        f"<tr{cls}>"
        + "".join(
            f"<td{' class=l' if i < left else ''}>{escape(_fmt(c))}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _spec_table(columns: Sequence[Column[R]], rows: Sequence[R], row_class: str = "") -> str:
    """The table of the shared column spec ``columns`` as report.html shows it."""
    t = table(columns, rows, Writer.HTML)
    return _table(t.headers, t.rows, row_class=row_class, left=t.left)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(name: str, b64: str, caption: str) -> str:
    return (
        f'<figure id="fig-{name}"><img alt="{escape(caption)}" '
        f'src="data:image/png;base64,{b64}"><figcaption>{escape(caption)}</figcaption></figure>'
    )


def plot_adders(r: Report) -> str:
    """Bars: adders per layer, next to the per-layer CSD baseline when the report has it."""
    import matplotlib.pyplot as plt
    import numpy as np

    layers = r.layers
    names = [lay.name for lay in layers]
    x = np.arange(len(layers))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(layers) + 2), 3.2))
    has_csd = any(lay.csd_baseline_adders is not None for lay in layers)  # matrix layers
    w = 0.4 if has_csd else 0.6
    ax.bar(x - (w / 2 if has_csd else 0), [lay.adders for lay in layers], w, label="nnlcc")
    if has_csd:
        csd_bits = r.totals.csd_weight_bits
        ax.bar(
            x + w / 2,
            [lay.csd_baseline_adders or 0 for lay in layers],
            w,
            label=f"CSD {csd_bits}-bit",
            color="#bbbbbb",
        )
        ax.legend(frameon=False)
    ax.set_xticks(x, names, rotation=30 if len(names) > 6 else 0, ha="right")
    ax.set_ylabel("additions")
    ax.set_title("Additions per layer")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def plot_tradeoff(r: Report) -> str:
    """SQNR vs additions over the settings of ``sweep`` (and the CSD baseline if measured)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    sweep = r.sweep or []

    def db(p: SweepPoint) -> float:  # null in report.json: an exact code's infinite SQNR
        return p.weight_sqnr_db if p.weight_sqnr_db is not None else math.nan

    groups: dict[str, list[SweepPoint]] = {}
    for point in sweep:
        groups.setdefault(point.pass_name or "?", []).append(point)
    for name, pts in sorted(groups.items()):
        pts = sorted(pts, key=lambda p: p.adders)
        ax.plot(
            [p.adders for p in pts],
            [db(p) for p in pts],
            "o-",
            label=name,
        )
    for p in sweep:
        label = (p.setting or "").split(",")[-1]  # the matrix pass, usually
        ax.annotate(
            label,
            (p.adders, db(p)),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=6,
            color="#57606a",
        )
    chosen = [p for p in sweep if p.chosen]
    for p in chosen:
        ax.plot(p.adders, db(p), "*", ms=14, color="#cf222e")
        ax.annotate(
            "compiled",
            (p.adders, db(p)),
            xytext=(6, -14),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_xlabel("additions (whole network)")
    ax.set_ylabel("weight SQNR (dB)")
    ax.set_title("Accuracy vs cost")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def plot_accuracy_drop(r: Report) -> str:
    """Golden accuracy vs estimated LUTs of the points ``--accuracy-drop`` tried, its floor
    and the chosen point."""
    import matplotlib.pyplot as plt

    d = r.accuracy_drop
    assert d is not None
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    pts = d.points
    ax.plot([p.est_luts for p in pts], [100 * p.golden for p in pts], "o", ms=4,
            color="#57606a", label="points tried")  # fmt: skip
    ax.axhline(100 * d.floor, color="#cf222e", lw=1, ls="--", label="floor")
    ax.axhline(100 * d.float_accuracy, color="#1a7f37", lw=1, ls=":", label="float")
    ax.plot(d.est_luts, 100 * d.golden, "*", ms=14, color="#cf222e", label="chosen")
    ax.set_xlabel(f"estimated LUTs ({d.family})")
    ax.set_ylabel("golden accuracy (%)")
    ax.set_title("Accuracy vs LUTs")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


_RESOURCE_CAPACITY = (("luts", "device_luts", "LUTs"), ("ffs", "device_ffs", "FFs"))


def resource_bars(res: Resources) -> list[tuple[str, float, float | None]]:
    """(label, used, device capacity or None) for the resource numbers present."""
    bars: list[tuple[str, float, float | None]] = []
    for key, cap, label in _RESOURCE_CAPACITY:
        if getattr(res, key) is not None:
            bars.append((label, float(getattr(res, key)), getattr(res, cap)))
    for key, label in (("carry", "carry cells"), ("bram", "BRAM"), ("dsp", "DSP")):
        if getattr(res, key) is not None:
            bars.append((label, float(getattr(res, key)), None))
    return bars


def plot_resources(r: Report) -> str:
    """Horizontal bars: each resource used, against the device's capacity where known."""
    import matplotlib.pyplot as plt

    res = r.resources or Resources()
    bars = resource_bars(res)
    fig, ax = plt.subplots(figsize=(5.2, 0.5 * len(bars) + 1.2))
    labels = [b[0] for b in bars]
    used = [b[1] for b in bars]
    caps = [b[2] if b[2] is not None else math.nan for b in bars]
    ax.barh(labels, caps, color="#eaeef2", label="device")
    colors = ["#cf222e" if c == c and u > c else "#0969da" for u, c in zip(used, caps, strict=True)]
    ax.barh(labels, used, color=colors, height=0.5, label="used")
    for i, (u, c) in enumerate(zip(used, caps, strict=True)):
        text = f"{u:,.0f}" + (f" / {c:,.0f} ({100 * u / c:.0f}%)" if c == c and c else "")
        ax.text(max(u, c if c == c else 0) * 1.01, i, text, va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_title(f"Resources on {res.device or '?'}")
    ax.spines[["top", "right"]].set_visible(False)
    ax.margins(x=0.35)
    return _png(fig)


def _cards(r: Report) -> str:
    t, acc = r.totals, r.accuracy
    ver = r.verification or Verification(None, 0, None)
    cards = [
        ("adders", f"{t.adders:,}", f"{t.adders_per_weight} per weight", ""),
    ]
    if t.csd_best_adders is not None and t.adders:
        cards.append(
            (
                "vs best CSD, same SQNR",
                f"{t.csd_best_adders / t.adders:.2f}×",
                f"{t.csd_best_adders:,} adders; plain CSD {t.csd_weight_bits}-bit:"
                f" {t.csd_adders:,}",
                "",
            )
        )
    else:
        cards.append(
            (
                "vs plain CSD",
                f"{t.csd_adders / t.adders:.2f}×" if t.adders else "–",
                f"CSD {t.csd_weight_bits}-bit: {t.csd_adders:,} adders",
                "",
            )
        )
    if acc is not None and acc.float_accuracy is not None and acc.golden is not None:
        golden, flt = acc.golden, acc.float_accuracy
        cards.append(("accuracy (golden)", f"{golden:.4f}", f"float {flt:.4f}", ""))
    elif acc is not None:
        cards.append(("output SQNR", f"{acc.sqnr_db} dB", "golden vs float", ""))
    if ver.skipped or ver.bit_exact is None:
        cards.append(("verification", "not run", ver.skipped or "", "warn"))
    elif ver.bit_exact:
        cards.append(("verification", "bit-exact", f"{ver.vectors} vectors, {ver.simulator}", "ok"))
    else:
        cards.append(("verification", "MISMATCH", f"{ver.simulator}", "bad"))
    if r.latency_cycles is not None:
        cards.append(("latency", f"{r.latency_cycles} cycles", "pipeline latency", ""))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card" data-card="{escape(k)}"><div class="k">{escape(k)}</div>'
            f'<div class="v {c}">{escape(v)}</div><div class="k">{escape(sub)}</div></div>'
            for k, v, sub, c in cards
        )
        + "</div>"
    )


def _resources(r: Report) -> str:
    res = r.resources or Resources()
    if res.skipped:
        return f"<p>Not computed ({escape(res.skipped)}).</p>"
    tool = res.tool or ""
    kind = "estimate" if res.estimate else "post place-and-route"
    kind = "" if kind in tool else f" ({kind})"
    out = (
        f"<p>{escape(tool)}{kind}, device "
        f"<code>{escape(str(res.device))}</code>"
        + (f", {escape(res.design)}" if res.design else "")
        + "</p>"
        + _spec_table(RESOURCE_COLUMNS, [res])
    )
    for note in resource_notes(res):
        cls = "bad" if note.startswith("Does not fit") else "meta"
        out += f'<p class="{cls}">{escape(note)}</p>'
    if res.vivado is not None:
        out += f"<p class=meta>{escape(res.vivado.note)}</p>"
    return out


def _setting(point: SweepPoint) -> str:
    text = point.setting if point.setting is not None else point.passes
    return text + (" (compiled)" if point.chosen else "")


def render_html(r: Report) -> str:
    """The whole page for one report (read back from report.json)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to PNG only
    t = r.totals
    acc = r.accuracy
    ver = r.verification or Verification(None, 0, None)
    title = f"nnlcc report: {r.model_name or r.model}"
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        '<p class="meta">'
        f"model <code>{escape(r.model)}</code> · board "
        f"<code>{escape(r.board)}</code> · nnlcc {escape(str(r.nnlcc_version))}"
        + (f" · {r.seconds} s" if r.seconds is not None else "")
        + f"<br>passes <code>{escape(r.passes)}</code>"
        + (f"<br>config <code>{escape(r.config)}</code>" if r.config else "")
        + f"<br>input <code>{escape(str(r.input_fmt))}</code>, output "
        f"<code>{escape(str(r.output_fmt))}</code></p>",
        _cards(r),
        "<h2>Layers</h2>",
        _spec_table(LAYER_COLUMNS, r.layers, "layer"),
        "<h2>Totals</h2>",
        _table(
            [
                "adders",
                "weights",
                "adders/weight",
                *(h for h, _ in csd_totals(t)),
                "bias/rounding",
                "adder bits",
                *(h for h, _ in estimate_totals(t)),
            ],
            [
                [
                    t.adders,
                    t.weights,
                    t.adders_per_weight,
                    *(v for _, v in csd_totals(t)),
                    t.const_adders,
                    t.adder_bits,
                    *(v for _, v in estimate_totals(t)),
                ]
            ],
            left=0,
        ),
        "<h2>Accuracy</h2>",
        _spec_table(ACCURACY_COLUMNS, [acc] if acc is not None else []),
        "<h2>Verification</h2>",
    ]
    if ver.skipped or ver.bit_exact is None:
        parts.append(
            f'<p class="warn" id="verdict">Not run ({escape(str(ver.skipped))}): '
            "the design is <b>not</b> verified.</p>"
        )
    else:
        ok = bool(ver.bit_exact)
        parts.append(
            f'<p id="verdict" class="{"ok" if ok else "bad"}">cocotb + '
            f"{escape(str(ver.simulator))}: {ver.vectors} vectors back-to-back, "
            f"<b>{'bit-exact' if ok else 'MISMATCH'}</b> against the golden model.</p>"
        )
    parts += ["<h2>Resources</h2>", _resources(r)]
    text, heads, rows = accuracy_drop_lines(r)
    if text:
        parts += [
            "<h2>Accuracy-driven SQNR targets</h2>",
            f"<p>{escape(text)}</p>",
            _table(heads, rows),
        ]
    if r.sweep:
        parts += [
            "<h2>Settings tried</h2>",
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
                        _setting(p),
                        p.adders,
                        p.adders_per_weight,
                        p.weight_sqnr_db,
                        p.output_sqnr_db,
                        p.golden,
                    ]
                    for p in r.sweep
                ],
                row_class="sweep",
            ),
        ]
    figs = [
        '<h2>Plots</h2><div class="figs">',
        _figure("adders", plot_adders(r), "additions per layer"),
    ]
    if r.sweep:
        figs.append(_figure("tradeoff", plot_tradeoff(r), "weight SQNR vs additions"))
    if r.accuracy_drop is not None:
        figs.append(_figure("accuracy-drop", plot_accuracy_drop(r), "accuracy vs estimated LUTs"))
    if resource_bars(r.resources or Resources()):
        figs.append(_figure("resources", plot_resources(r), "resources used"))
    parts += [*figs, "</div></body></html>"]
    return "\n".join(parts) + "\n"
