"""LCC against CSD, da4ml and alkaid at equal SQNR: additions per matrix entry, reached SQNR, seconds.

SQNR is always the whole-matrix one, ``10 log10(|W|_F^2 / |W - W_hat|_F^2)`` (equal to the
output SQNR for i.i.d. Gaussian inputs), measured on the exact implemented matrix.

* ``lcc:*`` rows: the ``lcc`` pass on the real matrix; ``plain`` is the published FP, the
  ``fp`` rows add one idea each (ablation), ``fs`` is fully sequential.  ``guard_bits=40``
  means no LSB floor (exact, unbounded widths, as published); the default floor (6 guard
  bits) bounds the adder widths, its cost in adders is its own row.  ``+seeds`` offers every
  row the two-term sums ``x_i ± x_j`` from the first round; ``+LUT objective`` (the default)
  picks orientation and slice width by estimated ECP5 LUTs instead of adders: the ``est.
  LUTs`` column (exact partial sums, 8-bit inputs) shows what each objective buys.
* ``csd``: ``W`` scaled by the smallest real factor whose rounding reaches the target (the
  fairest scale for a fixed-point baseline; a power-of-two scale wastes up to 6 dB), written
  in CSD, ``nonzeros - 1`` adders per row (no subexpression sharing: da4ml is the strong
  sharing baseline).
* ``da4ml``: the same integer matrix given to ``da4ml.cmvm.solve`` (its adder count); skipped
  where it would take more than about three minutes (measured times, see the notes); run with
  its default (strongest) settings.
* ``alkaid``: da4ml's successor, ``alkaid.cmvm.cmvm_solve`` with default settings on the same
  integers (8-bit signed input ranges), rebuilt as nnlcc's exact shift-add code
  (:class:`nnlcc.passes.alkaid.AlkaidCode`) and counted there (opcodes 0/1).
* ``lowrank16+noise 128x256``: a rank-16 matrix plus Gaussian noise, the shape trained weights
  often have (issue 13).

Usage: ``python benchmarks/lcc.py [--quick] [--json FILE] [--sqnr 45]``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.csd import csd_adders
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.passes.lcc import Lcc, LccCode
from nnlcc.passes.pricing import Pricing, price_code

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "digits_mlp.onnx"

#: da4ml runs only up to this many matrix entries (measured on 2 shared cores: 64x64 7 s,
#: 1024x10 35 s, 256x64 more than 10 minutes: its time grows fast with the row count).
DA4ML_MAX_ENTRIES = 1024 * 10
#: Lower LCC codes to an adder graph (for depth and widths) up to this many entries (above
#: 256x256 only the default variant: lowering a million adders takes a while in Python).
LOWER_MAX_ENTRIES = 1024 * 1024

#: Price (lower, truncate, estimate ECP5 LUTs) LCC codes up to this many entries.
PRICE_MAX_ENTRIES = 256 * 256

#: (label, pass options); each row adds one idea to the one above it.
LCC_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("lcc:plain (published FP)", {"algo": "plain", "transpose": "no"}),
    (
        "lcc:fp identity rows",
        {
            "budget": False,
            "history": 1,
            "guard_bits": 40,
            "subrounds": 1,
            "lookahead": 1,
            "transpose": "no",
            "seeds": "no",
        },
    ),
    (
        "lcc:fp +global budget",
        {
            "history": 1,
            "guard_bits": 40,
            "subrounds": 1,
            "lookahead": 1,
            "transpose": "no",
            "seeds": "no",
        },
    ),
    (
        "lcc:fp +codeword history",
        {"guard_bits": 40, "subrounds": 1, "lookahead": 1, "transpose": "no", "seeds": "no"},
    ),
    ("lcc:fp +LSB floor", {"subrounds": 1, "lookahead": 1, "transpose": "no", "seeds": "no"}),
    ("lcc:fp +4 sub-rounds", {"lookahead": 1, "transpose": "no", "seeds": "no"}),
    ("lcc:fp +look-ahead 2", {"transpose": "no", "seeds": "no"}),
    ("lcc:fp +transposed if wide", {"seeds": "no", "objective": "adders"}),
    ("lcc:fp +seeds x_i±x_j", {"objective": "adders"}),
    ("lcc:fp +LUT objective (default)", {}),
    ("lcc:fp +untiled rows", {"tile_rows": 0}),
    ("lcc:fp +look-ahead 4", {"lookahead": 4}),
    ("lcc:fs (sequential)", {"algo": "fs"}),
]
DEFAULT_VARIANT = "lcc:fp +LUT objective (default)"
#: On big matrices only these rows run (the ablation is shown on the smaller ones).
BIG_VARIANTS = (
    "lcc:plain (published FP)",
    "lcc:fp +look-ahead 2",
    DEFAULT_VARIANT,
    "lcc:fp +untiled rows",
    "lcc:fs (sequential)",
)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def quantize_to_sqnr(w: np.ndarray, target: float) -> tuple[np.ndarray, float]:
    """Integers ``round(w * s)`` with the smallest real scale ``s`` reaching ``target`` dB."""
    peak = float(np.max(np.abs(w)))
    lo, hi = 1.0 / peak, 2.0**24 / peak
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if sqnr_db(w, np.round(w * mid) / mid) >= target:
            hi = mid
        else:
            lo = mid
    return np.round(w * hi).astype(np.int64), hi


def run_da4ml(w_int: np.ndarray) -> tuple[int, float, int]:
    """Adders, seconds and latency (adder stages) of da4ml's CMVM solution for ``w_int``."""
    from da4ml.cmvm import solve

    t0 = time.perf_counter()
    # da4ml's default settings (its strongest: search_all_decompose_dc=True)
    sol = solve(np.ascontiguousarray(w_int.T, dtype=np.float32))
    dt = time.perf_counter() - t0
    x = np.random.default_rng(0).integers(-100, 100, size=(3, w_int.shape[1]))
    got = np.stack([np.asarray(sol(xx.astype(np.float64))) for xx in x])
    if not np.allclose(got, x @ w_int.T):
        raise AssertionError("da4ml solution does not compute the given matrix")
    adds = sum(1 for s in sol.solutions for op in s.ops if op.opcode in (0, 1))
    return adds, dt, sum(_adder_depth(s) for s in sol.solutions)


