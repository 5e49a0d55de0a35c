"""Every coder against the strongest baselines, side by side on one run (issue 20).

For each matrix, every candidate codes the same one-layer network (8-bit inputs quantized on
Gaussian calibration data, ``sqnr_db`` = 40 after truncation, the coding target 0.41 dB above
it, as ``auto`` does), its partial sums are truncated, the layer is lowered to its adder graph
(requantization included) and the calibrated cost model prices it on ECP5 (estimated LUTs =
placed TRELLIS_COMB, and flip-flops).  Candidates:

* ``csd+cse``: CSD at the fewest weight bits reaching the target, with shared subexpressions
  (``auto``'s CSD candidate);
* ``alkaid``: alkaid's CMVM solution at the same bits (skipped above ``--alkaid-max`` entries:
  its time grows fast, 128x128 takes about 100 s here);
* ``lcc{transpose=no|yes}``: today's LCC (the addition objective), both orientations;
* the new LCC-family coders (see :func:`new_coders`).

The table gives, per matrix, each candidate's estimated LUTs, and the ratio of the best
LCC-family design to the best baseline (CSD+CSE and alkaid).  Matrices above ``--full``
weights are first priced on samples, as ``auto`` prices them (:mod:`nnlcc.passes.sampled`;
marked "sampled"); up to ``--exact-max`` weights the baselines, today's LCC and the LCC design
the samples chose are then priced exactly, above it the samples stand.  ``--yosys`` also
synthesizes the matrices marked for it with ``yosys synth_ecp5`` (LUT4 + 2 per CCU2C, and FFs)
for the best baseline and the best LCC-family design.  Baseline results are cached in
``build/coders_cache`` (keyed by the matrix and the coder; ``--no-cache`` ignores it).

Usage::

    nice -n 10 .venv/bin/python benchmarks/coders.py [--only NAME,...] [--quick]
        [--yosys] [-o benchmarks/results/<date>]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnlcc.boards.build import synth_script
from nnlcc.boards.toolchain import count_cells, read_yosys_stat, run_tool
from nnlcc.errors import NnlccError
from nnlcc.hdl.flat_verilog import emit_flat_verilog
from nnlcc.ir.cost import estimate
from nnlcc.ir.family import ECP5
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.lower import lower_layer
from nnlcc.ir.lowered import LoweredLayer, LoweredNetwork
from nnlcc.ir.matrix import DenseLayer, FloatArray, MatrixCode, MatrixGraph, MatrixLayer
from nnlcc.ir.truncate import RESERVE_DB, budget_layer
from nnlcc.passes import PassContext, lowrank, parse_pipeline
from nnlcc.passes.alkaid import AlkaidCode, available
from nnlcc.passes.coder import CoderContext
from nnlcc.passes.coding import code_layer
from nnlcc.passes.csd import CsdCode, CsdCoder, weight_bits_for
from nnlcc.passes.lcc import Lcc, LccCode, LccOptions
from nnlcc.passes.lcc.coder import LccCoder
from nnlcc.passes.lcc.search import build_best
from nnlcc.passes.pricing import Pricing

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "coders_cache"
FAMILY = ECP5
SQNR_DB = 40.0

Builder = Callable[[FloatArray], MatrixCode]

#: The lowered layer of every design priced in this run (for ``--yosys``).
LOWERED: dict[tuple[int, str, int], LoweredLayer] = {}


# ---- matrices ---------------------------------------------------------------------------------
def _gauss(rows: int, cols: int, seed: int) -> FloatArray:
    return np.random.default_rng(seed).normal(size=(rows, cols)) / np.sqrt(cols)


def _laplace(rows: int, cols: int, seed: int) -> FloatArray:
    return np.random.default_rng(seed).laplace(size=(rows, cols)) / np.sqrt(2 * cols)


def _low_rank(rows: int, cols: int, rank: int, seed: int, noise: float = 0.05) -> FloatArray:
    """``U V`` (Gaussian factors) plus i.i.d. noise of ``noise`` times its RMS entry."""
    rng = np.random.default_rng(seed)
    low = rng.normal(size=(rows, rank)) @ rng.normal(size=(rank, cols))
    rms = float(np.sqrt(np.mean(low**2)))
    return (low + noise * rms * rng.normal(size=(rows, cols))) / (rms * np.sqrt(cols))


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], FloatArray]
    #: the issue's target for the best LCC-family design over the best baseline (None: none)
    target: float | None = None
    #: the baseline the target is against: "csd+cse" or "best" (CSD+CSE and alkaid)
    against: str = "best"
    yosys: bool = False
    quick: bool = False


CASES: list[Case] = [
    Case("gauss 16x64", lambda: _gauss(16, 64, 1), yosys=True, quick=True),
    Case("gauss 64x64", lambda: _gauss(64, 64, 2), yosys=True, quick=True),
    Case("laplace 64x64", lambda: _laplace(64, 64, 3), yosys=True, quick=True),
    Case("rank8+5% 64x64", lambda: _low_rank(64, 64, 8, 4), target=0.6, yosys=True, quick=True),
    Case("gauss 256x64", lambda: _gauss(256, 64, 5)),
    Case("gauss 64x256", lambda: _gauss(64, 256, 6)),
    Case("gauss 1024x16", lambda: _gauss(1024, 16, 7)),
    Case("gauss 128x128", lambda: _gauss(128, 128, 8), target=0.8),
    Case("laplace 128x128", lambda: _laplace(128, 128, 9), target=0.8),
    Case("gauss 256x128", lambda: _gauss(256, 128, 10), target=0.8),
    Case("laplace 128x256", lambda: _laplace(128, 256, 11), target=0.8),
    Case("rank16+5% 128x256", lambda: _low_rank(128, 256, 16, 12), target=0.6),
    Case("laplace 64x576", lambda: _laplace(64, 576, 13), against="csd+cse"),
    Case("laplace 256x2304", lambda: _laplace(256, 2304, 14), target=0.5, against="csd+cse"),
    Case("laplace 512x4608", lambda: _laplace(512, 4608, 15), target=0.5, against="csd+cse"),
]


# ---- one layer, coded and priced ----------------------------------------------------------------
def layer_for(w: FloatArray, seed: int = 0) -> MatrixLayer:
    """A one-layer network of ``w`` (no bias, no ReLU), quantized on Gaussian inputs."""
    rows, cols = w.shape
    layer = DenseLayer("fc", w, np.zeros(rows), relu=False)
    graph = MatrixGraph("m", "x", cols, "y", [layer])
    rng = np.random.default_rng(seed)
    ctx = PassContext(calibration=rng.normal(0.0, 1.0, size=(512, cols)), family=FAMILY)
    parse_pipeline("quantize")[0].apply(graph, ctx)
    return layer


def price(layer: MatrixLayer, build: Builder, target_db: float) -> dict[str, Any]:
    """Code ``layer`` with ``build``, truncate to ``target_db`` and price it (as ``auto``)."""
    t0 = time.perf_counter()
    try:
        code = code_layer(layer, build)
    except NnlccError as e:
        return {"failed": str(e)}
    t_code = time.perf_counter() - t0
    reached = sqnr_db(layer.weight, code.implemented())
    if reached < target_db + RESERVE_DB - 1e-6:
        return {"failed": f"target not reached: {reached:.2f} dB"}
    layer.code = code
    budget_layer(layer, "auto", target_db)
    assert layer.in_fmt is not None
    low = lower_layer(layer, layer.in_fmt)
    LOWERED[id(layer), code.name, len(low.graph.nodes)] = low
    cost = estimate(low.graph, FAMILY)
    f = cost.features
    facts = code.summary()
    return {
        "est_luts": cost.luts,
        "ffs": cost.ffs,
        "adders": low.graph.adders,
        "chain_bits": f.adder_chain_bits,
        "depth": low.graph.depth,
        "sqnr_db": round(
            low.truncation["sqnr_db"] if low.truncation else reached,
            3,
        ),
        "code_s": round(t_code, 2),
        "total_s": round(time.perf_counter() - t0, 2),
        "facts": {k: v for k, v in facts.items() if isinstance(v, int | float | str | bool)},
        "_low": (id(layer), code.name, len(low.graph.nodes)),
    }


def baselines(layer: MatrixLayer, target_db: float, alkaid_max: int) -> dict[str, Builder | str]:
    coding = target_db + RESERVE_DB
    bits = weight_bits_for(layer.weight, coding)
    out: dict[str, Builder | str] = {}
    if bits is None:
        return {"csd+cse": "no weight width reaches the target"}
    out["csd+cse"] = lambda m: CsdCode.from_weights(m, bits, cse=True)
    if not available():
        out["alkaid"] = "alkaid not installed"
    elif layer.weight.size > alkaid_max:
        out["alkaid"] = f"skipped: {layer.weight.size} entries > --alkaid-max={alkaid_max}"
    else:
        assert layer.in_fmt is not None
        span = (layer.in_fmt.lo, layer.in_fmt.hi)
        out["alkaid"] = lambda m: AlkaidCode.build(m, bits, span)
    return out


def lcc_family(layer: MatrixLayer, target_db: float) -> dict[str, Builder]:
    """Today's LCC (both orientations) and the new LCC-family coders."""
    out: dict[str, Builder] = {
        "lcc{transpose=no}": Lcc(sqnr_db=target_db, transpose="no").build,
        "lcc{transpose=yes}": Lcc(sqnr_db=target_db, transpose="yes").build,
    }
    out.update(new_coders(layer, target_db))
    return out


