"""Calibrate :mod:`nnlcc.ir.cost` against yosys and nextpnr on single layers, and report its error.

Usage::

    nice .venv/bin/python benchmarks/cost_model.py [--families ecp5,ice40,xc7] [--quick]
        [-o build/bench_cost_model] [--results benchmarks/results/<date>]

Every layer is a one-layer network (random dense matrices of several shapes, and the two
digits MLP layers) coded with one pipeline, written by :mod:`nnlcc.hdl.flat_verilog` and
synthesized alone with the project's own yosys scripts (:func:`nnlcc.boards.build.synth_script`;
ports are not I/O pads).  On ECP5 the netlist is then packed by ``nextpnr-ecp5 --out-of-context
--pack-only`` on an LFE5U-85F: the TRELLIS_COMB count after packing is the placed LUT count
(placement adds no cells; checked on a 16x16 CSD layer: 6,172 TRELLIS_COMB packed and placed).
Out of context means no I/O buffers and no global promotion: only the layer's logic is counted.

The model's coefficients are fitted by non-negative least squares per family, against placed
LUTs for ECP5 and yosys LUTs for the others; the error is reported for the fitted coefficients,
for the ones stored in the family table (:data:`nnlcc.ir.family.FAMILIES`, each family's
``cost``), and leave-one-out (each layer predicted
by coefficients fitted on the others: the honest out-of-sample figure).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import nnls

import nnlcc.passes.quantize  # noqa: F401  (registers the passes)
from nnlcc.boards.build import synth_script
from nnlcc.boards.toolchain import count_cells, parse_nextpnr, read_yosys_stat, run_tool
from nnlcc.compile_layer import one_layer_network
from nnlcc.driver import load_data, load_model, run_passes
from nnlcc.hdl.flat_verilog import emit_flat_verilog
from nnlcc.ir.cost import CostFeatures, estimate, features
from nnlcc.ir.family import ECP5, FAMILIES, CostModel
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.passes import PassContext, parse_pipeline, resolve_pipeline

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits_mlp.onnx"

#: (label, rows, cols, pipeline); "digits:<layer>" rows come from the digits MLP.
LAYERS: list[tuple[str, int, int, str]] = [
    ("d8x16", 8, 16, "quantize,csd{cse=false}"),
    ("d16x16", 16, 16, "quantize,csd"),
    ("d16x32", 16, 32, "quantize,lcc"),
    ("d32x32", 32, 32, "quantize,csd{weight_bits=5,cse=false}"),
    ("d32x32", 32, 32, "quantize,csd{weight_bits=5}"),
    ("d32x32", 32, 32, "quantize,share{clusters=20},lcc"),
    ("d24x48", 24, 48, "quantize{act_bits=6},csd{weight_bits=4}"),
    ("conv8x72", 8, 72, "quantize,csd{weight_bits=6}"),
    ("d64x64", 64, 64, "quantize{act_bits=6},share{clusters=24},lcc{sqnr_db=25}"),
    ("d64x64", 64, 64, "quantize{act_bits=6},csd{weight_bits=3}"),
    ("digits:fc1", 0, 0, "quantize,lcc"),
    ("digits:fc2", 0, 0, "quantize,csd"),
]
QUICK = {"d8x16", "d16x16", "d16x32", "conv8x72", "digits:fc2"}

PNR_ARGS = ["--85k", "--package", "CABGA381", "--out-of-context", "--pack-only"]


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def random_layer(rows: int, cols: int, pipeline: str, seed: int) -> LoweredNetwork:
    rng = np.random.default_rng(seed)
    layer = DenseLayer(
        name="fc",
        weight=rng.normal(0.0, 1.0 / np.sqrt(cols), size=(rows, cols)),
        bias=rng.normal(0.0, 0.1, size=rows),
        relu=True,
    )
    graph = MatrixGraph("rand", "x", cols, "y", [layer])
    ctx = PassContext(rng.normal(0.0, 1.0, size=(512, cols)), ECP5)
    for p in parse_pipeline(pipeline):
        p.apply(graph, ctx)
    return one_layer_network(graph, layer)


def digits_layer(name: str, pipeline: str) -> LoweredNetwork:
    graph = load_model(DIGITS)
    data = load_data(graph, DIGITS, None, 0)
    run_passes(graph, resolve_pipeline(pipeline), data)
    layer = next(m for m in graph.matrix_layers() if m.name == name)
    return one_layer_network(graph, layer)


@dataclass
class Measured:
    label: str
    coding: str
    shape: tuple[int, int]
    adders: int
    nodes: int
    features: dict[str, CostFeatures]
    model_ffs: int
    yosys: dict[str, dict[str, Any]]
    placed_luts: int | None
    placed_ffs: int | None
    seconds: dict[str, float]


def measure(label: str, pipeline: str, net: LoweredNetwork, fams: list[str], out: Path) -> Measured:
    out.mkdir(parents=True, exist_ok=True)
    g = net.layers[0].graph
    emit_flat_verilog(net, out / "new.v", name="layer")
    new = (out / "new.v").read_text()
    old = (out / "layer.v").read_text() if (out / "layer.v").is_file() else None
    (out / "new.v").replace(out / "layer.v")
    if old != new:  # tool results of an older Verilog are stale
        for stale in [*out.glob("stat_*.json"), out / "pack.json", out / "seconds.json"]:
            stale.unlink(missing_ok=True)
    yosys: dict[str, dict[str, Any]] = {}
    times = out / "seconds.json"
    secs: dict[str, float] = json.loads(times.read_text()) if times.is_file() else {}
    placed: tuple[int | None, int | None] = (None, None)
    for fam in fams:
        if (out / f"stat_{fam}.json").is_file() and (
            fam != "ecp5" or (out / "pack.json").is_file()
        ):
            say(f"  {label} {fam}: same Verilog as the last run, reusing its tool results")
            yosys[fam] = {**count_cells(FAMILIES[fam], read_yosys_stat(out / f"stat_{fam}.json"))}
            yosys[fam]["cells"] = read_yosys_stat(out / f"stat_{fam}.json")
            if fam == "ecp5":
                res = parse_nextpnr("", json.loads((out / "pack.json").read_text()))
                placed = (res.used(ECP5, "luts"), res.used(ECP5, "ffs"))
            continue
        script = synth_script(FAMILIES[fam], "layer.v", "layer", f"stat_{fam}.json")
        if fam == "ecp5":
            script += "write_json layer_ecp5.json\n"
        (out / f"synth_{fam}.ys").write_text(script)
        run = run_tool(
            "yosys",
            ["-q", "-l", f"synth_{fam}.log", f"synth_{fam}.ys"],
            cwd=out,
            step=f"synth_{fam}",
        )
        secs[f"yosys_{fam}"] = round(run.seconds, 1)
        cells = read_yosys_stat(out / f"stat_{fam}.json")
        yosys[fam] = {**count_cells(FAMILIES[fam], cells), "cells": cells}
        say(
            f"  {label} [{pipeline}] yosys {fam}: {yosys[fam]['luts']} LUTs, {yosys[fam]['ffs']} FFs ({run.seconds:.0f} s)"
        )
        if fam == "ecp5":
            args = [*PNR_ARGS, "--json", "layer_ecp5.json", "--report", "pack.json", "--log", "pack.log", "--quiet"]  # fmt: skip
            pnr = run_tool("nextpnr-ecp5", args, cwd=out, step="pack_ecp5")
            secs["nextpnr_ecp5"] = round(pnr.seconds, 1)
            res = parse_nextpnr(
                (out / "pack.log").read_text(), json.loads((out / "pack.json").read_text())
            )
            placed = (res.used(ECP5, "luts"), res.used(ECP5, "ffs"))
            say(f"  {label} nextpnr-ecp5: {placed[0]} TRELLIS_COMB, {placed[1]} TRELLIS_FF")
    times.write_text(json.dumps(secs) + "\n")
    return Measured(
        label=label,
        coding=pipeline,
        shape=(len(g.outputs), g.n_inputs),
        adders=g.adders,
        nodes=len(g.nodes),
        features={name: features(g, f) for name, f in FAMILIES.items()},
        model_ffs=estimate(g, ECP5).ffs,
        yosys=yosys,
        placed_luts=placed[0],
        placed_ffs=placed[1],
        seconds=secs,
    )


def design(f: CostFeatures) -> list[float]:
    """The model is linear in these: chain LUTs, chains, multiplexer bits."""
    return [float(f.chain_luts), float(f.chains), float(f.mux_bits)]


def predict(fam: CostModel, f: CostFeatures) -> float:
    coef = [fam.lut_per_chain_lut, fam.lut_per_chain, fam.lut_per_mux_bit]
    return float(np.dot(coef, design(f))) + f.srl_luts + fam.lut_per_select_bit * f.select_mux_bits


def with_coef(fam: CostModel, coef: np.ndarray) -> CostModel:
    return replace(
        fam,
        lut_per_chain_lut=float(coef[0]),
        lut_per_chain=float(coef[1]),
        lut_per_mux_bit=float(coef[2]),
    )


def fit(fam: CostModel, feats: list[CostFeatures], target: list[int]) -> CostModel:
    x = np.array([design(f) for f in feats])
    y = np.array(target, dtype=float) - np.array(
        [f.srl_luts + fam.lut_per_select_bit * f.select_mux_bits for f in feats]
    )
    coef, _ = nnls(x, y)
    return with_coef(fam, coef)


def errors(fam: CostModel, feats: list[CostFeatures], target: list[int]) -> list[float]:
    return [100.0 * (predict(fam, f) - t) / t for f, t in zip(feats, target, strict=True)]


def loo_errors(fam: CostModel, feats: list[CostFeatures], target: list[int]) -> list[float]:
    out = []
    for i in range(len(feats)):
        rest = [j for j in range(len(feats)) if j != i]
        fi = fit(fam, [feats[j] for j in rest], [target[j] for j in rest])
        out.append(100.0 * (predict(fi, feats[i]) - target[i]) / target[i])
    return out


def summary(errs: list[float]) -> dict[str, float]:
    a = np.abs(errs)
    return {"mean_abs_pct": round(float(a.mean()), 2), "max_abs_pct": round(float(a.max()), 2)}


def analyse(rows: list[Measured], fams: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fam in fams:
        base = FAMILIES[fam].cost
        feats = [r.features[fam] for r in rows]
        targets = {"yosys": [r.yosys[fam]["luts"] for r in rows]}
        if fam == "ecp5":
            targets["placed"] = [r.placed_luts or 0 for r in rows]
        res: dict[str, Any] = {}
        for what, tgt in targets.items():
            fitted = fit(base, feats, tgt)
            res[what] = {
                "coefficients": {
                    "lut_per_chain_lut": round(fitted.lut_per_chain_lut, 4),
                    "lut_per_chain": round(fitted.lut_per_chain, 4),
                    "lut_per_mux_bit": round(fitted.lut_per_mux_bit, 4),
                },
                "fitted_pct": [round(e, 2) for e in errors(fitted, feats, tgt)],
                "stored_pct": [round(e, 2) for e in errors(base, feats, tgt)],
                "loo_pct": [round(e, 2) for e in loo_errors(base, feats, tgt)],
            }
            for k in ("fitted", "stored", "loo"):
                res[what][k] = summary(res[what][f"{k}_pct"])
        ffs_model = [r.features[fam].ffs_synth for r in rows]
        ffs_yosys = [r.yosys[fam]["ffs"] for r in rows]
        res["ffs_synth_pct"] = [
            round(100.0 * (m - y) / y, 2) for m, y in zip(ffs_model, ffs_yosys, strict=True)
        ]
        res["ffs"] = summary(res["ffs_synth_pct"])
        out[fam] = res
    return out


def markdown(rows: list[Measured], stats: dict[str, Any], cond: dict[str, Any]) -> str:
    lines = [
        "# Cost model calibration (`nnlcc.ir.cost`)",
        "",
        f"{cond['date']}, {cond['machine']}; {cond['yosys']}; {cond['nextpnr']}.",
        "Layers written by `hdl/flat_verilog.py`, synthesized alone (`synth_<family>` of "
        "`boards/build.py`); ECP5 placed LUTs = TRELLIS_COMB after `nextpnr-ecp5 --85k "
        "--out-of-context --pack-only`. Model LUTs use the coefficients stored in "
        "`compiler/ir/family.py`; error = (model - measured) / measured.",
        "What the model counts: one carry chain per adder over the result bits that need one "
        "(low bits only one operand drives are wires; bits nobody reads are cut), a comparator "
        "chain per clamp bound the operand can cross (a ReLU at 0 is a sign test) and a "
        "multiplexer bit per clamped output bit; structurally equal nodes once (yosys merges "
        "them). ECP5 rounds chains to whole CCU2Cs and adds ~4 LUTs per chain: nextpnr inserts "
        "two CCU2C (carry feed-in and feed-out) per chain that yosys does not count. "
        "Known limits: iCE40 and xc7 are fitted to yosys only (no placement run); the xc7 "
        "flip-flop model (delay runs of 3+ copies between read taps become SRLs) keeps more "
        "flip-flops than synth_xilinx does.",
        "",
    ]
    for fam in stats:
        st = stats[fam]
        main = "placed" if fam == "ecp5" else "yosys"
        lines += [f"## {fam}", ""]
        head = "| layer | coding | adders | model LUTs | yosys LUTs |"
        sep = "|---|---|---:|---:|---:|"
        if fam == "ecp5":
            head += " placed LUTs |"
            sep += "---:|"
        head += f" error % (vs {main}) | LOO error % | model FFs (declared) | model FFs (synth) | yosys FFs |"
        sep += "---:|---:|---:|---:|---:|"
        lines += [head, sep]
        for i, r in enumerate(rows):
            model = round(predict(FAMILIES[fam].cost, r.features[fam]))
            cells = f"| {r.label} {r.shape[0]}x{r.shape[1]} | `{r.coding}` | {r.adders} | {model} | {r.yosys[fam]['luts']} |"
            if fam == "ecp5":
                cells += f" {r.placed_luts} |"
            cells += (
                f" {st[main]['stored_pct'][i]:+.1f} | {st[main]['loo_pct'][i]:+.1f} |"
                f" {r.model_ffs} | {r.features[fam].ffs_synth} | {r.yosys[fam]['ffs']} |"
            )
            lines.append(cells)
        for what in ("placed", "yosys") if fam == "ecp5" else ("yosys",):
            s = st[what]
            lines.append("")
            lines.append(
                f"vs {what} LUTs: stored coefficients mean |error| {s['stored']['mean_abs_pct']} %, "
                f"max {s['stored']['max_abs_pct']} %; refitted {s['coefficients']} gives mean "
                f"{s['fitted']['mean_abs_pct']} %, max {s['fitted']['max_abs_pct']} %; "
                f"leave-one-out mean {s['loo']['mean_abs_pct']} %, max {s['loo']['max_abs_pct']} %."
            )
        lines.append(
            f"FFs after synthesis (model `ffs_synth` vs yosys): mean |error| "
            f"{st['ffs']['mean_abs_pct']} %, max {st['ffs']['max_abs_pct']} %."
        )
        lines.append("")
    return "\n".join(lines) + "\n"


def conditions(workdir: Path) -> dict[str, Any]:
    def version(tool: str) -> str:
        try:
            r = run_tool(tool, ["--version"], cwd=workdir, step=f"version_{tool}", check=False)
        except Exception as e:  # a missing tool is reported, not fatal here
            return f"{tool}: {e}"
        return r.output.strip().splitlines()[-1] if r.output.strip() else tool

    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} {platform.processor() or ''} ({platform.system()}, shared 2-core VM)".replace(
            "  ", " "
        ),
        "python": platform.python_version(),
        "yosys": version("yosys"),
        "nextpnr": version(ECP5.toolchain.pnr or ""),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default="ecp5", help="comma list of ecp5, ice40, xc7")
    ap.add_argument("--quick", action="store_true", help=f"only {sorted(QUICK)}")
    ap.add_argument("-o", "--outdir", type=Path, default=Path("build") / "bench_cost_model")
    ap.add_argument("--results", type=Path, default=None, help="write cost_model.{json,md} here")
    args = ap.parse_args(argv)
    fams = [f for f in args.families.split(",") if f]
    t0 = time.perf_counter()
    rows: list[Measured] = []
    for i, (label, r, c, pipeline) in enumerate(LAYERS):
        if args.quick and label not in QUICK:
            continue
        say(f"[{i + 1}/{len(LAYERS)}] {label} {pipeline} ({time.perf_counter() - t0:.0f} s)")
        if label.startswith("digits:"):
            net = digits_layer(label.split(":")[1], pipeline)
        else:
            net = random_layer(r, c, pipeline, seed=i)
        tag = f"{i:02d}_{label.replace(':', '_')}"
        rows.append(measure(label, pipeline, net, fams, args.outdir / tag))
    stats = analyse(rows, fams)
    cond = {
        **conditions(args.outdir),
        "families": fams,
        "run_seconds": round(time.perf_counter() - t0, 1),
        "note": "tool results of a layer whose Verilog is unchanged are reused from the last run;"
        " per-layer tool seconds (as first measured, niced, on a shared machine) are in layers[].seconds",
    }
    md = markdown(rows, stats, cond)
    print(md)
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        payload = {
            "conditions": cond,
            "stats": stats,
            "layers": [
                {
                    **{k: v for k, v in asdict(r).items() if k not in ("features", "yosys")},
                    "features": {f: asdict(v) for f, v in r.features.items()},
                    "yosys": {f: {k: v for k, v in d.items()} for f, d in r.yosys.items()},
                }
                for r in rows
            ],
        }
        (args.results / "cost_model.json").write_text(json.dumps(payload, indent=2) + "\n")
        (args.results / "cost_model.md").write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
