"""LUTs and Fmax of the same model coded with CSD and with LCC, placed and routed on one board.

Usage::

    .venv/bin/python benchmarks/resources.py [--model examples/digits_mlp.onnx] [--board ulx3s]
        [--pipelines "quantize,csd;quantize,lcc"] [--no-pnr] [-o build/bench_resources]

Each pipeline is compiled with the driver's own steps (same passes, same data), built with
:func:`nnlcc.boards.board_build` (a real nextpnr run of the self-test top on iCE40/ECP5, the
yosys estimate on xc7), and one Markdown table compares them. ``network LUTs`` is the yosys
figure for the network alone (what the coding changes); ``placed LUTs`` and ``Fmax`` are
nextpnr's for the whole self-test top (network + test-vector ROMs + checker).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from nnlcc.boards import board_build, get_board
from nnlcc.driver import accuracy_report, load_data, load_model, resolve_pipeline, run_passes
from nnlcc.errors import NnlccError
from nnlcc.ir.lower import lower_network
from nnlcc.passes import format_pipeline

ROOT = Path(__file__).resolve().parents[1]


def build_one(model: Path, pipeline: str, board: str, outdir: Path, pnr: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    graph = load_model(model)
    passes = resolve_pipeline(pipeline)
    data = load_data(graph, model, None, 0)
    run_passes(graph, passes, data, board=board)
    net = lower_network(graph)
    compile_s = time.perf_counter() - t0
    adders = sum(layer.graph.adders for layer in net.layers)
    res = board_build(
        board,
        net,
        outdir,
        x_int=net.quantize_input(data.x_test),
        run_pnr=pnr,
        synth=True,  # the yosys figures of the network alone (the default is the cost model)
        progress=lambda m: print(f"  [{pipeline}] {m}", file=sys.stderr, flush=True),
    )
    acc = accuracy_report(graph, net, data)
    return {
        "pipeline": pipeline,
        "pipeline_full": format_pipeline(passes),
        "sqnr_db": acc.sqnr_db,
        "accuracy": acc.golden,
        "adders": adders,
        "compile_s": round(compile_s, 2),
        "resources": res,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| pipeline | SQNR dB | accuracy | adders | network LUTs (yosys) | network FFs "
        "| placed LUTs | placed FFs | BRAM | Fmax MHz | synth+pnr s |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        res = r["resources"]
        est = res.get("network_estimate", res)
        t = res["timings_s"]
        placed = not res["estimate"]
        lines.append(
            f"| `{r['pipeline']}` | {r['sqnr_db']} | {r['accuracy']} | {r['adders']} | {est['luts']} | {est['ffs']} "
            f"| {res['luts'] if placed else '—'} | {res['ffs'] if placed else '—'} "
            f"| {res['bram'] if placed else '—'} "
            f"| {res['fmax_mhz'] if res['fmax_mhz'] is not None else '—'} "
            f"| {t.get('synth', t.get('estimate', 0)) + t.get('pnr', 0):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "examples" / "digits_mlp.onnx")
    ap.add_argument("--board", default="ulx3s")
    ap.add_argument("--pipelines", default="quantize,csd;quantize,lcc")
    ap.add_argument("--no-pnr", action="store_true", help="yosys estimates only")
    ap.add_argument("-o", "--outdir", type=Path, default=Path("build") / "bench_resources")
    args = ap.parse_args(argv)
    try:
        board = get_board(args.board)
        rows = []
        for pipeline in filter(None, (p.strip() for p in args.pipelines.split(";"))):
            tag = pipeline.replace(",", "_").replace("{", "").replace("}", "").replace("=", "")
            rows.append(
                build_one(args.model, pipeline, board.name, args.outdir / tag, not args.no_pnr)
            )
    except NnlccError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    args.outdir.mkdir(parents=True, exist_ok=True)
    (args.outdir / "resources.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(
        f"{args.model.name} on {board.name} ({board.device}, {board.clock_mhz:g} MHz board clock)\n"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