def run_alkaid(w_int: np.ndarray) -> tuple[int, float]:
    """Adders and seconds of alkaid's CMVM solution for ``w_int`` (default settings), rebuilt
    as nnlcc's exact shift-add code (:class:`nnlcc.passes.alkaid.AlkaidCode`, which checks it
    computes ``w_int``); the inputs are 8-bit signed integers."""
    from alkaid.cmvm import cmvm_solve

    from nnlcc.passes.alkaid import AlkaidCode, AlkaidStage

    t0 = time.perf_counter()
    combs = cmvm_solve(
        np.ascontiguousarray(w_int.T, dtype=np.float32),
        qintervals=[(-128.0, 127.0, 1.0)] * w_int.shape[1],
    )
    dt = time.perf_counter() - t0
    code = AlkaidCode(w_int=w_int, frac=0, stages=[AlkaidStage.from_comb(c) for c in combs])
    code.check()
    return code.adders, dt


def _adder_depth(comb: Any) -> int:
    """Longest chain of additions in one da4ml stage (opcodes 0/1 add/sub, -1 input)."""
    d: list[int] = []
    for op in comb.ops:
        if op.opcode in (0, 1):
            d.append(max(d[op.id0], d[op.id1]) + 1)
        elif op.id0 >= 0 and op.opcode != -1 and op.id0 < len(d):
            d.append(d[op.id0])
        else:
            d.append(0)
    return max((d[i] for i in comb.out_idxs if i >= 0), default=0)


