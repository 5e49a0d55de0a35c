"""Accuracy vs additions of the whole compression scheme on the digits MLP.

Usage::

    .venv/bin/python benchmarks/compression.py [--quick] [--json FILE] [--png FILE]
        [-o build/bench_compression]

Points, each compiled by the driver's own passes and scored by the golden (bit-exact integer)
model on the test set:

* dense CSD (``quantize,csd``, the baseline) and dense LCC;
* training-free magnitude pruning (``prune{sparsity=...}``) + CSD / LCC;
* group-lasso fine-tuning (:func:`nnlcc.finetune.finetune`) at several λ, then CSD / LCC,
  with and without weight sharing (``share{clusters=...}``) of the first layer's columns.

Prints a table, writes the rows as JSON and a PNG of the accuracy-additions plane with the
Pareto front and the target box (≥ 3× fewer additions than dense CSD, ≤ 1 point less accuracy).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from nnlcc.driver import (
    EXAMPLE_DATA,
    EXAMPLE_MODEL,
    accuracy_report,
    load_data,
    load_model,
    resolve_pipeline,
    run_passes,
)
from nnlcc.finetune import FinetuneOptions, finetune
from nnlcc.ir.lower import lower_network
from nnlcc.passes import format_pipeline
from nnlcc.passes.share import compression_facts

ROOT = Path(__file__).resolve().parents[1]
TARGET_FACTOR = 3.0
TARGET_LOSS = 0.01


def measure(model: Path, pipeline: str, family: str, label: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    graph = load_model(model)
    passes = resolve_pipeline(pipeline)
    data = load_data(graph, model, EXAMPLE_DATA, 0)
    run_passes(graph, passes, data)
    net = lower_network(graph)
    acc = accuracy_report(graph, net, data)
    facts = [f for f in map(compression_facts, graph.matrix_layers()) if f is not None]
    return {
        "family": family,
        "model": label,
        "model_path": str(model),
        "pipeline": pipeline,
        "pipeline_full": format_pipeline(passes),
        "shapes": [list(layer.shape) for layer in graph.matrix_layers()],
        "kept_columns": [f.kept_columns for f in facts],
        "shared_columns": [f.shared_columns for f in facts],
        "adders": sum(layer.graph.adders for layer in net.layers),
        "pre_adders": sum(f.pre_adders for f in facts),
        "accuracy": acc.golden,
        "float_accuracy": acc.float_accuracy,
        "output_sqnr_db": acc.sqnr_db,
        "compile_s": round(time.perf_counter() - t0, 2),
    }


def verify(row: dict[str, Any], outdir: Path) -> bool:
    """The full driver flow with Verilator on the test set and 200 random vectors."""
    from nnlcc.driver import CompileOptions, compile_model

    rep = compile_model(
        CompileOptions(
            model=Path(row["model_path"]),
            data=EXAMPLE_DATA,
            passes=row["pipeline"],
            random_vectors=200,
            outdir=outdir / f"p{abs(hash((row['model_path'], row['pipeline']))) % 10**8}",
        )
    )
    return bool(rep.verification is not None and rep.verification.bit_exact)


def pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows no other row beats on both fewer adders and higher accuracy."""
    front = []
    for r in sorted(rows, key=lambda r: (r["adders"], -r["accuracy"])):
        if not front or r["accuracy"] > front[-1]["accuracy"]:
            front.append(r)
    return front


