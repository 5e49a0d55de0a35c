"""Fmax against flip-flops: the ``schedule`` pass's register placement, placed and routed.

Usage::

    .venv/bin/python benchmarks/fmax.py [--model examples/digits_mlp.onnx] [--pipeline quantize,lcc]
        [--every 1,2,3,auto] [--designs network,layer,selftest] [--layer fc2] [--mhz 200]
        [-o build/bench_fmax]

For each ``every`` setting the pipeline gets ``schedule{every=k}`` appended and three designs
are built on the ULX3S-85F (LFE5U-85F, CABGA381, speed 6):

* ``network``: the whole network alone, yosys ``synth_ecp5`` then ``nextpnr-ecp5
  --out-of-context`` (no I/O cells: the network is a block of a larger design, and its ports
  are not timed as pins), target ``--mhz``;
* ``layer``: one matrix layer as ``nnlcc compile --layer`` builds it, the same flow;
* ``selftest``: the on-board self-test top (network + ROMs + checker + UART reporter) through
  :func:`nnlcc.boards.board_build`, with the board clock set to ``--selftest-mhz`` so that
  nextpnr targets it and the UART and blink timers are sized for it.

Each row: latency (clocks), the schedule's flip-flops (registered nodes, delayed copies, valid
chain), yosys LUTs/FFs, placed LUTs/FFs, Fmax and the critical path's ends. Slow (minutes per
place-and-route): run it with ``nice`` and only the designs needed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from nnlcc.boards import board_build, get_board
from nnlcc.boards.toolchain import count_cells, parse_nextpnr, read_yosys_stat, run_tool
from nnlcc.compile_layer import one_layer_network
from nnlcc.driver import load_data, load_model, resolve_pipeline, run_passes
from nnlcc.hdl.top import top_for
from nnlcc.ir.lower import lower_network
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import MatrixGraph

ROOT = Path(__file__).resolve().parents[1]
TOP = "nnlcc_network"
BOARD = "ulx3s"  # the 85F: every design here is placed on it (ECP5)
FAMILY = get_board(BOARD).family
_PATH_RE = re.compile(r"(Source|Sink) (\S+)")


def compiled(model: Path, pipeline: str) -> tuple[MatrixGraph, LoweredNetwork, Any]:
    graph = load_model(model)
    data = load_data(graph, model, None, 0)
    run_passes(graph, resolve_pipeline(pipeline), data, board=BOARD)
    return graph, lower_network(graph), data


def schedule_facts(net: LoweredNetwork) -> dict[str, Any]:
    return {
        "latency": net.latency,
        "schedule_ffs": sum(layer.graph.register_bits for layer in net.layers),
        "adders": sum(layer.graph.adders for layer in net.layers),
        "model_path": round(max(layer.graph.path_cost() for layer in net.layers), 2),
        # which nodes are registered where: equal fingerprints are the same hardware
        "schedule": hashlib.sha1(
            repr([(la.graph.schedule(), la.graph.reads) for la in net.layers]).encode()
        ).hexdigest()[:12],
    }


def critical_path(log: str) -> dict[str, str]:
    """First source and last sink of the last critical-path report in a nextpnr log."""
    at = log.rfind("Critical path report for clock")
    ends = _PATH_RE.findall(log[at:].split("\n\n")[0]) if at >= 0 else []
    return {"from": ends[0][1], "to": ends[-1][1]} if ends else {}


def pnr_alone(net: LoweredNetwork, outdir: Path, mhz: float, say: Any) -> dict[str, Any]:
    """The network alone: yosys synth_ecp5, nextpnr-ecp5 out of context on the 85F."""
    outdir.mkdir(parents=True, exist_ok=True)
    top_for(net).emit(outdir / "network.v", TOP)
    return synth_pnr(outdir, ["network.v"], TOP, mhz, say)


def synth_pnr(
    outdir: Path,
    sources: list[str],
    top: str,
    mhz: float,
    say: Any,
    pnr_args: tuple[str, ...] = (),
    reuse_synth: bool = False,
) -> dict[str, Any]:
    """Verilog ``sources`` (relative to ``outdir``) with top module ``top``: yosys synth_ecp5,
    nextpnr-ecp5 out of context on the 85F (speed 6) at ``mhz`` (``pnr_args`` added, e.g. a
    router); LUTs, FFs, Fmax.  ``reuse_synth``: an earlier synthesis in ``outdir`` is kept
    when it was made from the same sources (their SHA-256, in ``synth.sha256``)."""
    reads = "".join(f"read_verilog {src}\n" for src in sources)
    digest = sources_sha256(outdir, sources)
    stamp = outdir / "synth.sha256"
    script = (
        f"{reads}{FAMILY.toolchain.synth} -top {top}\n"
        "tee -q -o stat.json stat -json\nwrite_json network.json\n"
    )
    synth_s = None
    kept = stamp.is_file() and stamp.read_text().strip() == digest
    if not (reuse_synth and kept and (outdir / "network.json").is_file()):
        stamp.unlink(missing_ok=True)
        (outdir / "synth.ys").write_text(script)
        syn = run_tool("yosys", ["-q", "-l", "synth.log", "synth.ys"], cwd=outdir,
                       step="synth", progress=say)  # fmt: skip
        synth_s = round(syn.seconds, 1)
        stamp.write_text(digest + "\n")
    cells = count_cells(FAMILY, read_yosys_stat(outdir / "stat.json"))
    pnr = run_tool(
        "nextpnr-ecp5",
        ["--85k", "--package", "CABGA381", "--speed", "6", "--out-of-context",
         "--freq", f"{mhz:g}", "--timing-allow-fail", "--json", "network.json",
         "--report", "report.json", "--log", "pnr.log", "--quiet", *pnr_args],
        cwd=outdir, step="pnr", progress=say,
    )  # fmt: skip
    log = (outdir / "pnr.log").read_text(errors="replace")
    parsed = parse_nextpnr(log, json.loads((outdir / "report.json").read_text()))
    return {
        "yosys_luts": cells["luts"],
        "yosys_ffs": cells["ffs"],
        "placed_luts": parsed.used(FAMILY, "luts"),
        "placed_ffs": parsed.used(FAMILY, "ffs"),
        "fmax_mhz": round(parsed.fmax, 2) if parsed.fmax is not None else None,
        "critical_path": critical_path(log),
        "synth_s": synth_s,
        "pnr_s": round(pnr.seconds, 1),
        "sources_sha256": digest,
    }


def sources_sha256(outdir: Path, sources: list[str]) -> str:
    """One SHA-256 over the Verilog ``sources`` (names and contents, in order)."""
    h = hashlib.sha256()
    for src in sources:
        h.update(src.encode() + b"\0" + (outdir / src).read_bytes() + b"\0")
    return h.hexdigest()


def pnr_selftest(
    net: LoweredNetwork, x_int: Any, outdir: Path, mhz: float, say: Any
) -> dict[str, Any]:
    board = dataclasses.replace(get_board(BOARD), clock_hz=mhz * 1e6)
    res = board_build(board, net, outdir, x_int=x_int, run_pnr=True, progress=say)
    log = (outdir / "board" / "selftest" / "nnlcc_selftest.tim").read_text(errors="replace")
    t = res["timings_s"]
    return {
        "yosys_luts": res["network_estimate"]["luts"],
        "yosys_ffs": res["network_estimate"]["ffs"],
        "placed_luts": res["luts"],
        "placed_ffs": res["ffs"],
        "fmax_mhz": res["fmax_mhz"],
        "critical_path": critical_path(log),
        "synth_s": t.get("synth"),
        "pnr_s": t.get("pnr"),
    }


def _merge(path: Path, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows already in ``path`` (runs may share an output folder) with ``new`` added."""
    old = json.loads(path.read_text()) if path.is_file() else []
    keys = {(r["design"], r["every"]) for r in new}
    rows = [r for r in old if (r["design"], r["every"]) not in keys] + new
    order = {"1": 0, "2": 1, "3": 2, "auto": 3}
    rows.sort(key=lambda r: (r["design"], order.get(r["every"], 9), r["every"]))
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rows, indent=2) + "\n")
    os.replace(tmp, path)  # parallel runs never read a half-written file
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| design | every | latency | schedule FFs | yosys LUTs | yosys FFs | placed LUTs "
        "| placed FFs | Fmax MHz | critical path |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        cp = r.get("critical_path") or {}
        path = f"{cp.get('from', '')} → {cp.get('to', '')}" if cp else "—"
        lines.append(
            f"| {r['design']} | {r['every']} | {r['latency']} | {r['schedule_ffs']:,} "
            f"| {r['yosys_luts']:,} | {r['yosys_ffs']:,} | {r['placed_luts']:,} "
            f"| {r['placed_ffs']:,} | {r['fmax_mhz']} | `{path}` |"
            + (f" same registers as every={r['same_as']}" if r.get("same_as") else "")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "examples" / "digits_mlp.onnx")
    ap.add_argument("--pipeline", default="quantize,lcc")
    ap.add_argument("--every", default="1,2,3,auto")
    ap.add_argument("--designs", default="network,layer,selftest")
    ap.add_argument("--layer", default="fc2")
    ap.add_argument("--mhz", type=float, default=200.0, help="network/layer target clock")
    ap.add_argument("--selftest-mhz", type=float, default=150.0)
    ap.add_argument("-o", "--outdir", type=Path, default=Path("build") / "bench_fmax")
    ap.add_argument("--table", action="store_true", help="print the table of OUTDIR's rows")
    args = ap.parse_args(argv)
    if args.table:
        print(table(_merge(args.outdir / "fmax.json", [])))
        return 0
    designs = args.designs.split(",")
    out = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    rows = _merge(out / "fmax.json", [])
    cache: dict[str, tuple[MatrixGraph, LoweredNetwork, Any]] = {}
    for every in args.every.split(","):
        for design in designs:
            mhz = args.selftest_mhz if design == "selftest" else args.mhz
            opts = f"every={every}" + (f",mhz={mhz:g}" if every == "auto" else "")
            pipeline = f"{args.pipeline},schedule{{{opts}}}"
            if pipeline not in cache:
                cache[pipeline] = compiled(args.model, pipeline)
            graph, net, data = cache[pipeline]
            name = f"{design} ({args.layer})" if design == "layer" else design
            if any(r["design"] == name and r["every"] == every for r in rows):
                continue  # measured already (by an earlier or a parallel run)
            tag = f"{design}_every{every}"

            def say(msg: str, tag: str = tag) -> None:
                print(f"  [{tag}] {msg}", file=sys.stderr, flush=True)

            if design == "layer":
                layer = next(la for la in graph.matrix_layers() if la.name == args.layer)
                d = one_layer_network(graph, layer)
            else:
                d = net
            facts = {"design": name, "every": every, "pipeline": pipeline, **schedule_facts(d)}
            same = next(
                (r for r in rows if r["design"] == name and r["schedule"] == facts["schedule"]),
                None,
            )
            t0 = time.perf_counter()
            if same is not None:  # the same registers as a setting measured already
                keep = ("every", "pipeline", "wall_s", "same_as")
                res = {k: v for k, v in same.items() if k not in facts and k not in keep}
                res["same_as"] = same["every"]
            elif design == "selftest":
                res = pnr_selftest(net, net.quantize_input(data.x_test), out / tag, mhz, say)
            else:
                res = pnr_alone(d, out / tag, mhz, say)
            row = {**facts, **res, "wall_s": round(time.perf_counter() - t0, 1)}
            print(json.dumps(row), flush=True)
            rows = _merge(out / "fmax.json", [row])
    print(f"\n{args.model.name}, `{args.pipeline}`, ULX3S-85F (LFE5U-85F-6 CABGA381)\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
