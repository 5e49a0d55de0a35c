"""The one line ``nnlcc compile`` prints after a run (and ``--layer``'s): rendered from the
typed :class:`~nnlcc.report.schema.Report` (or ``layer.json``), nothing computed."""

from __future__ import annotations

from typing import Any

from nnlcc.report.schema import Accuracy, Report, Resources, Verification

__all__ = ["layer_summary_line", "summary_line"]


def _estimated(res: Resources) -> str:
    """How the summary labels the LUTs: the cost model's, a tool's estimate, or placed."""
    if not res.estimate:
        return ""
    if "cost model" not in str(res.tool):
        return " (est.)"
    v = res.verdict
    margin = v.luts_margin_pct if v is not None else None
    return f" (model est., ±{margin:.0f} %)" if margin is not None else " (model est.)"


def layer_summary_line(r: dict[str, Any]) -> str:
    """The one line ``nnlcc compile --layer`` prints (``r``: what layer.json holds)."""
    ver = r["verification"]
    checked = (
        f"{ver['vectors']} vectors bit-exact in {ver['simulator']}"
        if ver.get("bit_exact")
        else f"NOT verified ({ver.get('skipped')})"
    )
    return (
        f"{r['layer']} ({r['kind']} {r['shape'][0]}x{r['shape'][1]}): {r['adders']} adders,"
        f" depth {r['depth']}; {checked} -> {r['verilog']}"
    )


def summary_line(r: Report) -> str:
    """The one line ``nnlcc compile`` prints."""
    t = r.totals
    acc = r.accuracy or Accuracy("", 0, None, None)
    ver = r.verification or Verification(None, 0, None)
    parts = [
        f"{r.model_name}: {t.adders} adders ({t.adders_per_weight}/weight, "
        + (f"best CSD {t.csd_best_adders}, " if t.csd_best_adders is not None else "")
        + f"plain CSD {t.csd_adders})",
    ]
    if acc.float_accuracy is not None and acc.golden is not None:
        parts.append(f"accuracy float {acc.float_accuracy:.4f} golden {acc.golden:.4f}")
    else:
        parts.append(f"output SQNR {acc.sqnr_db} dB")
    if ver.bit_exact is None:
        parts.append(f"NOT verified ({ver.skipped})")
    else:
        parts.append(
            f"{ver.vectors} vectors bit-exact in {ver.simulator}"
            if ver.bit_exact
            else "verification FAILED"
        )
    res = r.resources or Resources()
    if res.luts is not None:
        verdict = f": {res.verdict.verdict}" if res.verdict is not None else ""
        parts.append(f"{res.luts} LUTs{_estimated(res)} on {res.device}{verdict}")
    if r.seconds is not None:
        parts.append(f"{r.seconds:.1f} s")
    parts.append(f"-> {r.outdir}")
    return "; ".join(parts)
