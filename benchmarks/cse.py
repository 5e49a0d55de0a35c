"""Common-subexpression sharing of the ``csd`` pass: adders, seconds and peak memory by layer size.

Usage::

    .venv/bin/python benchmarks/cse.py [--quick] [--old-limit 300] [-o FILE]

For Gaussian weight matrices (16x64 up to a 512x4608 conv matrix) at 8 and 9 bits, three
ways to sum the CSD digits:

- ``plain``: no sharing (``csd{cse=False}``: every row's digits minus one);
- ``old``: the exact greedy (one most-frequent pair at a time, every pair of every row) with
  no budget, as the pass would run it if it had no budget -- the shipped pass skipped sharing
  altogether above 500 k search steps; run only while it finishes within ``--old-limit``
  seconds (it is then skipped for larger sizes of the same bit width);
- ``new``: the pass as it is now (``csd{cse=True}``, default ``cse_effort``): the exact greedy
  while its search fits the effort, else the windowed batched greedy (``search`` = partial).

Every run is a fresh process (so ``peak_mb``, its peak resident memory, is its own); ``cse_s``
times the sharing alone, ``lower_s`` the whole lowering (sharing + adder trees), both wall
clock, with the CPU seconds of the process next to them (the machine may be shared).  Prints a
table and writes JSON (default ``benchmarks/results/<today>/cse.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.csd import csd_adders
from nnlcc.ir.fixed_point import quantize_weights
from nnlcc.passes.csd import csd_terms
from nnlcc.passes.shift_add import (
    CSE_EFFORT,
    _eliminate_common_pairs,
    share_pairs,
    sum_rows,
)

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(16, 64), (32, 64), (64, 64), (128, 128), (256, 256), (512, 4608)]
QUICK_SIZES = [(16, 64), (32, 64), (64, 64)]
BITS = [8, 9]


def _weights(rows: int, cols: int, bits: int) -> np.ndarray:
    w = np.random.default_rng(rows * 100_003 + cols).normal(size=(rows, cols))
    return quantize_weights(w, bits)[0]


def _peak_mb() -> float:
    """This process's peak resident memory: VmHWM (reset by exec, unlike ru_maxrss, which a
    spawned child inherits from its parent), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _run(rows: int, cols: int, bits: int, method: str, out: Any) -> None:
    """Child process: lower one matrix with one method, send the facts back."""
    w_int = _weights(rows, cols, bits)
    graph = AdderGraph.with_inputs([(-128, 127)] * cols)
    cpu0, t0 = time.process_time(), time.perf_counter()
    table = csd_terms(w_int, list(range(cols)))
    facts: dict[str, Any] = {"terms": len(table.row), "search_work": table.search_work()}
    if method == "old":
        rows_ = _eliminate_common_pairs(graph, table.to_rows())
        facts["search"] = "full"
    else:
        rows_, stats = share_pairs(graph, table, CSE_EFFORT)
        facts.update(search=stats.search, pairs_shared=stats.pairs_shared, note=stats.reason)
    cse_s = time.perf_counter() - t0
    sum_rows(graph, rows_)
    facts.update(
        adders=graph.adders,
        cse_s=round(cse_s, 2),
        lower_s=round(time.perf_counter() - t0, 2),
        cpu_s=round(time.process_time() - cpu0, 2),
        peak_mb=_peak_mb(),
    )
    out.send(facts)


def measure(rows: int, cols: int, bits: int, method: str, limit: float) -> dict[str, Any] | None:
    """One run in a fresh process; None if it took longer than ``limit`` seconds."""
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_run, args=(rows, cols, bits, method, send))
    proc.start()
    ready = recv.poll(limit)
    facts = recv.recv() if ready else None
    if not ready:
        proc.kill()
    proc.join()
    return facts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the three small sizes")
    ap.add_argument("--old-limit", type=float, default=300.0, help="seconds for the old greedy")
    ap.add_argument("--new-limit", type=float, default=1800.0, help="seconds for the new search")
    ap.add_argument("-o", "--output", type=Path, help="JSON file (default: results/<today>/)")
    args = ap.parse_args()
    out = args.output or (
        ROOT / "benchmarks" / "results" / datetime.date.today().isoformat() / "cse.json"
    )
    sizes = QUICK_SIZES if args.quick else SIZES
    results: list[dict[str, Any]] = []
    head = (
        f"{'shape':>9} {'bits':>4} {'terms':>8} {'plain':>8} {'old':>8} {'old s':>7}"
        f" {'new':>8} {'new s':>7} {'new MB':>7} {'search':>7} {'new/old':>7} {'new/plain':>9}"
    )
    print(head, flush=True)
    for bits in BITS:
        old_ok = True
        for rows, cols in sizes:
            w_int = _weights(rows, cols, bits)
            plain = csd_adders(w_int)
            old = measure(rows, cols, bits, "old", args.old_limit) if old_ok else None
            old_ok = old is not None
            new = measure(rows, cols, bits, "new", args.new_limit)
            res: dict[str, Any] = {
                "shape": [rows, cols],
                "bits": bits,
                "plain_adders": plain,
                "old": old,
                "old_skipped": None if old else f"did not finish within {args.old_limit:g} s",
                "new": new,
            }
            results.append(res)
            assert new is not None, f"new search did not finish on {rows}x{cols}"

            def cell(r: dict[str, Any] | None, key: str, w: int) -> str:
                return f"{r[key]:>{w}}" if r else f"{'-':>{w}}"

            ratio_old = f"{new['adders'] / old['adders']:.3f}" if old else "-"
            print(
                f"{rows:>4}x{cols:<4} {bits:>4} {new['terms']:>8} {plain:>8}"
                f" {cell(old, 'adders', 8)} {cell(old, 'cse_s', 7)}"
                f" {new['adders']:>8} {new['cse_s']:>7} {new['peak_mb']:>7} {new['search']:>7}"
                f" {ratio_old:>7} {new['adders'] / plain:>9.3f}",
                flush=True,
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "cse",
        "date": datetime.date.today().isoformat(),
        "cse_effort": CSE_EFFORT,
        "old_limit_s": args.old_limit,
        "results": results,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
