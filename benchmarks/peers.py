"""nnlcc against alkaid's own RTL on the quantized jet-tagging example, through the same
yosys + nextpnr flow, beside the published LUT-based peers (quoted, never run here).

Usage::

    .venv/bin/python benchmarks/peers.py [--model examples/jet_mlp_qonnx.onnx]
        [--data examples/jet.npz] [--mhz 150] [--designs nnlcc,nnlcc-pipelined,alkaid]
        [-o build/bench_peers] [--results benchmarks/results/DATE] [--table]

Every design computes the imported model's integers exactly (the accuracy column is checked
against the golden model: ``identical``), takes the 16 quantized 8-bit inputs and gives the
5 logits, and goes through :func:`fmax.synth_pnr`: yosys ``synth_ecp5`` and ``nextpnr-ecp5
--out-of-context --no-route`` on the ULX3S's LFE5U-85F (speed 6) at ``--mhz``: placed, not
routed (see :data:`ROUTER`), so the Fmax column is nextpnr's post-placement estimate.

* ``nnlcc``: ``quantize,auto`` (a register after every adder, nnlcc's default);
* ``nnlcc-pipelined``: ``quantize,auto,schedule{mhz=MHZ}`` (registers where nnlcc's ECP5
  delay model needs them);
* ``alkaid``: alkaid 0.8.2 traces the same network (the imported integer matrices and
  biases, round-half-to-even and saturation at the same activation formats), solves every
  matrix with its own CMVM and writes its own pipelined Verilog (``RTLModel``, latency cutoff
  ``1000 / MHZ`` ns of its delay model).

Latency is in clocks; the ``ns`` column is latency / Fmax.  The peers' rows (LogicNets,
PolyLUT, NeuraLUT) are the figures their authors published on the *original* hls4ml jet data
on a Xilinx xcvu9p (LUT6) with Vivado: they are quoted with their source, on another data set
(nnlcc's example uses a synthetic jet-like set, see examples/jet_data.py) and another FPGA
family (ECP5 LUT4s here), so they place the field, they are not a like-for-like comparison.
Rows are measured into ``-o`` (``peers.json`` there: an interrupted run resumes; a row is
kept only while its design's Verilog is the same, by SHA-256), then written with the run's
conditions (part, tools and versions, seeds, model and data hashes) as ``peers.json`` and
``peers.md`` into ``--results``.  Slow (tens of minutes per place): run it with ``nice``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from fmax import sources_sha256, synth_pnr

from nnlcc.boards.toolchain import find_tool
from nnlcc.data import Dataset, load_npz
from nnlcc.frontends import load_model
from nnlcc.hdl.top import top_for
from nnlcc.ir.family import ECP5
from nnlcc.ir.imported import ImportedQuant, imported_ints
from nnlcc.ir.lower import lower_network
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import MatrixGraph
from nnlcc.passes import resolve_pipeline, run_passes

ROOT = Path(__file__).resolve().parents[1]
#: Placement only: routing these 40k-LUT designs on the LFE5U-85F does not finish on 2 shared
#: cores (measured: router1 at 150,000 overused wires after an hour; router2 at 10,000 after
#: 8 iterations, an hour and a half); Fmax is nextpnr's post-placement estimate.
ROUTER = ("--no-route",)

#: Published figures (jet substructure tagging, hls4ml's data; xcvu9p, Vivado, out of context),
#: quoted from the sources named, never run through nnlcc's flow.
PUBLISHED = [
    {
        "design": "LogicNets JSC-M",
        "accuracy": 0.715,
        "luts": 14576,
        "ffs": 803,
        "fmax_mhz": 596.66,
        "latency": "5 cycles",
        "source": "Umuroglu et al., LogicNets, FPL 2020; figures of the authors' reimplementation,"
        " github.com/Xilinx/logicnets examples/jet_substructure/README.md (Vivado 2019.2)",
    },
    {
        "design": "LogicNets JSC-L",
        "accuracy": 0.726,
        "luts": 38925,
        "ffs": 2418,
        "fmax_mhz": 485.44,
        "latency": "6 cycles",
        "source": "as above",
    },
    {
        "design": "PolyLUT JSC-M Lite",
        "accuracy": 0.72,
        "luts": 12436,
        "ffs": 773,
        "fmax_mhz": 646,
        "latency": "5 ns",
        "source": "Andronic & Constantinides, PolyLUT, ICFPT 2023, doi:10.1109/ICFPT59805.2023.00012"
        " (its comparison table; the same figures in NeuraLUT's and AmigoLUT's tables)",
    },
    {
        "design": "PolyLUT JSC-XL",
        "accuracy": 0.75,
        "luts": 236541,
        "ffs": 2775,
        "fmax_mhz": 235,
        "latency": "21 ns",
        "source": "as above",
    },
    {
        "design": "NeuraLUT JSC-2L",
        "accuracy": 0.72,
        "luts": 4684,
        "ffs": 341,
        "fmax_mhz": 727,
        "latency": "3 ns",
        "source": "Andronic & Constantinides, NeuraLUT, FPL 2024, doi:10.1109/FPL64840.2024.00028"
        " (its results table; the same figures in AmigoLUT, FPGA 2025, Table 4)",
    },
    {
        "design": "NeuraLUT JSC-5L",
        "accuracy": 0.75,
        "luts": 92357,
        "ffs": 4885,
        "fmax_mhz": 368,
        "latency": "14 ns",
        "source": "as above",
    },
]


def compiled(model: Path, pipeline: str, calib: np.ndarray) -> tuple[MatrixGraph, LoweredNetwork]:
    graph = load_model(model)
    run_passes(graph, resolve_pipeline(pipeline), calib, ECP5)
    return graph, lower_network(graph)


def _kif(fmt: Any) -> tuple[int, int, int]:
    """alkaid's (sign, integer, fraction) bits of a fixed-point format."""
    return int(fmt.signed), fmt.bits - int(fmt.signed) - fmt.frac, fmt.frac


