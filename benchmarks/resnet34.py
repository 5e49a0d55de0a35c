"""ResNet-34 at full scale: ``nnlcc compile resnet34.onnx --report-only`` timed end to end,
with ``--jobs 1`` (every task in one process) and ``--jobs 2`` (a local Dask cluster of two
worker processes), or the ``--jobs`` counts given.

Runs the product path (frontend with batch-norm folding, quantize on random calibration
images, the matrix pass on all 36 convolutions and the 1000-way dense layer, report.json) on
the seeded ResNet-34 of ``examples/resnet34.py`` (exported on first use into ``build/``), each
``--jobs`` count in a fresh process (numba's compile caches and the workers' start-up are
part of the bill), and prints per matrix layer: shape ``Cout x (kh*kw*Cin)``, adders of the
pass, plain 8-bit CSD adders (the baseline, no sharing), their ratio, the seconds the pass's
task spent on the layer and its peak memory (of the process that ran it: the ``task:`` lines
of ``-v``); then per ``--jobs`` count the wall time, the CPU time of the run and all its
worker processes, the speed-up over the first count, and whether the report.json equals the
first one's apart from timings.  The golden integer model of a 21.8 M weight network is not
evaluated in --report-only (see nnlcc.report.rows).

Usage: ``python benchmarks/resnet34.py [--quick] [--jobs N ...] [--json FILE] [--passes P]``;
``--quick`` compiles only the layers up to the first stage-2 block (a few seconds of LCC).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nnlcc.driver import CompileOptions, compile_model
from nnlcc.examples import resnet34
from nnlcc.examples.onnx_export import export_onnx

_TASK = re.compile(r"^task: (\S+) (\S+): ([\d.]+) s, peak (\d+) MB")


def _quick_model(path: Path, out: Path) -> Path:
    """ResNet-34 cut after stage 1 (stem, max pool, 3 blocks) with the average pool and a
    64 -> 1000 classifier: the same layer kinds, 8 matrix layers, seconds to compile."""
    import torch
    from torch import nn

    full = resnet34.seeded_model()

    class Cut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1, self.maxpool = full.conv1, full.bn1, full.maxpool
            self.layer1, self.avgpool = full.layer1, full.avgpool
            self.fc = nn.Linear(64, 1000)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.layer1(self.maxpool(torch.relu(self.bn1(self.conv1(x)))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return export_onnx(
        Cut().eval(),
        resnet34.INPUT_SHAPE,
        out,
        input_name="image",
        output_name="logits",
        keep_batchnorm=True,
    )


def _cpu_seconds() -> float:
    """User and system CPU seconds of this process and its reaped children (a local
    cluster's worker processes are the run's children, reaped when the cluster stops)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(model: Path, passes: str | None, outdir: Path, jobs: int) -> dict[str, Any]:
    """Compile report-only with ``jobs``; report.json's data, its per-layer task seconds and
    peak memory (from the ``task:`` lines of the matrix pass), wall and CPU seconds."""
    tasks: dict[str, tuple[float, float]] = {}

    def log(msg: str) -> None:
        m = _TASK.match(msg)
        if m and m.group(1) not in ("quantize", "lower", "baseline", "sweep"):
            tasks[m.group(2)] = (float(m.group(3)), float(m.group(4)))
        if not m or m.group(1) not in ("lower", "baseline"):
            print(f"{time.perf_counter() - t0:7.1f}s {msg}", file=sys.stderr, flush=True)

    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    opts = CompileOptions(model=model, passes=passes, report_only=True, outdir=outdir, jobs=jobs)
    report = compile_model(opts, log=log).to_json()  # report.json's data
    return {
        "report": report,
        "tasks": tasks,
        "wall": time.perf_counter() - t0,
        "cpu": _cpu_seconds() - cpu0,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _untimed(o: Any) -> Any:
    """report.json's data without its timings (what must not differ between --jobs counts)."""
    if isinstance(o, dict):
        return {k: _untimed(v) for k, v in o.items() if k not in ("seconds", "timings_s", "outdir")}
    if isinstance(o, list):
        return [_untimed(v) for v in o]
    return o


def _one(model: Path, args: argparse.Namespace, jobs: int, tmp: Path) -> dict[str, Any]:
    """One ``--jobs`` count in a fresh process (this script with ``--child``)."""
    out = tmp / f"jobs{jobs}.json"
    cmd = [sys.executable, __file__, "--child", str(jobs), "--onnx", str(model), "-o", str(out)]
    subprocess.run([*cmd, *(["--passes", args.passes] if args.passes else [])], check=True)
    found: dict[str, Any] = json.loads(out.read_text())
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="ResNet-34 cut after stage 1")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="--jobs counts to time")
    ap.add_argument("--json", type=Path, help="write the rows and totals as JSON")
    ap.add_argument("--passes", help="pass pipeline (default: nnlcc's default pipeline)")
    ap.add_argument("--onnx", type=Path, default=resnet34.DEFAULT_OUT, help="model path")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one run, in this process
    ap.add_argument("-o", type=Path, help=argparse.SUPPRESS)  # where --child writes its run
    args = ap.parse_args(argv)

    if args.child is not None:
        with tempfile.TemporaryDirectory() as tmp:
            found = run(args.onnx, args.passes, Path(tmp) / "out", args.child)
        args.o.write_text(json.dumps(found))
        print(
            f"--jobs {args.child}: wall {found['wall']:.1f} s, CPU {found['cpu']:.1f} s,"
            f" load {_load()}",
            file=sys.stderr,
            flush=True,
        )
        return 0
    model = resnet34.ensure(args.onnx)
    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            model = _quick_model(model, Path(tmp) / "resnet34_stage1.onnx")
        runs = {jobs: _one(model, args, jobs, Path(tmp)) for jobs in args.jobs}

    first = runs[args.jobs[0]]
    report, tasks = first["report"], first["tasks"]
    rows = []
    for r in report["layers"]:
        if r["kind"] not in ("conv", "dense"):
            continue
        csd = r["csd_baseline_adders"]
        seconds, peak = tasks.get(r["name"], (float("nan"), float("nan")))
        rows.append(
            {
                "layer": r["name"],
                "kind": r["kind"],
                "shape": r["shape"],
                "kernel": r.get("kernel"),
                "stride": r.get("stride"),
                "adders": r["adders"],
                "csd_adders": csd,
                "csd_over_lcc": round(csd / max(r["adders"], 1), 3),
                "adders_per_weight": r["adders_per_weight"],
                "weight_sqnr_db": r.get("weight_sqnr_db"),
                "seconds": round(seconds, 2),
                "peak_mb": peak,
                "line_buffer_bits": r.get("line_buffer_bits"),
            }
        )
    t = report["totals"]
    matrix_adders = sum(r["adders"] for r in rows)
    totals = {
        "matrix_layers": len(rows),
        "weights": t["weights"],
        "adders": matrix_adders,
        "csd_adders": t["csd_adders"],
        "csd_over_lcc": round(t["csd_adders"] / max(matrix_adders, 1), 3),
        "adders_per_weight": round(matrix_adders / max(t["weights"], 1), 4),
        "pass_seconds": round(sum(r["seconds"] for r in rows), 1),
    }
    timings = [
        {
            "jobs": jobs,
            "wall_seconds": round(found["wall"], 1),
            "cpu_seconds": round(found["cpu"], 1),
            "compile_seconds": found["report"]["seconds"],
            "speed_up": round(first["wall"] / found["wall"], 2),
            "max_rss_mb": round(found["max_rss_mb"], 1),
            "same_report": _untimed(found["report"]) == _untimed(report),
        }
        for jobs, found in runs.items()
    ]

    table = Table(title=f"{report['model_name']}: {report['passes']} (--jobs {args.jobs[0]})")
    for col in ("layer", "shape", "k/s", "adders", "CSD", "CSD/LCC", "add/w", "dB", "s", "MB"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in rows:
        ks = f"{r['kernel'][0]}/{r['stride'][0]}" if r["kernel"] else "-"
        table.add_row(
            r["layer"],
            "x".join(map(str, r["shape"])),
            ks,
            str(r["adders"]),
            str(r["csd_adders"]),
            f"{r['csd_over_lcc']:.2f}",
            f"{r['adders_per_weight']:.3f}",
            f"{r['weight_sqnr_db']:.1f}",
            f"{r['seconds']:.1f}",
            f"{r['peak_mb']:.0f}",
        )
    table.add_row(
        "total",
        f"{t['weights'] / 1e6:.2f} M",
        "",
        str(matrix_adders),
        str(t["csd_adders"]),
        f"{totals['csd_over_lcc']:.2f}",
        f"{totals['adders_per_weight']:.3f}",
        "",
        f"{totals['pass_seconds']:.0f}",
        "",
    )
    console = Console(width=140)
    console.print(table)
    times = Table(title=f"compile --report-only on {_cpus()} CPUs (load {_load()})")
    for col in ("--jobs", "wall s", "CPU s", "speed-up", "max RSS MB", "same report"):
        times.add_column(col, justify="right")
    for r in timings:
        times.add_row(
            str(r["jobs"]),
            f"{r['wall_seconds']:.1f}",
            f"{r['cpu_seconds']:.1f}",
            f"{r['speed_up']:.2f}",
            f"{r['max_rss_mb']:.0f}",
            "yes" if r["same_report"] else "NO",
        )
    console.print(times)
    print(f"accuracy: {report['accuracy'].get('skipped', '')}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "resnet34",
                    "quick": args.quick,
                    "passes": report["passes"],
                    "machine": {
                        "python": platform.python_version(),
                        "cpu": platform.machine(),
                        "cpus": _cpus(),
                        "load_after": _load(),
                    },
                    "rows": rows,
                    "totals": totals,
                    "timings": timings,
                    "accuracy": report["accuracy"],
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if all(r["same_report"] for r in timings) else 1


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