def plot(rows: list[dict[str, Any]], base: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    markers = {"dense": "s", "magnitude": "v", "group-lasso": "o", "group-lasso+share": "D"}
    colors = {"csd": "tab:blue", "lcc": "tab:red"}
    for fam, mk in markers.items():
        for code, color in colors.items():
            pts = [r for r in rows if r["family"] == fam and r["pipeline"].endswith(code)]
            pts += [
                r
                for r in rows
                if r["family"] == fam and r["pipeline"].rsplit(",", 1)[-1].startswith(code + "{")
            ]
            if pts:
                ax.scatter(
                    [r["adders"] for r in pts],
                    [100 * r["accuracy"] for r in pts],
                    marker=mk,
                    color=color,
                    label=f"{fam}, {code.upper()}",
                    alpha=0.75,
                )
    front = pareto(rows)
    ax.plot(
        [r["adders"] for r in front],
        [100 * r["accuracy"] for r in front],
        "k--",
        lw=1,
        label="Pareto front",
    )
    xmax = base["adders"] / TARGET_FACTOR
    ymin = 100 * (base["accuracy"] - TARGET_LOSS)
    ax.fill_between([0, xmax], ymin, 100, color="g", alpha=0.08, lw=0)
    ax.text(
        8,
        99.6,
        "target: ≥3× fewer additions,\n≤1 point accuracy loss",
        color="g",
        va="top",
        fontsize=8,
    )
    ax.set_xlabel("additions (golden adder graph, all layers)")
    ax.set_ylabel("test accuracy of the bit-exact model (%)")
    ax.set_title("digits MLP: accuracy vs additions (pruning, sharing, CSD/LCC)")
    ax.set_ylim(max(0.0, ymin - 12), 100)
    ax.set_xlim(0, None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one λ, fewer pipelines")
    ap.add_argument("--json", type=Path, help="write the rows as JSON")
    ap.add_argument("--png", type=Path, help="Pareto plot (default OUTDIR/compression.png)")
    ap.add_argument("-o", "--outdir", type=Path, default=ROOT / "build" / "bench_compression")
    ap.add_argument("--epochs", type=int, default=60, help="group-lasso epochs")
    ap.add_argument(
        "--verify",
        action="store_true",
        help="compile every Pareto-front point with the cocotb bit-exact check (~1 min each)",
    )
    args = ap.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)

    rows: list[dict[str, Any]] = []

    def add(model: Path, pipeline: str, family: str, label: str) -> None:
        row = measure(model, pipeline, family, label)
        rows.append(row)
        print(
            f"{label:>16} {pipeline:52} {row['adders']:5d} adders acc {row['accuracy']:.4f}",
            flush=True,
        )

    dense = ["quantize,csd", "quantize,lcc", "quantize,lcc{sqnr_db=35}"]
    for p in dense:
        add(EXAMPLE_MODEL, p, "dense", "digits_mlp")
    base = rows[0]

    sparsities = [0.25] if args.quick else [0.2, 0.3, 0.4]
    for s in sparsities:
        for m in ("csd", "lcc"):
            add(EXAMPLE_MODEL, f"prune{{sparsity={s}}},quantize,{m}", "magnitude", "digits_mlp")

    lambdas = [0.03] if args.quick else [0.01, 0.02, 0.03, 0.05]
    matrix = (
        ["csd", "csd{weight_bits=6}", "lcc{sqnr_db=30}"]
        if args.quick
        else ["csd", "csd{weight_bits=6}", "lcc", "lcc{sqnr_db=35}", "lcc{sqnr_db=30}"]
    )
    fractions = [0.75] if args.quick else [0.85, 0.75, 0.6]
    tuned: list[dict[str, Any]] = []
    for lam in lambdas:
        out = args.outdir / f"digits_gl{lam:g}.onnx"
        res = finetune(
            EXAMPLE_MODEL, EXAMPLE_DATA, out, FinetuneOptions(group_lasso=lam, epochs=args.epochs)
        )
        tuned.append({"lambda": lam, **res.to_dict()})
        print(f"group lasso λ={lam:g}: {res.summary()} ({res.seconds:.1f} s)", flush=True)
        label = f"λ={lam:g}"
        for m in matrix:
            add(out, f"quantize,{m}", "group-lasso", label)
        kept = res.inputs_after
        for frac in fractions:
            k = max(1, round(frac * kept))
            for m in matrix:
                add(
                    out,
                    f"quantize,share{{clusters={k},layers=fc1}},{m}",
                    "group-lasso+share",
                    label,
                )

    if args.verify:
        for r in pareto(rows):
            r["bit_exact"] = verify(r, args.outdir / "verify")
            print(f"cocotb {r['model']} {r['pipeline']}: bit-exact {r['bit_exact']}", flush=True)

    ok = [
        r
        for r in rows
        if r["adders"] * TARGET_FACTOR <= base["adders"]
        and r["accuracy"] >= base["accuracy"] - TARGET_LOSS - 1e-9
    ]
    best = min(ok, key=lambda r: (r["adders"], -r["accuracy"])) if ok else None
    best_by_pass = {}
    for code in ("csd", "lcc"):
        mine = [r for r in ok if r["pipeline"].rsplit(",", 1)[-1].split("{")[0] == code]
        if mine:
            best_by_pass[code] = min(mine, key=lambda r: (r["adders"], -r["accuracy"]))

    from rich.console import Console
    from rich.table import Table

    table = Table(title="digits MLP: compression (golden accuracy on 450 test digits)")
    for col in ("model", "pipeline", "layers", "adders", "pre", "vs CSD", "accuracy", "Δ pts"):
        table.add_column(col, justify="right" if col not in ("model", "pipeline") else "left")
    front = {id(r) for r in pareto(rows)}
    for r in rows:
        star = " *" if id(r) in front else ""
        table.add_row(
            r["model"],
            r["pipeline"],
            " ".join(f"{a}x{b}" for a, b in r["shapes"]),
            str(r["adders"]),
            str(r["pre_adders"]),
            f"{base['adders'] / r['adders']:.2f}x",
            f"{r['accuracy']:.4f}{star}",
            f"{100 * (r['accuracy'] - base['accuracy']):+.2f}",
        )
    Console(width=160).print(table)
    print("* = on the Pareto front")
    if best:
        print(
            f"target met: {best['model']} {best['pipeline']}: {best['adders']} adders "
            f"({base['adders'] / best['adders']:.2f}x fewer than dense CSD {base['adders']}), "
            f"accuracy {best['accuracy']:.4f} (dense CSD {base['accuracy']:.4f})"
        )
        for code, r in best_by_pass.items():
            print(
                f"  best with {code.upper()}: {r['model']} {r['pipeline']}: {r['adders']} adders "
                f"({base['adders'] / r['adders']:.2f}x), accuracy {r['accuracy']:.4f}"
            )
    else:
        print("target NOT met by any point")

    png = args.png or args.outdir / "compression.png"
    plot(rows, base, png)
    print(f"plot: {png}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "baseline": base,
                    "target": {"factor": TARGET_FACTOR, "max_accuracy_loss": TARGET_LOSS},
                    "best_meeting_target": best,
                    "best_meeting_target_by_pass": best_by_pass,
                    "finetune": tuned,
                    "rows": rows,
                    "pareto": pareto(rows),
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