def alkaid_network(graph: MatrixGraph) -> Any:
    """The imported network traced by alkaid: the same integers, roundings and formats."""
    from alkaid.trace import FVArrayInput, trace

    assert graph.input_fmt is not None
    inp = FVArrayInput((graph.input_size,))
    h = inp.quantize(*_kif(graph.input_fmt))
    for layer in graph.matrix_layers():
        got, facts = imported_ints(layer), layer.notes.get(ImportedQuant)
        if got is None or facts is None or facts.gain:
            raise SystemExit(f"layer {layer.name} is not an integer-exact imported layer")
        h = h @ (got[0].T * 2.0 ** -got[1]) + layer.bias
        if facts.output is not None:
            if layer.relu:
                h = np.maximum(h, 0)
            k, i, f = _kif(layer.out_fmt)
            h = h.quantize(k, 24, f, overflow_mode="WRAP", round_mode="RND_CONV")  # half even
            h = h.quantize(k, i, f, overflow_mode="SAT", round_mode="TRN")
    return trace(inp, h)


def accuracy(y: np.ndarray, labels: Any) -> float:
    return round(float(np.mean(y.argmax(1) == labels)), 4)


@dataclass
class Emitted:
    """A design's Verilog written into ``folder``: its sources and top, its golden-checked
    outputs ``y`` on the test set, and facts for its row (pipeline, latency, ...)."""

    folder: Path
    sources: list[str]
    top: str
    y: np.ndarray
    facts: dict[str, Any]