def new_coders(layer: MatrixLayer, target_db: float) -> dict[str, Builder]:
    """The cost-driven LCC search and the low-rank coder (coding SQNR as auto's)."""
    assert layer.in_fmt is not None
    pricing = Pricing.for_layer(layer, FAMILY)
    coding = target_db + RESERVE_DB
    return {
        "lcc{objective=luts}": lambda m: build_best(
            m, LccOptions(sqnr_db=coding), pricing, LccCode.build, target_db
        ),
        "lowrank": lambda m: lowrank.build(m, coding, pricing),
    }


def _key(w: FloatArray, label: str, target_db: float) -> str:
    h = hashlib.sha256(np.ascontiguousarray(w).tobytes())
    h.update(f"{label}|{target_db}|{FAMILY.name}".encode())
    return h.hexdigest()[:24]


def sampled_prices(layer: MatrixLayer, target_db: float) -> tuple[dict[str, Any], Builder | None]:
    """Every candidate of a big layer priced on samples, as ``auto`` does (and the builder of
    the cheapest LCC design, for its exact price)."""
    w = layer.weight
    ctx = CoderContext(
        sqnr_db=target_db,
        truncate="auto",
        coding_db=target_db + RESERVE_DB,
        matrix=w,
        priced=False,
        pricing=Pricing.for_layer(layer, FAMILY),
    )
    out: dict[str, Any] = {}
    lcc: tuple[int, Builder] | None = None
    for d in [d for c in (CsdCoder(), LccCoder()) for d in c.candidates(layer, ctx)]:
        label = "csd+cse" if d.label.startswith("csd") else d.label
        assert d.sample is not None
        try:
            cost = d.sample(w)
        except NnlccError as e:
            out[f"{label} (sampled)"] = {"failed": str(e)}
            continue
        why = d.refuse(cost.code) if d.refuse is not None else None
        if why is not None:
            out[f"{label} (sampled)"] = {"failed": why}
            continue
        share = round(cost.share, 4)
        out[f"{label} (sampled)"] = {"est_luts": cost.luts, "adders": cost.adders, "sampled": share}
        if label.startswith("lcc") and (lcc is None or cost.luts < lcc[0]):
            lcc = (cost.luts, d.build)
    return out, None if lcc is None else lcc[1]