def lcc_row(w: np.ndarray, target: float, opts: dict[str, Any]) -> dict[str, Any]:
    """One LCC design: the pass's options ``opts`` (``objective=luts``, the default, picks the
    orientation and slice width by estimated ECP5 LUTs, the others by adders); its estimated
    LUTs (:func:`nnlcc.passes.pricing.price_code`, 8-bit inputs) where the matrix is small
    enough to lower."""
    t0 = time.perf_counter()
    p = Lcc(sqnr_db=target, truncate="off", **opts)
    code: LccCode = p.build_priced(w, Pricing()) if p.objective == "luts" else p.build(w)
    dt = time.perf_counter() - t0
    s = code.summary()
    row: dict[str, Any] = {
        "sqnr_db": s["sqnr_db"],
        "adders": code.adders,
        "seconds": round(dt, 2),
        "depth": s["depth"],
        "factors": s["factors_max"],
    }
    if w.size <= PRICE_MAX_ENTRIES:
        row["est_luts"] = price_code(code, Pricing(), w, target).luts
    if w.size <= LOWER_MAX_ENTRIES and (w.size <= 256 * 256 or not opts):
        g = AdderGraph.with_inputs([(-128, 127)] * w.shape[1])
        t1 = time.perf_counter()
        terms = code.lower(g, list(range(w.shape[1])))
        g.outputs = [t.node for t in terms if t.node is not None]
        row["lower_seconds"] = round(time.perf_counter() - t1, 2)
        if g.adders != code.adders:
            raise AssertionError("lowered adder count differs from the code's")
        row["max_bits"] = g.max_bits
        row["depth"] = g.depth
    if not s["target_reached"]:
        row["note"] = s["note"]
    return row


def baseline_rows(w: np.ndarray, target: float) -> list[tuple[str, dict[str, Any]]]:
    w_int, scale = quantize_to_sqnr(w, target)
    reached = sqnr_db(w, w_int / scale)
    bits = int(np.max(np.abs(w_int))).bit_length() + 1
    out: list[tuple[str, dict[str, Any]]] = [
        (
            "csd",
            {
                "sqnr_db": round(reached, 3),
                "adders": csd_adders(w_int),
                "seconds": 0.0,
                "note": f"{bits}-bit integers, real scale",
            },
        ),
    ]
    if w.size <= DA4ML_MAX_ENTRIES:
        try:
            adds, dt, lat = run_da4ml(w_int)
            out.append(
                (
                    "da4ml",
                    {
                        "sqnr_db": round(reached, 3),
                        "adders": adds,
                        "seconds": round(dt, 2),
                        "depth": lat,
                    },
                )
            )
        except ImportError:
            out.append(("da4ml", {"note": "da4ml not installed"}))
    else:
        out.append(("da4ml", {"note": f"skipped: {w.shape[0]}x{w.shape[1]} would take > 3 min"}))
    if w.size <= DA4ML_MAX_ENTRIES:
        try:
            adds, dt = run_alkaid(w_int)
            out.append(
                ("alkaid", {"sqnr_db": round(reached, 3), "adders": adds, "seconds": round(dt, 2)})
            )
        except ImportError:
            out.append(("alkaid", {"note": "alkaid not installed"}))
    else:
        out.append(("alkaid", {"note": f"skipped: {w.shape[0]}x{w.shape[1]} (time)"}))
    return out


def matrices(quick: bool) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(2024)
    shapes = [(64, 64), (256, 64), (1024, 10), (256, 256)]
    if not quick:
        shapes += [(128, 1152), (1024, 1024), (512, 4608)]
    out = [(f"gauss {r}x{c}", rng.standard_normal((r, c))) for r, c in shapes]
    # trained weights are often near low rank with heavy tails (issue 13): rank 16 plus noise
    low = rng.standard_normal((128, 16)) @ rng.standard_normal((16, 256)) / 4.0
    out.append(("lowrank16+noise 128x256", low + 0.1 * rng.standard_normal((128, 256))))
    if EXAMPLE.exists():
        try:
            from nnlcc.frontends.onnx import load_onnx

            g = load_onnx(EXAMPLE)
            out += [
                (f"digits {layer.name} {layer.shape[0]}x{layer.shape[1]}", layer.weight)
                for layer in g.layers
            ]
        except ImportError:
            pass
    return out