def emit(design: str, args: argparse.Namespace, graph: MatrixGraph, data: Dataset) -> Emitted:
    """Write ``design``'s Verilog into ``args.outdir / design``."""
    folder = args.outdir / design
    folder.mkdir(parents=True, exist_ok=True)
    x_int = lower_network(graph).quantize_input(data.x_test)
    if design.startswith("nnlcc"):
        pipeline = "quantize,auto" + (
            f",schedule{{mhz={args.mhz:g}}}" if design == "nnlcc-pipelined" else ""
        )
        _, n = compiled(args.model, pipeline, data.x_calib)
        top_for(n).emit(folder / "network.v", "nnlcc_network")
        facts = {"pipeline": pipeline, "latency": n.latency,
                 "adders": sum(la.graph.adders for la in n.layers)}  # fmt: skip
        return Emitted(folder, ["network.v"], "nnlcc_network",
                       n.output_real(n.evaluate(x_int)), facts)  # fmt: skip
    if design == "alkaid":
        from alkaid.codegen import RTLModel

        comb = alkaid_network(graph)
        assert graph.input_fmt is not None
        y = np.asarray(comb.predict(graph.input_fmt.to_real(x_int)), dtype=np.float64)
        cutoff = 1000.0 / args.mhz
        model = RTLModel(comb, folder / "rtl", "jet", latency_cutoff=cutoff, clock_period=cutoff)
        model.write()
        src = sorted((folder / "rtl" / "src").glob("*.v"))
        src += sorted((folder / "rtl" / "src" / "static").glob("*.v"))
        names = [str(p.relative_to(folder)) for p in src if p.stem != "jet_wrapper"]
        facts = {"pipeline": f"alkaid RTLModel latency_cutoff={cutoff:g} ns",
                 "latency": model.latency, "adder_cost": round(float(comb.cost), 1)}  # fmt: skip
        return Emitted(folder, names, "jet", y, facts)
    raise SystemExit(f"unknown design {design!r} (known: nnlcc, nnlcc-pipelined, alkaid)")


def run(args: argparse.Namespace, path: Path) -> list[dict[str, Any]]:
    """Measure every design of ``--designs`` whose row in ``path`` is missing or was made from
    other Verilog (rows are written as they come, so an interrupted run resumes)."""
    data = load_npz(args.data, 16, 5)
    assert data.y_test is not None
    rows: list[dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else []
    graph, net = compiled(args.model, "quantize,auto", data.x_calib)
    golden = net.output_real(net.evaluate(net.quantize_input(data.x_test)))

    def say(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr, flush=True)

    out: list[dict[str, Any]] = []
    for design in args.designs.split(","):
        t0 = time.perf_counter()
        e = emit(design, args, graph, data)
        digest = sources_sha256(e.folder, e.sources)
        old = next((r for r in rows if r["design"] == design), None)
        if old is not None and old.get("sources_sha256") == digest:
            print(f"{design}: measured before from the same Verilog", file=sys.stderr)
            out.append(old)
            continue
        res = synth_pnr(e.folder, e.sources, e.top, args.mhz, say, ROUTER, True)
        row = {
            "design": design,
            **e.facts,
            "accuracy": accuracy(e.y, data.y_test),
            "identical": bool(np.array_equal(e.y, golden)),
            "luts": res["placed_luts"],
            "ffs": res["placed_ffs"],
            "fmax_mhz": res["fmax_mhz"],
            "yosys_luts": res["yosys_luts"],
            "yosys_ffs": res["yosys_ffs"],
            "synth_s": res["synth_s"],
            "place_s": res["pnr_s"],
            "wall_s": round(time.perf_counter() - t0, 1),
            "sources_sha256": digest,
        }
        if row["fmax_mhz"] and row["latency"] is not None:
            row["latency_ns"] = round(1000.0 * row["latency"] / row["fmax_mhz"], 1)
        print(json.dumps(row), flush=True)
        rows = [r for r in rows if r["design"] != design] + [row]
        path.write_text(json.dumps(rows, indent=2) + "\n")
        out.append(row)
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _version(cmd: list[str]) -> str:
    try:
        got = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    except OSError as e:
        return f"unknown ({e})"
    return (got.stdout + got.stderr).strip().splitlines()[0] if got.stdout + got.stderr else "?"


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    """What the rows were measured under: part, flow, tools, seeds, inputs, machine."""

    def git(*a: str) -> str:
        got = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        return got.stdout.strip()

    from nnlcc.examples.train_jet_mlp import SEED  # the example's training seed

    dirty = git("status", "--porcelain", "--", "compiler", "frontends", "hdl", "benchmarks")

    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "board": "ulx3s",
        "part": "LFE5U-85F-6 CABGA381 (ECP5), out of context (--out-of-context: no I/O cells)",
        "target_mhz": args.mhz,
        "flow": "yosys synth_ecp5 -flatten -noiopad; nextpnr-ecp5 --no-route (placed, not"
        " routed: Fmax is nextpnr's post-placement estimate)",
        "nextpnr_seed": "nextpnr's default (fixed, not randomized)",
        "yosys": _version([*find_tool("yosys"), "-V"]),
        "nextpnr": _version([*find_tool("nextpnr-ecp5"), "--version"]),
        "alkaid": metadata.version("alkaid"),
        "nnlcc_commit": git("rev-parse", "HEAD") + (" (dirty)" if dirty else ""),
        "model": str(args.model.resolve().relative_to(ROOT)),
        "model_sha256": _sha256(args.model),
        "data": str(args.data.resolve().relative_to(ROOT)),
        "data_sha256": _sha256(args.data),
        "training_seed": SEED,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs,"
        f" Python {platform.python_version()}",
    }