def run_case(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    w = case.make()
    layer = layer_for(w)
    out: dict[str, Any] = {"name": case.name, "shape": list(w.shape), "candidates": {}}
    cands: dict[str, tuple[Builder | str, bool]] = {
        k: (v, True) for k, v in baselines(layer, args.sqnr, args.alkaid_max).items()
    }
    big = w.size > args.full
    if big:
        t0 = time.perf_counter()
        sampled, best_lcc = sampled_prices(layer, args.sqnr)
        out["candidates"].update(sampled)
        out["sampled_s"] = round(time.perf_counter() - t0, 1)
        for label, res in sampled.items():
            say(f"  {case.name:20s} {label:40s} " + _short(res))
        if w.size > args.exact_max:  # exact pricing would take hours: the samples stand
            _ratios(out, case)
            return out
        cands = {k: v for k, v in cands.items() if k == "csd+cse"}
        cands["lcc{transpose=no}"] = (Lcc(sqnr_db=args.sqnr, transpose="no").build, False)
        cands["lcc{transpose=yes}"] = (Lcc(sqnr_db=args.sqnr, transpose="yes").build, False)
        if best_lcc is not None:
            cands["lcc{objective=luts}"] = (best_lcc, False)
    else:
        cands.update({k: (v, False) for k, v in lcc_family(layer, args.sqnr).items()})
    if args.coders:
        cands = {k: v for k, v in cands.items() if any(c in k for c in args.coders)}
    for label, (build, cacheable) in cands.items():
        if isinstance(build, str):
            out["candidates"][label] = {"failed": build}
            continue
        path = CACHE / f"{_key(w, label, args.sqnr)}.json"
        use_cache = not args.no_cache and not (args.yosys and case.yosys)
        if cacheable and use_cache and path.is_file():
            res = json.loads(path.read_text())
        else:
            res = price(layer, build, args.sqnr)
            if cacheable and "failed" not in res:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(res))
        out["candidates"][label] = res
        say(f"  {case.name:20s} {label:28s} " + _short(res))
    _ratios(out, case)
    if args.yosys and case.yosys:
        for key in {out["baseline"], out["lcc_family"]} - {None}:
            res = out["candidates"][key]
            low = LOWERED.get(tuple(res.get("_low", ())))  # type: ignore[arg-type]
            if low is None:
                res["yosys"] = {"note": "cached result: rerun with --no-cache to synthesize"}
                continue
            res["yosys"] = synth(low, args.build / f"{case.name.replace(' ', '_')}_{_safe(key)}")
            say(f"  {case.name:20s} {key:28s} yosys synth_ecp5: {res['yosys']}")
    for res in out["candidates"].values():
        res.pop("_low", None)
    return out


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in label)


