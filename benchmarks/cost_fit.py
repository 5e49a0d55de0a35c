"""The fit and the tables of ``benchmarks/cost_model.py``: non-negative least squares of each
family's LUT coefficients on the out-of-context designs, leave-one-out errors, the held-out
self-test tops, and the Markdown report.

Targets per family (what fills the device): ECP5, TRELLIS_COMB cells after
``nextpnr-ecp5 --pack-only`` (placement keeps them, see the placed checks); iCE40, ICESTORM_LC
logic cells after ``nextpnr-ice40 --pack-only`` (a cell holds a LUT4, a carry and a
flip-flop: what the UP5K's 5,280 count); xc7, yosys ``synth_xilinx`` LUTs (no open placer,
Vivado not run).  Errors are ``(model - measured) / measured``, relative, and the fit
minimizes them relatively (each row divided by its measured value), so small layers weigh as
much as big ones.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import nnls

#: The fitted coefficients, in :class:`nnlcc.ir.family.CostModel`'s names, and the feature
#: (of :class:`nnlcc.ir.cost.CostFeatures`) each multiplies.
FITTED = ("lut_per_chain_lut", "lut_per_chain", "lut_per_mux_bit", "lut_per_ff")

TARGET = {
    "ecp5": ("pack_ecp5", "nextpnr-ecp5 TRELLIS_COMB (packed)"),
    "ice40": ("pack_ice40", "nextpnr-ice40 ICESTORM_LC (packed logic cells)"),
    "xc7": ("yosys_xc7", "yosys synth_xilinx LUTs"),
}
FF_TARGET = {
    "ecp5": ("pack_ecp5", "nextpnr-ecp5 TRELLIS_FF"),
    "ice40": ("yosys_ice40", "yosys synth_ice40 flip-flops"),
    "xc7": ("yosys_xc7", "yosys synth_xilinx flip-flops"),
}


#: Each self-test top and the same network out of context: their difference is what the
#: wrapper (ROMs, feeder, checker, UART) costs, measured.
WRAPPER_PAIRS = {
    "mlp_low_selftest_ecp5": "mlp_net_low",
    "cnn_selftest_ecp5": "cnn_net",
    "cnn_selftest_ice40": "cnn_net",
}


def columns(f: dict[str, int]) -> tuple[list[float], float]:
    """The fitted features of a design's :class:`CostFeatures` ``f`` (as :data:`FITTED`), and
    the LUTs the model counts without a fitted coefficient (2:1 select muxes, SRLs)."""
    x = [
        f["adder_chain_luts"] + f["compare_chain_luts"],
        f["adder_chains"] + f["compare_chains"],
        f["mux_bits"],
        f["ffs_synth"],
    ]
    return [float(v) for v in x], float(f.get("select_mux_bits", 0) + f["srl_luts"])


def _measured(row: dict[str, Any], key: str, field: str) -> float | None:
    got = row["tools"].get(key) or {}
    v = got.get(field)
    return float(v) if isinstance(v, int | float) and v > 0 else None


def fit(xs: np.ndarray, fixed: np.ndarray, y: np.ndarray) -> np.ndarray:
    """NNLS of ``y - fixed ≈ xs @ k`` in relative terms (rows divided by ``y``)."""
    w = 1.0 / y
    k, _ = nnls(xs * w[:, None], (y - fixed) * w)
    return np.asarray(k)


def _stats(errs: list[float]) -> dict[str, float]:
    a = np.abs(np.asarray(errs)) if errs else np.zeros(1)
    return {"mean_pct": round(float(a.mean()), 2), "max_pct": round(float(a.max()), 2),
            "n": len(errs)}  # fmt: skip


def analyse(rows: list[dict[str, Any]], fams: list[str]) -> dict[str, Any]:
    """Per family: the coefficients fitted on every out-of-context design, each design's
    in-sample and leave-one-out LUT error, the FF error (not fitted: out of sample), and the
    self-test tops' error (held out, with the wrapper's estimate)."""
    out: dict[str, Any] = {}
    for fam in fams:
        key, against = TARGET[fam]
        fit_rows = [
            r for r in rows
            if r["group"] != "selftest" and _measured(r, key, "luts") is not None
        ]  # fmt: skip
        if len(fit_rows) < len(FITTED) + 2:
            continue
        cols = [columns(r["features"][fam]) for r in fit_rows]
        xs = np.array([c[0] for c in cols])
        fixed = np.array([c[1] for c in cols])
        y = np.array([_measured(r, key, "luts") for r in fit_rows], dtype=float)
        k = fit(xs, fixed, y)
        pred = xs @ k + fixed
        loo = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            ki = fit(xs[keep], fixed[keep], y[keep])
            loo.append(float(xs[i] @ ki + fixed[i]))
        designs = []
        for i, r in enumerate(fit_rows):
            fkey, _ = FF_TARGET[fam]
            ff_meas = _measured(r, fkey, "ffs")
            ff_model = r["model"][fam]["ffs"]
            designs.append({
                "tag": r["tag"], "group": r["group"], "measured_luts": int(y[i]),
                "model_luts": round(float(pred[i])), "loo_luts": round(loo[i]),
                "err_pct": round(100 * (pred[i] - y[i]) / y[i], 2),
                "loo_err_pct": round(100 * (loo[i] - y[i]) / y[i], 2),
                "measured_ffs": None if ff_meas is None else int(ff_meas),
                "model_ffs": ff_model,
                "ff_err_pct": None if not ff_meas else round(100 * (ff_model - ff_meas) / ff_meas, 2),
            })  # fmt: skip
        held = []
        for r in rows:
            if r["group"] != "selftest" or r["tools"].get("family") != fam:
                continue
            meas_l = _measured(r, f"pack_{fam}", "luts") or _measured(r, f"yosys_{fam}", "luts")
            meas_f = _measured(r, f"pack_{fam}", "ffs") or _measured(r, f"yosys_{fam}", "ffs")
            xc, fx = columns(r["features"][fam])
            wrap = r["model"][fam].get("wrapper") or {}
            net_l = float(np.asarray(xc) @ k + fx)
            m_l = net_l + (wrap.get("luts") or 0)
            m_f = r["model"][fam]["ffs"] + (wrap.get("ffs") or 0)
            pair = next((x for x in rows if x["tag"] == WRAPPER_PAIRS.get(r["tag"])), None)
            net_meas = _measured(pair, f"pack_{fam}", "luts") if pair else None
            net_ff = _measured(pair, f"pack_{fam}", "ffs") if pair else None
            if fam == "ice40" and pair:
                net_ff = _measured(pair, "yosys_ice40", "ffs")
            held.append({
                "wrapper_measured_luts": None if not (net_meas and meas_l) else meas_l - net_meas,
                "wrapper_measured_ffs": None if not (net_ff and meas_f) else meas_f - net_ff,
                "tag": r["tag"], "measured_luts": meas_l, "model_luts": round(m_l),
                "network_luts": round(net_l), "wrapper": wrap,
                "err_pct": None if not meas_l else round(100 * (m_l - meas_l) / meas_l, 2),
                "measured_ffs": meas_f, "model_ffs": m_f,
                "ff_err_pct": None if not meas_f else round(100 * (m_f - meas_f) / meas_f, 2),
                "measured_bram": _measured(r, f"pack_{fam}", "bram"),
                "model_bram": r["model"][fam]["bram"] + (wrap.get("bram") or 0),
            })  # fmt: skip
        ffe = [d["ff_err_pct"] for d in designs if d["ff_err_pct"] is not None]
        out[fam] = {
            "against": against,
            "ff_against": FF_TARGET[fam][1],
            "coefficients": {n: round(float(v), 4) for n, v in zip(FITTED, k, strict=True)},
            "in_sample_luts": _stats([d["err_pct"] for d in designs]),
            "loo_luts": _stats([d["loo_err_pct"] for d in designs]),
            "ffs": _stats(ffe),
            "held_out_luts": _stats([h["err_pct"] for h in held if h["err_pct"] is not None]),
            "held_out_ffs": _stats([h["ff_err_pct"] for h in held if h["ff_err_pct"] is not None]),
            "designs": designs,
            "selftests": held,
        }  # fmt: skip
    return out


def _pct(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.1f}"


def markdown(rows: list[dict[str, Any]], stats: dict[str, Any], cond: dict[str, Any]) -> str:
    by_tag = {r["tag"]: r for r in rows}
    lines = [
        "# Cost model calibration (`nnlcc.ir.cost`)",
        "",
        f"{cond['date']}, {cond['machine']}; {cond['yosys']}; {cond['nextpnr-ecp5']};"
        f" {cond['nextpnr-ice40']}. Whole run: {cond['run_seconds']:.0f} s.",
        "",
        "Designs are what `nnlcc compile` emits today (`benchmarks/cost_model.py`, `CASES`):"
        " auto with `truncate=auto`, LCC, CSD with shared subexpressions, alkaid, circulant,"
        " max pools (MAX nodes), `schedule{every=1..3}`; layers and whole networks out of"
        " context, and self-test tops in context on their boards (held out: no fit sees"
        " them). Error = (model - measured) / measured. The LUT coefficients are fitted by"
        " non-negative least squares on relative error; **LOO** is each design predicted by"
        " coefficients fitted on all the others (the figure the family table stores and"
        " reports print). FFs have no fitted coefficient: their error is out of sample.",
        "",
    ]
    for fam, s in stats.items():
        lines += [
            f"## {fam}",
            "",
            f"LUTs against {s['against']}; FFs against {s['ff_against']}."
            + (" No open place-and-route exists for 7-series and Vivado was not run: the xc7"
               " figures are yosys's, not Vivado's." if fam == "xc7" else ""),
            "",
            f"Coefficients: {s['coefficients']}.",
            "",
            f"LUTs, leave-one-out: mean |error| {s['loo_luts']['mean_pct']} %, max"
            f" {s['loo_luts']['max_pct']} % over {s['loo_luts']['n']} designs (in sample: mean"
            f" {s['in_sample_luts']['mean_pct']} %, max {s['in_sample_luts']['max_pct']} %)."
            f" FFs: mean |error| {s['ffs']['mean_pct']} %, max {s['ffs']['max_pct']} %"
            f" over {s['ffs']['n']} designs.",
            "",
            "| design | kind | pipeline | adders | measured LUTs | model LUTs | error % | LOO"
            " error % | measured FFs | model FFs | FF error % |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]  # fmt: skip
        for d in s["designs"]:
            r = by_tag[d["tag"]]
            lines.append(
                f"| {d['tag']} | {d['group']} | `{r['pipeline']}` | {r['adders']} |"
                f" {d['measured_luts']} | {d['model_luts']} | {_pct(d['err_pct'])} |"
                f" {_pct(d['loo_err_pct'])} | {d['measured_ffs'] or ''} | {d['model_ffs']} |"
                f" {_pct(d['ff_err_pct'])} |"
            )
        if s["selftests"]:
            lines += [
                "",
                "Self-test tops in context (held out; model = network by the coefficients"
                " above + the wrapper's estimate, `nnlcc.boards.headroom`):",
                "",
                "| design | measured LUTs | model LUTs (network + wrapper) | error % |"
                " measured FFs | model FFs | FF error % | block RAM measured / model |"
                " wrapper measured LUTs / FFs (top - network) | wrapper model LUTs / FFs |",
                "|---|---:|---:|---:|---:|---:|---:|---|---|---|",
            ]  # fmt: skip
            for h in s["selftests"]:
                w = h["wrapper"]
                lines.append(
                    f"| {h['tag']} | {h['measured_luts']:.0f} | {h['model_luts']}"
                    f" ({h['network_luts']} + {w.get('luts', 0)}) | {_pct(h['err_pct'])} |"
                    f" {h['measured_ffs'] or 0:.0f} | {h['model_ffs']} | {_pct(h['ff_err_pct'])}"
                    f" | {h['measured_bram'] or 0:.0f} / {h['model_bram']} |"
                    f" {h['wrapper_measured_luts']} / {h['wrapper_measured_ffs']} |"
                    f" {w.get('luts')} / {w.get('ffs')} |"
                )
        lines.append("")
    placed = [
        (r["tag"], k, v) for r in rows for k, v in r["tools"].items()
        if k.startswith(("place_", "harness_place")) and isinstance(v, dict)
    ]  # fmt: skip
    if placed:
        lines += ["## Placement keeps the packed counts", "",
                  "| design | run | LUTs / cells | FFs | packed LUTs / cells |", "|---|---|---:|---:|---:|"]  # fmt: skip
        for tag, k, v in placed:
            pk = k.replace("place", "pack")
            packed = (by_tag[tag]["tools"].get(pk) or {}).get("luts")
            lines.append(f"| {tag} | {k} | {v.get('luts')} | {v.get('ffs')} | {packed} |")
        lines.append("")
    return "\n".join(lines) + "\n"