def table(rows: list[dict[str, Any]], model: str, mhz: float) -> str:
    """The Markdown tables: the measured rows, then the published peers with their sources."""
    lines = [
        f"{model} on the ULX3S's LFE5U-85F-6 (yosys synth_ecp5, nextpnr-ecp5 out of context,"
        f" target {mhz:g} MHz); placed LUT4s and FFs, Fmax estimated after placement (not"
        " routed):",
        "",
        "| design | LUTs | FFs | Fmax MHz | latency (clocks) | latency ns | accuracy | = golden |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['design']} | {r['luts']:,} | {r['ffs']:,} | {r['fmax_mhz']} | {r['latency']} "
            f"| {r.get('latency_ns', '–')} | {r['accuracy']} | {'yes' if r['identical'] else 'no'} |"
        )
    lines += [
        "",
        "Published LUT-based peers (hls4ml's jet data, xcvu9p LUT6s, Vivado; quoted, not run"
        " through this flow, not the same data or FPGA family):",
        "",
        "| design | LUTs | FFs | Fmax MHz | latency | accuracy | source |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for p in PUBLISHED:
        lines.append(
            f"| {p['design']} | {p['luts']:,} | {p['ffs']:,} | {p['fmax_mhz']} | {p['latency']} "
            f"| {p['accuracy']} | {p['source']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "examples" / "jet_mlp_qonnx.onnx")
    ap.add_argument("--data", type=Path, default=ROOT / "examples" / "jet.npz")
    ap.add_argument("--mhz", type=float, default=150.0)
    ap.add_argument("--designs", default="nnlcc,nnlcc-pipelined,alkaid")
    ap.add_argument("-o", "--outdir", type=Path, default=Path("build") / "bench_peers")
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / today)
    ap.add_argument("--table", action="store_true", help="print the table of OUTDIR's rows")
    args = ap.parse_args(argv)
    path = args.outdir / "peers.json"
    if args.table:
        print(table(json.loads(path.read_text()), args.model.name, args.mhz))
        return 0
    args.outdir.mkdir(parents=True, exist_ok=True)
    rows = run(args, path)
    text = table(rows, args.model.name, args.mhz)
    cond = conditions(args)
    args.results.mkdir(parents=True, exist_ok=True)
    doc = {"conditions": cond, "rows": rows, "published": PUBLISHED}
    (args.results / "peers.json").write_text(json.dumps(doc, indent=2) + "\n")
    listed = "\n".join(f"- {k}: {v}" for k, v in cond.items())
    (args.results / "peers.md").write_text(
        f"# nnlcc vs alkaid on the jet-tagging MLP (benchmarks/peers.py)\n\n{text}\n\n"
        f"Conditions:\n\n{listed}\n"
    )
    print()
    print(text)
    print(f"\nwritten: {args.results / 'peers.json'}, {args.results / 'peers.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
