"""Fmax against latency, flip-flops and LUTs: the ``schedule`` pass's register placement and
fanout bound, placed and routed.

Usage::

    .venv/bin/python benchmarks/fmax.py [--board ulx3s|icebreaker] [--model examples/digits_mlp.onnx]
        [--pipeline quantize,lcc] [--schedules "every=1,fanout=0" "every=1" "every=2"]
        [--designs network,layer,selftest] [--layer fc2] [--mhz 200] [-o build/bench_fmax]
        [--results benchmarks/results/DATE]

Each schedule is appended to the pipeline as ``schedule{...}`` (``default``: no schedule pass,
what ``nnlcc compile`` builds) and three designs are placed on the board's device:

* ``network``: the whole network alone. ECP5: yosys ``synth_ecp5``, then ``nextpnr-ecp5
  --out-of-context`` (no I/O cells, the ports untimed: the network as a block of a larger
  design). iCE40: nextpnr-ice40 has no out-of-context mode, so the network sits in the serial
  I/O wrapper of ``benchmarks/harness.py`` (ports from registers, outputs XOR-folded);
* ``layer``: one matrix layer as ``nnlcc compile --layer`` builds it, the same flow;
* ``selftest``: the on-board self-test top (network + ROMs + checker + UART reporter) as
  ``nnlcc compile --board B --build`` builds it (:func:`nnlcc.boards.board_build`: nextpnr
  asked for the schedule's target clock, the UART and timers sized for the board's clock).

Each row: latency (clocks), the schedule's flip-flops (registered nodes, delayed copies, the
copies that bound fanout, the valid chain) and of those the copies, the cost model's LUTs,
yosys and placed LUTs/FFs, Fmax, and the critical path's ends and first net. Network and layer
runs keep nextpnr's report and SDF (``--sdf``), from which ``benchmarks/delay_fit.py`` fits the
family's delay model. Slow (minutes per place-and-route): run it with ``nice``, one at a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import platform as host
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import HARNESS, harness_verilog

from nnlcc.boards import board_build, get_board
from nnlcc.boards.build import pnr_target_mhz, synth_script
from nnlcc.boards.toolchain import count_cells, parse_nextpnr, read_yosys_stat, run_tool
from nnlcc.compile_layer import one_layer_network
from nnlcc.driver import load_data, load_model, resolve_pipeline, run_passes
from nnlcc.hdl.top import top_for
from nnlcc.ir.cost import estimate_network
from nnlcc.ir.family import ECP5, ICE40
from nnlcc.ir.lower import lower_network
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import MatrixGraph

ROOT = Path(__file__).resolve().parents[1]
TOP = "nnlcc_network"
#: the placer's device per board name: nextpnr arguments of the network-alone runs
DEVICES = {
    "ulx3s": ["--85k", "--package", "CABGA381", "--speed", "6", "--out-of-context"],
    "icebreaker": ["--up5k", "--package", "sg48", "--pcf-allow-unconstrained"],
}


def compiled(model: Path, pipeline: str, board: str) -> tuple[MatrixGraph, LoweredNetwork, Any]:
    graph = load_model(model)
    data = load_data(graph, model, None, 0)
    run_passes(graph, resolve_pipeline(pipeline), data, board=board)
    return graph, lower_network(graph, get_board(board).family), data


def schedule_facts(net: LoweredNetwork, board: str) -> dict[str, Any]:
    graphs = [layer.graph for layer in net.layers]
    cost = estimate_network(net, get_board(board).family).total
    return {
        "latency": net.latency,
        "schedule_ffs": sum(g.register_bits for g in graphs),
        "copy_ffs": sum(g.width(k) * n for g in graphs for k, _, n in g.copies.extra_registers),
        "fanout": max(g.stage_budget.fanout for g in graphs),
        "adders": sum(g.adders for g in graphs),
        "model_luts": cost.luts if cost is not None else None,
        "model_ffs": cost.ffs if cost is not None else None,
    }


def critical_path(report: dict[str, Any]) -> dict[str, Any]:
    """Ends of the critical path and its first net (a register's route to its reader)."""
    paths = report.get("critical_paths") or []
    if not paths:
        return {}
    segs = paths[0]["path"]
    first = next((s for s in segs if s["type"] == "routing"), None)
    return {
        "from": segs[0]["from"]["cell"],
        "to": segs[-1]["to"]["cell"],
        "ns": round(sum(s["delay"] for s in segs), 3),
        "first_net": first.get("net", "") if first else "",
        "first_net_ns": round(first["delay"], 3) if first else None,
    }


def design_facts(net: LoweredNetwork) -> dict[str, Any]:
    """What the delay fit needs of the design: each layer's node widths and stage budget."""
    return {
        f"l{i}": {
            "widths": [layer.graph.width(k) for k in range(len(layer.graph.nodes))],
            "stage_budget": dataclasses.asdict(layer.graph.stage_budget),
        }
        for i, layer in enumerate(net.layers)
    }


def pnr_alone(
    net: LoweredNetwork, board: str, outdir: Path, mhz: float, say: Any
) -> dict[str, Any]:
    """The network alone (in the I/O wrapper on a family without out-of-context placement)."""
    family = get_board(board).family
    outdir.mkdir(parents=True, exist_ok=True)
    meta = top_for(net).emit(outdir / "network.v", TOP)
    (outdir / "design.json").write_text(json.dumps(design_facts(net)))
    sources, top = ["network.v"], TOP
    if family is ICE40:
        (outdir / "harness.v").write_text(harness_verilog(meta, TOP))
        sources, top = ["network.v", "harness.v"], HARNESS
    return synth_pnr(outdir, sources, top, mhz, say, board=board)


def synth_pnr(
    outdir: Path,
    sources: list[str],
    top: str,
    mhz: float,
    say: Any,
    pnr_args: tuple[str, ...] = (),
    reuse_synth: bool = False,
    board: str = "ulx3s",
) -> dict[str, Any]:
    """Verilog ``sources`` (relative to ``outdir``) with top module ``top``: the board's
    family's yosys synthesis, then its nextpnr on the board's device (:data:`DEVICES`: ECP5 out
    of context on the 85F, speed 6) at ``mhz`` (``pnr_args`` added, e.g. a router or
    ``--no-route``); LUTs, FFs, Fmax, the critical path.  ``reuse_synth``: an earlier synthesis
    in ``outdir`` is kept when it was made from the same sources (their SHA-256, in
    ``synth.sha256``)."""
    family = get_board(board).family
    digest = sources_sha256(outdir, sources)
    stamp = outdir / "synth.sha256"
    script = synth_script(family, " ".join(sources), top, "stat.json") + "write_json network.json\n"
    synth_s = None
    kept = stamp.is_file() and stamp.read_text().strip() == digest
    if not (reuse_synth and kept and (outdir / "network.json").is_file()):
        stamp.unlink(missing_ok=True)
        (outdir / "synth.ys").write_text(script)
        syn = run_tool("yosys", ["-q", "-l", "synth.log", "synth.ys"], cwd=outdir,
                       step="synth", progress=say)  # fmt: skip
        synth_s = round(syn.seconds, 1)
        stamp.write_text(digest + "\n")
    cells = count_cells(family, read_yosys_stat(outdir / "stat.json"))
    assert family.toolchain.pnr is not None
    sdf = [] if "--no-route" in pnr_args else ["--sdf", "net.sdf"]
    pnr = run_tool(
        family.toolchain.pnr,
        [*DEVICES[board], "--freq", f"{mhz:g}", "--timing-allow-fail", "--json", "network.json",
         "--report", "report.json", *sdf, "--log", "pnr.log", "--quiet", *pnr_args],
        cwd=outdir, step="pnr", progress=say,
    )  # fmt: skip
    report = json.loads((outdir / "report.json").read_text())
    parsed = parse_nextpnr((outdir / "pnr.log").read_text(errors="replace"), report)
    return {
        "yosys_luts": cells["luts"],
        "yosys_ffs": cells["ffs"],
        "placed_luts": parsed.used(family, "luts"),
        "placed_ffs": parsed.used(family, "ffs"),
        "fmax_mhz": round(parsed.fmax, 2) if parsed.fmax is not None else None,
        "pnr_target_mhz": mhz,
        "critical_path": critical_path(report),
        "synth_s": synth_s,
        "pnr_s": round(pnr.seconds, 1),
        "sources_sha256": digest,
        "run": str(outdir),
    }


def sources_sha256(outdir: Path, sources: list[str]) -> str:
    """One SHA-256 over the Verilog ``sources`` (names and contents, in order)."""
    h = hashlib.sha256()
    for src in sources:
        h.update(src.encode() + b"\0" + (outdir / src).read_bytes() + b"\0")
    return h.hexdigest()


def pnr_selftest(
    net: LoweredNetwork, board: str, x_int: Any, outdir: Path, say: Any
) -> dict[str, Any]:
    """The board's self-test top as ``nnlcc compile --build`` makes it."""
    res = board_build(board, net, outdir, x_int=x_int, run_pnr=True, progress=say)
    sdir = outdir / "board" / "selftest"
    report = json.loads((sdir / "nnlcc_selftest_report.json").read_text())
    t = res["timings_s"]
    return {
        "yosys_luts": res["network_estimate"]["luts"],
        "yosys_ffs": res["network_estimate"]["ffs"],
        "placed_luts": res["luts"],
        "placed_ffs": res["ffs"],
        "bram": res["bram"],
        "fmax_mhz": res["fmax_mhz"],
        "pnr_target_mhz": res["pnr_target_mhz"],
        "critical_path": critical_path(report),
        "synth_s": t.get("synth"),
        "pnr_s": t.get("pnr"),
        "run": str(outdir),
    }


def _same_hardware(
    out: Path, tag: str, net: LoweredNetwork, board: str, design: str, rows: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """A row of this run whose design is the same Verilog as ``net``'s (a schedule setting
    that changes nothing, e.g. a fanout bound no register reaches), or None."""
    out.mkdir(parents=True, exist_ok=True)
    probe = out / f"{tag}.v"
    top_for(net).emit(probe, TOP)
    digest = hashlib.sha256(probe.read_bytes()).hexdigest()
    probe.unlink()
    match = next(
        (
            r
            for r in rows
            if r.get("verilog_sha256") == digest
            and r["board"] == board
            and r["design"].startswith(design)
        ),
        None,
    )
    _HASHES[tag] = digest
    return match


_HASHES: dict[str, str] = {}


def _merge(path: Path, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows already in ``path`` (runs may share an output folder) with ``new`` replacing the
    rows of the same board, model, design and schedule."""

    def key(r: dict[str, Any]) -> tuple[str, ...]:
        return (r["board"], r["model"], _passes(r), r["design"], r["schedule"])

    old = json.loads(path.read_text()) if path.is_file() else []
    keys = {key(r) for r in new}
    rows = [r for r in old if key(r) not in keys] + new
    rows.sort(key=lambda r: (r["board"], r["model"], _passes(r), r["design"], r.get("order", 0)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rows, indent=2) + "\n")
    os.replace(tmp, path)  # parallel runs never read a half-written file
    return rows


def _passes(r: dict[str, Any]) -> str:
    """The row's passes before its schedule (the pipeline the network was coded with)."""
    return str(r["pipeline"]).split(",schedule{")[0]


def _n(v: Any) -> str:
    return "—" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| board | model | passes | design | schedule | fanout | latency | FFs (schedule) | of which copies "
        "| model LUTs | placed LUTs | placed FFs | Fmax MHz | target MHz | critical path (first net) |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        cp = r.get("critical_path") or {}
        path = (
            f"`{cp.get('from', '')}` → `{cp.get('to', '')}`, {cp.get('ns')} ns "
            f"({cp.get('first_net_ns')} ns on `{cp.get('first_net', '')}`)"
            if cp
            else "—"
        )
        lines.append(
            f"| {r['board']} | {r['model']} | {_passes(r)} | {r['design']} | `{r['schedule']}` "
            f"| {_n(r['fanout'] or None)} | {r['latency']} | {_n(r['schedule_ffs'])} "
            f"| {_n(r['copy_ffs'])} | {_n(r['model_luts'])} | {_n(r['placed_luts'])} "
            f"| {_n(r['placed_ffs'])} | {_n(r['fmax_mhz'])} | {_n(r['pnr_target_mhz'])} | {path} |"
            + (f" same Verilog as `{r['same_as']}`" if r.get("same_as") else "")
        )
    return "\n".join(lines)


def conditions() -> str:
    """The machine and tool versions the rows were measured with."""
    vers = []
    with tempfile.TemporaryDirectory() as scratch:  # run_tool leaves its output file there
        for tool, args in (("yosys", ["-V"]), ("nextpnr-ecp5", ["--version"]),
                           ("nextpnr-ice40", ["--version"])):  # fmt: skip
            run = run_tool(tool, args, cwd=Path(scratch), step="version", check=False)
            vers.append(run.output.strip().splitlines()[0] if run.output.strip() else tool)
    return (
        f"{datetime.date.today()}, {host.machine()} ({host.system()}, shared 2-core VM), "
        f"Python {host.python_version()}; " + "; ".join(vers) + "; nextpnr's default seed (no "
        "`--seed`: its placement is deterministic for a given netlist)"
    )


def write_results(rows: list[dict[str, Any]], results: Path) -> None:
    path = results / "fmax.json"
    merged = _merge(path, rows)
    text = [
        "# Fmax against latency, flip-flops and LUTs (`benchmarks/fmax.py`)",
        "",
        conditions(),
        "",
        "Network and layer: ECP5 out of context (`nextpnr-ecp5 --out-of-context`, 85F, speed 6),"
        " iCE40 in the serial I/O wrapper of `benchmarks/harness.py` (UP5K, SG48), nextpnr asked"
        " for `target MHz`. Self-test: `board_build` as `nnlcc compile --build` runs it (network"
        " + ROMs + checker + UART reporter), nextpnr asked for the family's schedule target"
        " (`pnr_target_mhz`), the design sized for the board's own clock. `FFs (schedule)`: the"
        " adder graphs' flip-flops (`AdderGraph.register_bits`, which the cost model counts the"
        " same); `of which copies`: the registers duplicated to bound fanout; `fanout`: the"
        " bound (— unbounded); `schedule` `default`: no schedule pass (what `nnlcc compile`"
        " builds: every=1, the family's fanout bound).",
        "",
        table(merged),
        "",
    ]
    (results / "fmax.md").write_text("\n".join(text))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default="ulx3s", choices=sorted(DEVICES))
    ap.add_argument("--model", type=Path, default=ROOT / "examples" / "digits_mlp.onnx")
    ap.add_argument("--pipeline", default="quantize,lcc")
    ap.add_argument("--schedules", nargs="+", default=["every=1,fanout=0", "default", "every=2"])
    ap.add_argument("--designs", default="network,layer,selftest")
    ap.add_argument("--layer", default="fc2")
    ap.add_argument("--mhz", type=float, default=None, help="network/layer target clock")
    ap.add_argument("-o", "--outdir", type=Path, default=Path("build") / "bench_fmax")
    ap.add_argument("--results", type=Path, help="also write fmax.json/.md into this folder")
    ap.add_argument("--table", action="store_true", help="print the table of OUTDIR's rows")
    args = ap.parse_args(argv)
    if args.table:
        print(table(_merge(args.outdir / "fmax.json", [])))
        return 0
    family = get_board(args.board).family
    assert family in (ECP5, ICE40), "the open flows only"
    mhz = args.mhz if args.mhz is not None else pnr_target_mhz(get_board(args.board))
    out = args.outdir
    new: list[dict[str, Any]] = []
    for order, sched in enumerate(args.schedules):
        pipeline = args.pipeline + ("" if sched == "default" else f",schedule{{{sched}}}")
        graph, net, data = compiled(args.model, pipeline, args.board)
        for design in args.designs.split(","):
            name = f"{design} ({args.layer})" if design == "layer" else design
            tag = f"{args.board}_{args.model.stem}_{design}_{re.sub(r'[^a-z0-9]+', '', sched)}"

            def say(msg: str, tag: str = tag) -> None:
                print(f"  [{tag}] {msg}", file=sys.stderr, flush=True)

            if design == "layer":
                layer = next(la for la in graph.matrix_layers() if la.name == args.layer)
                d = one_layer_network(graph, layer, family)
            else:
                d = net
            row = {
                "board": args.board,
                "model": args.model.stem,
                "design": name,
                "schedule": sched,
                "order": order,
                "pipeline": pipeline,
                **schedule_facts(d, args.board),
            }
            t0 = time.perf_counter()
            known = [r for r in _merge(out / "fmax.json", []) if r["model"] == args.model.stem]
            same = _same_hardware(out, tag, d, args.board, design, known)
            if same is not None:  # the Verilog of a row measured in this run: its figures
                row.update({k: v for k, v in same.items() if k not in row and k != "wall_s"})
                row["same_as"] = same["schedule"]
            elif design == "selftest":
                row.update(pnr_selftest(net, args.board, net.quantize_input(data.x_test),
                                        out / tag, say))  # fmt: skip
            else:
                row.update(pnr_alone(d, args.board, out / tag, mhz, say))
            row["wall_s"] = round(time.perf_counter() - t0, 1)
            row["verilog_sha256"] = _HASHES[tag]
            print(json.dumps(row), flush=True)
            new.append(row)
            _merge(out / "fmax.json", [row])
    if args.results is not None:
        write_results(new, args.results)
    print(table(_merge(out / "fmax.json", [])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
