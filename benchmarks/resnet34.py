"""ResNet-34 at full scale: ``nnlcc compile resnet34.onnx --report-only`` timed end to end.

Runs the product path (frontend with batch-norm folding, quantize on random calibration
images, the matrix pass on all 36 convolutions and the 1000-way dense layer, report.json) on
the seeded ResNet-34 of ``examples/resnet34.py`` (exported on first use into ``build/``), and
prints per matrix layer: shape ``Cout x (kh*kw*Cin)``, adders of the pass, plain 8-bit CSD
adders (the baseline, no sharing), their ratio and the seconds the pass spent on the layer
(time between the pass's per-layer progress messages).  The golden integer model of a 21.8 M
weight network is not evaluated in --report-only (see nnlcc.report.rows).

Usage: ``python benchmarks/resnet34.py [--quick] [--json FILE] [--passes PIPELINE]``;
``--quick`` compiles only the layers up to the first stage-2 block (a few seconds of LCC).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import re
import resource
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

_STEP = re.compile(r"^pass (\S+): (\S+) \((\d+)/(\d+)\)$")


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


def run(model: Path, passes: str | None, outdir: Path) -> tuple[dict[str, Any], dict[str, float]]:
    """Compile report-only; returns the report and the seconds the matrix pass spent per
    layer."""
    marks: list[tuple[float, str, str]] = []

    def log(msg: str) -> None:
        now = time.perf_counter()
        m = _STEP.match(msg)
        marks.append((now, m.group(1) if m else "", m.group(2) if m else ""))
        print(f"{now - t0:7.1f}s {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    report = compile_model(
        CompileOptions(model=model, passes=passes, report_only=True, outdir=outdir), log=log
    ).to_json()  # report.json's data
    seconds: dict[str, float] = {}
    for (t, pname, layer), (t_next, _, _) in itertools.pairwise(marks):
        if layer and pname not in ("quantize",):
            seconds[layer] = seconds.get(layer, 0.0) + t_next - t
    return report, seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="ResNet-34 cut after stage 1")
    ap.add_argument("--json", type=Path, help="write the rows and totals as JSON")
    ap.add_argument("--passes", help="pass pipeline (default: nnlcc's default, quantize,lcc)")
    ap.add_argument("--onnx", type=Path, default=resnet34.DEFAULT_OUT, help="model path")
    args = ap.parse_args(argv)

    model = resnet34.ensure(args.onnx)
    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            model = _quick_model(model, Path(tmp) / "resnet34_stage1.onnx")
        t0 = time.perf_counter()
        report, seconds = run(model, args.passes, Path(tmp) / "out")
        wall = time.perf_counter() - t0

    rows = []
    for r in report["layers"]:
        if r["kind"] not in ("conv", "dense"):
            continue
        csd = r["csd_baseline_adders"]
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
                "seconds": round(seconds.get(r["name"], float("nan")), 2),
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
        "compile_seconds": report["seconds"],
        "wall_seconds": round(wall, 1),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }

    table = Table(title=f"{report['model_name']}: {report['passes']}")
    for col in ("layer", "shape", "k/s", "adders", "CSD", "CSD/LCC", "add/w", "dB", "s"):
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
    )
    Console(width=140).print(table)
    print(
        f"compile (report only) {totals['compile_seconds']} s, wall {totals['wall_seconds']} s,"
        f" max RSS {totals['max_rss_mb']} MB; accuracy: {report['accuracy'].get('skipped', '')}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "resnet34",
                    "quick": args.quick,
                    "passes": report["passes"],
                    "machine": {"python": platform.python_version(), "cpu": platform.machine()},
                    "rows": rows,
                    "totals": totals,
                    "accuracy": report["accuracy"],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