def variants_for(w: np.ndarray, quick: bool) -> list[tuple[str, dict[str, Any]]]:
    if w.size <= 256 * 256:
        return LCC_VARIANTS
    if quick:
        return [v for v in LCC_VARIANTS if v[0] == DEFAULT_VARIANT]
    return [v for v in LCC_VARIANTS if v[0] in BIG_VARIANTS]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a subset that runs in < 5 minutes")
    ap.add_argument("--json", type=Path, help="write the rows as JSON")
    ap.add_argument("--sqnr", type=float, default=45.0, help="target SQNR in dB (default 45)")
    args = ap.parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log file: do not squeeze the table to 80 columns
        console = Console(width=200)
    rows: list[dict[str, Any]] = []
    Lcc(sqnr_db=30).build(np.random.default_rng(0).standard_normal((16, 8)))  # numba warm-up
    for algo in ("plain", "fs"):
        Lcc(sqnr_db=30, algo=algo).build(np.random.default_rng(0).standard_normal((16, 8)))

    def emit(matrix: str, w: np.ndarray, method: str, fn: Callable[[], dict[str, Any]]) -> None:
        r = {
            "matrix": matrix,
            "rows": w.shape[0],
            "cols": w.shape[1],
            "method": method,
            "target_db": args.sqnr,
            **fn(),
        }
        if "adders" in r:
            r["adds_per_entry"] = round(r["adders"] / w.size, 4)
        r["peak_rss_mib"] = round(peak_rss_mib(), 1)
        rows.append(r)
        console.print(
            f"{matrix:24s} {method:36s} {r.get('adds_per_entry', '-')!s:>8} "
            f"{r.get('sqnr_db', '-')!s:>8} dB {r.get('seconds', '-')!s:>7} s "
            f"{r.get('note', '')}"
        )

    for name, w in matrices(args.quick):
        for method, res in baseline_rows(w, args.sqnr):
            emit(name, w, method, lambda res=res: res)
        for label, opts in variants_for(w, args.quick):
            emit(name, w, label, lambda w=w, opts=opts: lcc_row(w, args.sqnr, opts))

    table = Table(
        title=f"LCC vs CSD vs da4ml at {args.sqnr:g} dB whole-matrix SQNR "
        "(adds/entry = adders / (rows*cols); lower is better)"
    )
    for col in (
        "matrix",
        "method",
        "target dB",
        "reached dB",
        "adders",
        "adds/entry",
        "vs CSD",
        "depth",
        "max bits",
        "est. LUTs",
        "seconds",
        "note",
    ):
        table.add_column(col, justify="left" if col in ("matrix", "method", "note") else "right")
    csd: dict[str, int] = {r["matrix"]: r["adders"] for r in rows if r["method"] == "csd"}
    for r in rows:
        ratio = f"{csd[r['matrix']] / r['adders']:.2f}x" if r.get("adders") else "-"
        table.add_row(
            r["matrix"],
            r["method"],
            f"{r['target_db']:g}",
            str(r.get("sqnr_db", "-")),
            str(r.get("adders", "-")),
            str(r.get("adds_per_entry", "-")),
            ratio,
            str(r.get("depth", "-")),
            str(r.get("max_bits", "-")),
            str(r.get("est_luts", "-")),
            str(r.get("seconds", "-")),
            r.get("note", ""),
        )
    console.print(table)
    console.print(
        f"peak memory (max RSS of this process): {peak_rss_mib():.0f} MiB; "
        f"{platform.processor() or platform.machine()}, python {sys.version.split()[0]}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"sqnr_db": args.sqnr, "rows": rows, "peak_rss_mib": peak_rss_mib()}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