def synth(low: LoweredLayer, out: Path) -> dict[str, Any]:
    """``yosys synth_ecp5`` of the lowered layer (flat Verilog): LUTs (LUT4 + 2 per CCU2C)
    and flip-flops, with the cost model's yosys-equivalent LUTs (no per-chain overhead, which
    nextpnr adds) and flip-flops for comparison."""
    out.mkdir(parents=True, exist_ok=True)
    net = LoweredNetwork(
        name="layer", input_fmt=low.in_fmt, layers=[low], input_shape=(low.graph.n_inputs,)
    )
    emit_flat_verilog(net, out / "layer.v", name="layer")
    (out / "synth.ys").write_text(synth_script(FAMILY, "layer.v", "layer", "stat.json"))
    t0 = time.perf_counter()
    run_tool("yosys", ["-q", "-l", "synth.log", "synth.ys"], cwd=out, step="synth_ecp5")
    cells = count_cells(FAMILY, read_yosys_stat(out / "stat.json"))
    f = estimate(low.graph, FAMILY).features
    fam = FAMILY.cost
    return {
        "luts": cells["luts"],
        "ffs": cells["ffs"],
        "model_luts_yosys": round(
            fam.lut_per_chain_lut * f.chain_luts
            + f.srl_luts
            + fam.lut_per_mux_bit * f.mux_bits
            + fam.lut_per_select_bit * f.select_mux_bits
        ),
        "model_ffs_synth": f.ffs_synth,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _short(res: dict[str, Any]) -> str:
    if "failed" in res:
        return f"failed: {res['failed']}"
    if "sampled" in res:
        return (
            f"{res['est_luts']:>9,} LUTs (sampled {res['sampled']:.1%}) {res['adders']:>7,} adders"
        )
    return (
        f"{res['est_luts']:>9,} LUTs {res['ffs']:>9,} FFs {res['adders']:>7,} adders"
        f" depth {res['depth']:>3} {res['sqnr_db']:.2f} dB {res['total_s']:.1f} s"
    )


def _ratios(out: dict[str, Any], case: Case) -> None:
    c = out["candidates"]

    def best(labels: list[str]) -> tuple[str, int] | None:
        ok = [(k, c[k]["est_luts"]) for k in labels if k in c and "est_luts" in c[k]]
        return min(ok, key=lambda t: t[1]) if ok else None

    exact = [k for k in c if "sampled" not in c[k]]
    base = ["csd+cse", "alkaid"] if case.against == "best" else ["csd+cse"]
    if not any(k in exact for k in base):  # no exact price: compare the sampled ones
        base, exact = ["csd+cse (sampled)"], list(c)
    fam = [k for k in exact if not k.startswith(("csd+cse", "alkaid"))]
    b, f = best(base), best(fam)
    out["baseline"] = b[0] if b else None
    out["lcc_family"] = f[0] if f else None
    out["ratio"] = round(f[1] / b[1], 3) if b and f else None
    out["target"] = case.target
    out["against"] = case.against
    overall = best(exact)
    out["cheapest"] = overall[0] if overall else None


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def markdown(results: list[dict[str, Any]], cond: dict[str, Any]) -> str:
    labels: list[str] = []
    for r in results:
        for k in r["candidates"]:
            if k not in labels:
                labels.append(k)
    head = "| matrix | " + " | ".join(labels) + " | best LCC-family / baseline | target |"
    lines = [
        "# Coders side by side (`benchmarks/coders.py`)",
        "",
        f"{cond['date']}, {cond['machine']}; SQNR {cond['sqnr_db']} dB after truncation;"
        f" estimated ECP5 LUTs (cost model, = placed TRELLIS_COMB). Baseline = the best of"
        " CSD+CSE and alkaid (or CSD+CSE alone where the target says so).",
        "",
        head,
        "|" + "---|" * (len(labels) + 3),
    ]
    for r in results:
        cells = []
        for k in labels:
            x = r["candidates"].get(k)
            if x is None:
                cells.append("")
            elif "failed" in x:
                cells.append("-")
            else:
                mark = "**" if k == r["cheapest"] else ""
                cells.append(f"{mark}{x['est_luts']:,}{mark}")
        ratio = f"{r['ratio']:.3f} ({r['lcc_family']} / {r['baseline']})" if r["ratio"] else "-"
        tgt = f"<= {r['target']} vs {r['against']}" if r["target"] else ""
        lines.append(f"| {r['name']} | " + " | ".join(cells) + f" | {ratio} | {tgt} |")
    synthesized = [
        (r["name"], k, x["yosys"])
        for r in results
        for k, x in r["candidates"].items()
        if isinstance(x.get("yosys"), dict) and "luts" in x["yosys"]
    ]
    if synthesized:
        lines += [
            "",
            "yosys `synth_ecp5 -flatten -noiopad` of the best baseline and the best LCC-family"
            " design (LUTs = LUT4 + 2 per CCU2C; the cost model's yosys-equivalent count has no"
            " per-chain overhead, which nextpnr adds):",
            "",
            "| matrix | design | yosys LUTs | yosys FFs | model LUTs (yosys-eq.) | model FFs |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for name, k, y in synthesized:
            lines.append(
                f"| {name} | {k} | {y['luts']:,} | {y['ffs']:,} | {y['model_luts_yosys']:,}"
                f" | {y['model_ffs_synth']:,} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="comma-separated case names (substrings)")
    ap.add_argument("--coders", default="", help="comma-separated coder label substrings")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sqnr", type=float, default=SQNR_DB)
    ap.add_argument("--alkaid-max", type=int, default=128 * 128)
    ap.add_argument("--full", type=int, default=1 << 16, help="larger: priced on samples first")
    ap.add_argument("--exact-max", type=int, default=1 << 20, help="larger: samples only")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--yosys", action="store_true", help="synthesize the marked matrices")
    ap.add_argument("--build", type=Path, default=ROOT / "build" / "coders_yosys")
    ap.add_argument("-o", "--out", type=Path, default=None)
    args = ap.parse_args()
    args.coders = [c for c in args.coders.split(",") if c]
    only = [s for s in args.only.split(",") if s]
    cases = [c for c in CASES if (not args.quick or c.quick)]
    if only:
        cases = [c for c in cases if any(s in c.name for s in only)]
    today = datetime.date.today().isoformat()
    cond = {
        "date": today,
        "machine": f"{platform.machine()} ({platform.system()}, shared 2-core VM)",
        "sqnr_db": args.sqnr,
        "family": FAMILY.name,
        "argv": sys.argv[1:],
    }
    results: list[dict[str, Any]] = []
    for case in cases:
        say(f"{case.name}")
        results.append(run_case(case, args))
        write(results, cond, args.out)  # after every case: a stopped run keeps what it did
    print(markdown(results, cond))


def write(results: list[dict[str, Any]], cond: dict[str, Any], out: Path | None) -> None:
    """``coders.json`` and ``coders.md`` of the results so far into ``out`` (None: nowhere)."""
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / "coders.json").write_text(
        json.dumps({"conditions": cond, "results": results}, indent=1) + "\n"
    )
    (out / "coders.md").write_text(markdown(results, cond))


if __name__ == "__main__":
    main()
