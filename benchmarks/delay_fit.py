"""Fit a family's delay model (:class:`nnlcc.ir.family.AdderDelay` and ``RouteDelay``) to
placed runs of ``benchmarks/fmax.py``.

Usage::

    .venv/bin/python benchmarks/delay_fit.py --family ecp5 RUN_DIR [RUN_DIR ...]
        [--target-mhz 200] [--results benchmarks/results/DATE]

Each RUN_DIR is a network or layer run of ``fmax.py`` (nextpnr's ``report.json`` and
``net.sdf``, the design's node widths in ``design.json``).

* **Route** (``RouteDelay``): every net a flip-flop drives, its readers ``r`` (the cells it
  reaches) and its longest routed delay (the SDF's slow corner), from the runs without a fanout
  bound. Per ``r`` the :data:`PERCENTILE` th percentile (the critical path is the tail of
  thousands of nets); ``base + per_doubling * log2(min(r, saturation))`` fitted by least
  squares over ``r`` (each ``r`` weighted by the square root of its count of nets), the
  saturation (where more readers stop lengthening the route) the best of 2..16.
* **Adder** (``AdderDelay``): every run's critical path is ``overhead + k * (fixed + per_bit *
  w) + extra`` for a run placed with ``every=k`` whose widest adder has ``w`` bits (the
  schedule's own view of its slowest stage), ``extra`` the route model's delay of the
  launching register's readers beyond one reader's. ``per_bit`` is the carry delay
  nextpnr's timing model has for the family (``--per-bit``); ``overhead`` and ``fixed`` (the
  typical routes included) are fitted by least squares over the runs.

The fit and each run's measured and modelled path go to ``delay_fit.json`` (by family) and
``delay_fit.md``; the family table (``compiler/ir/family.py``) stores the coefficients and
names the run (``tests/ir/test_family.py`` checks that they agree).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

SDF_RE = re.compile(r"\(INTERCONNECT (\S+)/(\w+) (\S+)/(\w+) \(([\d.]+):([\d.]+):([\d.]+)\)")
PERCENTILE = 99
"""The percentile of the routes per reader count the route model is fitted to."""
NODE_RE = re.compile(r"(?:^|\.)(l\d+)\.v(\d+)(?:_s\d+)?(?:_c\d+)?_")


def _is_ff(cell: str, port: str) -> bool:
    """A flip-flop's output: ECP5's TRELLIS_FF Q, an iCE40 logic cell holding a DFF."""
    if "$CARRY" in cell or "$nextpnr" in cell:
        return False
    return (port == "Q" and "TRELLIS_FF" in cell) or (port == "O" and "DFF" in cell)


def sdf_nets(sdf: str) -> dict[tuple[str, str], dict[str, float]]:
    """Every routed net: (driver cell, port) -> {sink cell: slowest delay in ns}."""
    nets: dict[tuple[str, str], dict[str, float]] = collections.defaultdict(dict)
    for m in SDF_RE.finditer(sdf):
        sinks = nets[(m.group(1), m.group(2))]
        sinks[m.group(3)] = max(sinks.get(m.group(3), 0.0), float(m.group(7)) / 1000)
    return nets


def route_samples(run: Path) -> list[tuple[int, float]]:
    """(readers, longest delay) of every flip-flop-driven net of a run."""
    nets = sdf_nets((run / "net.sdf").read_text())
    return [(len(s), max(s.values())) for (c, p), s in nets.items() if _is_ff(c, p)]


def fit_route(samples: list[tuple[int, float]], max_readers: int = 32) -> dict[str, Any]:
    """Per reader count the :data:`PERCENTILE` of the routes; ``base + per_doubling *
    log2(min(r, saturation))`` by weighted least squares (each ``r`` by the square root of its
    count of nets), the saturation the one of 2..16 that fits best."""
    by: dict[int, list[float]] = collections.defaultdict(list)
    for r, d in samples:
        if r <= max_readers:
            by[r].append(d)
    rs = sorted(by)
    pct = {r: float(np.percentile(by[r], PERCENTILE)) for r in rs}
    w = np.sqrt([len(by[r]) for r in rs])
    y = np.array([pct[r] for r in rs])
    best: tuple[float, float, float, int] | None = None
    for sat in range(2, 17):
        x = np.stack([np.ones(len(rs)), np.log2(np.minimum(rs, sat))], axis=1)
        coef, *_ = np.linalg.lstsq(x * w[:, None], y * w, rcond=None)
        err = float(np.sum((w * (x @ coef - y)) ** 2))
        if best is None or err < best[0] - 1e-12:
            best = (err, float(coef[0]), float(coef[1]), sat)
    assert best is not None
    _, base, per, sat = best
    base, per = round(base, 3), round(per, 3)
    rows = [
        {"readers": r, "nets": len(by[r]), "ns": round(pct[r], 3),
         "model_ns": round(base + per * math.log2(min(r, sat)), 3)}
        for r in rs
    ]  # fmt: skip
    return {
        "base": base,
        "per_doubling": per,
        "saturation": sat,
        "percentile": PERCENTILE,
        "by_readers": rows,
    }


def path_sample(run: Path) -> dict[str, Any]:
    """The critical path of a run (total, the launching register's route and its readers)
    and the schedule it was placed with: adder levels per stage (``every``) and the widest
    adder of the design."""
    report = json.loads((run / "report.json").read_text())
    design = json.loads((run / "design.json").read_text())
    segs = report["critical_paths"][0]["path"]
    total = sum(s["delay"] for s in segs)
    launch = segs[0]["from"]["cell"]
    first = next(s for s in segs if s["type"] == "routing")
    nets = sdf_nets((run / "net.sdf").read_text())
    readers = len(nets.get((launch, segs[0]["to"].get("port", "Q")), {})) or 1
    budgets = [la["stage_budget"] for la in design.values()]
    assert all(b["fixed"] == 1 and b["per_bit"] == 0 for b in budgets), "every=k runs only"
    # clock to out, the logic leaving the last adder, its route into the register, setup
    ends = segs[0]["delay"] + sum(x["delay"] for x in segs[-3:])
    return {
        "run": run.name,
        "total_ns": round(total, 3),
        "ends_ns": round(ends, 3),
        "launch_route_ns": round(first["delay"], 3),
        "launch_readers": readers,
        "every": int(max(b["budget"] for b in budgets)),
        "widest": max(max(la["widths"]) for la in design.values()),
        "fmax_mhz": round(1000.0 / total, 2),
    }


def _route(route: dict[str, Any], readers: int) -> float:
    sat = route["saturation"]
    return float(route["base"] + route["per_doubling"] * math.log2(min(readers, sat)))


def _extra(route: dict[str, Any], readers: int) -> float:
    """The route of ``readers`` beyond that of one reader (what a fanout bound can save)."""
    return _route(route, readers) - _route(route, 1)


def fit_adder(paths: list[dict[str, Any]], per_bit: float, route: dict[str, Any]) -> dict[str, Any]:
    """``overhead`` and ``fixed`` by least squares on ``total - per_bit * every * widest -
    extra route of the launching register's readers = overhead + every * fixed``."""
    x = np.array([[1.0, p["every"]] for p in paths])
    y = np.array(
        [
            p["total_ns"] - per_bit * p["every"] * p["widest"] - _extra(route, p["launch_readers"])
            for p in paths
        ]
    )
    (overhead, fixed), *_ = np.linalg.lstsq(x, y, rcond=None)
    return {
        "overhead": round(float(overhead), 3),
        "fixed": round(float(fixed), 3),
        "per_bit": per_bit,
    }


def model_path(p: dict[str, Any], adder: dict[str, Any], route: dict[str, Any]) -> float:
    """The model's path: overhead, ``every`` adders of the widest width, and the launching
    register's route beyond one reader's."""
    k = p["every"]
    return (
        adder["overhead"]
        + k * (adder["fixed"] + adder["per_bit"] * p["widest"])
        + _extra(route, p["launch_readers"])
    )


def fit(runs: list[Path], route_runs: list[Path], per_bit: float) -> dict[str, Any]:
    samples = [s for r in route_runs for s in route_samples(r)]
    route = fit_route(samples)
    paths = [path_sample(r) for r in runs]
    adder = fit_adder(paths, per_bit, route)
    for p in paths:
        p["model_ns"] = round(model_path(p, adder, route), 3)
        p["error_pct"] = round(100 * (p["model_ns"] - p["total_ns"]) / p["total_ns"], 1)
    return {"route": route, "adder": adder, "paths": paths,
            "route_runs": [r.name for r in route_runs]}  # fmt: skip


def markdown(family: str, res: dict[str, Any]) -> str:
    a, r = res["adder"], res["route"]
    lines = [
        f"## {family}",
        "",
        f"Adder: overhead {a['overhead']} ns, fixed {a['fixed']} ns, per bit {a['per_bit']} ns. "
        f"Route: {r['base']} + {r['per_doubling']} × log2(min(readers, {r['saturation']})) ns "
        f"(the {r['percentile']}th percentile of the nets of {', '.join(res['route_runs'])}).",
        "",
        "| run | every | widest | launch readers | launch route ns | measured ns | model ns "
        "| error % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in res["paths"]:
        lines.append(
            f"| {p['run']} | {p['every']} | {p['widest']} | {p['launch_readers']} "
            f"| {p['launch_route_ns']} | {p['total_ns']} | {p['model_ns']} | {p['error_pct']} |"
        )
    lines += [
        "",
        f"| readers | nets | p{r['percentile']} ns | model ns |",
        "|---:|---:|---:|---:|",
    ]
    for row in r["by_readers"]:
        lines.append(f"| {row['readers']} | {row['nets']} | {row['ns']} | {row['model_ns']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", required=True)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--route-runs", nargs="*", type=Path, help="default: the runs")
    ap.add_argument(
        "--per-bit",
        type=float,
        required=True,
        help="carry delay per bit, ns (nextpnr's: ECP5 0.0355 = 0.071 per CCU2C; iCE40 0.278)",
    )
    ap.add_argument("--results", type=Path)
    args = ap.parse_args(argv)
    res = fit(args.runs, args.route_runs or args.runs, args.per_bit)
    print(markdown(args.family, res))
    if args.results is not None:
        path = args.results / "delay_fit.json"
        data = json.loads(path.read_text()) if path.is_file() else {}
        data[args.family] = res
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n")
        text = "# Delay model fit (`benchmarks/delay_fit.py`)\n\n" + "".join(
            markdown(f, data[f]) + "\n" for f in sorted(data)
        )
        (args.results / "delay_fit.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
