"""Block-circulant (SWM) compression against CSD, LCC and pruning+sharing, on the digits MLP,
the digits CNN and the digits LSTM.

Usage::

    .venv/bin/python benchmarks/circulant.py [--epochs 200] [--blocks 2,4,8,16]
        [--nets digits_mlp,digits_cnn,digits_lstm] [-o benchmarks/results/<date>]
        [--render circulant.json]

Points, each compiled by the driver's own passes and scored by the golden (bit-exact integer)
model on the test set (``accuracy``), with the additions of the lowered adder graphs
(``adders``), the LUTs of :func:`nnlcc.ir.cost.estimate_network` (``luts``, ECP5 model), the
numbers the weights need (``stored_weights``: circulant vectors, non-zero weights, or the
reduced matrix behind shared columns) and the compile time (passes + lowering):

* dense CSD with subexpression sharing (``quantize,csd``) and dense LCC (``quantize,lcc``);
* pruned + shared + LCC: the group-lasso pruned MLP (``digits_mlp_pruned.onnx``) with shared
  columns; for the CNN, its im2col columns pruned by ``nnlcc finetune --group-lasso 0.1``, then
  shared columns + LCC; the LSTM has no pruned row (group lasso trains MLPs and CNNs);
* circulant b in {2, 4, 8, 16}, trained by ``nnlcc finetune --circulant b``
  (:func:`nnlcc.finetune.circulant_finetune`; the LSTM's two gate matrices and its dense
  layer), in each hardware form (``mcm``,
  ``fft``, ``csd``), the form the cost model picks (``auto``) and circulant + LCC (``lcc``).

Writes ``circulant.json``, ``circulant.md`` (the table and the verdict) and ``circulant.png``
(accuracy vs LUTs with the Pareto front) into the output folder.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from nnlcc.boards import get_board
from nnlcc.driver import (
    EXAMPLE_CNN,
    EXAMPLE_DATA,
    EXAMPLE_MODEL,
    accuracy_report,
    load_data,
    load_model,
    resolve_pipeline,
    run_passes,
)
from nnlcc.errors import NnlccError
from nnlcc.examples import LSTM, PRUNED_MODEL
from nnlcc.finetune import CirculantOptions, FinetuneOptions, circulant_finetune, finetune
from nnlcc.ir.cost import estimate_network
from nnlcc.ir.lower import lower_network
from nnlcc.passes.circulant import CirculantCode

ROOT = Path(__file__).resolve().parents[1]
BOARD = "ulx3s"  # passes price, and the figures are, on its family (ECP5)
FAMILY = get_board(BOARD).family
FORMS = ("mcm", "fft", "csd", "auto", "lcc")


def stored_weights(code: Any, weight: np.ndarray) -> int:
    inner = getattr(code, "inner", None)
    if isinstance(code, CirculantCode):
        return code.layout.stored
    if isinstance(inner, CirculantCode):
        return inner.layout.stored
    plan = getattr(code, "plan", None)
    if plan is not None:
        return int(np.count_nonzero(plan.reduced))
    return int(np.count_nonzero(weight))


def measure(model: Path, pipeline: str, net_name: str, method: str, **extra: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    graph = load_model(model)
    passes = resolve_pipeline(pipeline)
    data = load_data(graph, model, EXAMPLE_DATA, 0)
    run_passes(graph, passes, data, board=BOARD)
    net = lower_network(graph)
    seconds = time.perf_counter() - t0
    acc = accuracy_report(graph, net, data)
    cost = estimate_network(net, FAMILY)
    forms = [
        str(layer.code.summary().get("form", "")) for layer in graph.matrix_layers() if layer.code
    ]
    return {
        "network": net_name,
        "method": method,
        "model_path": str(model),
        "pipeline": pipeline,
        "forms": forms,
        "accuracy": acc.golden,
        "float_accuracy": acc.float_accuracy,
        "adders": sum(layer.graph.adders for layer in net.layers),
        "luts": cost.total.luts if cost.total else 0,
        "stored_weights": sum(
            stored_weights(layer.code, layer.weight) for layer in graph.matrix_layers()
        ),
        "weights": sum(layer.weight.size for layer in graph.matrix_layers()),
        "compile_s": round(seconds, 2),
        **extra,
    }


def pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    front: list[dict[str, Any]] = []
    for r in sorted(rows, key=lambda r: (r["luts"], -r["accuracy"])):
        if not front or r["accuracy"] > front[-1]["accuracy"]:
            front.append(r)
    return front


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = sorted({r["network"] for r in rows})
    methods = sorted({r["method"] for r in rows})
    color = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, len(nets), figsize=(7 * len(nets), 5.5), squeeze=False)
    for ax, name in zip(axes[0], nets, strict=True):
        pts = [r for r in rows if r["network"] == name]
        for method in sorted({r["method"] for r in pts}):
            sel = [r for r in pts if r["method"] == method]
            ax.scatter(
                [r["luts"] for r in sel],
                [100 * r["accuracy"] for r in sel],
                label=method,
                color=color[method],
                alpha=0.8,
                marker="o" if method.startswith("circulant") else "s",
            )
        front = pareto(pts)
        ax.plot(
            [r["luts"] for r in front],
            [100 * r["accuracy"] for r in front],
            "k--",
            lw=1,
            label="Pareto front",
        )
        ax.set_xlabel(f"estimated LUTs ({FAMILY} cost model, all layers)")
        ax.set_ylabel("test accuracy of the bit-exact model (%)")
        ax.set_title(f"{name}: accuracy vs LUTs")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| network | method | pipeline | forms | accuracy | adders | est. LUTs | stored weights"
        " | compile s | train s |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['network']} | {r['method']} | `{r['pipeline']}` | {'/'.join(r['forms']) if any(r['forms']) else '-'}"
            f" | {100 * r['accuracy']:.2f} % | {r['adders']} | {r['luts']} | {r['stored_weights']}"
            f" | {r['compile_s']} | {r.get('train_s', '')} |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]], skipped: list[str]) -> str:
    """Where circulant wins and loses, from the measured rows."""
    out = []
    for name in sorted({r["network"] for r in rows}):
        pts = [r for r in rows if r["network"] == name]
        base = next(r for r in pts if r["method"] == "dense CSD")
        dense_lcc = next(r for r in pts if r["method"] == "dense LCC")
        circ = [r for r in pts if r["method"].startswith("circulant")]
        front = pareto(pts)
        on_front = [r for r in front if r["method"].startswith("circulant")]
        best_store = min(circ, key=lambda r: r["stored_weights"]) if circ else None
        out.append(f"### {name}\n")
        out.append(
            f"- dense CSD: {100 * base['accuracy']:.2f} %, {base['luts']} LUTs, {base['adders']}"
            f" adders, {base['stored_weights']} weights; dense LCC: "
            f"{100 * dense_lcc['accuracy']:.2f} %, {dense_lcc['luts']} LUTs."
        )
        for r in sorted(circ, key=lambda r: r["luts"]):
            delta = 100 * (r["accuracy"] - base["accuracy"])
            out.append(
                f"- {r['method']} `{r['pipeline'].split(',', 1)[1]}`: {100 * r['accuracy']:.2f} %"
                f" ({delta:+.2f} pt vs dense CSD), {r['luts']} LUTs"
                f" ({r['luts'] / base['luts']:.2f}x dense CSD, {r['luts'] / dense_lcc['luts']:.2f}x"
                f" dense LCC), {r['stored_weights']} stored weights"
                f" ({base['stored_weights'] / max(r['stored_weights'], 1):.1f}x fewer)"
            )
        out.append(
            "- circulant points on the accuracy-LUT Pareto front: "
            + (
                ", ".join(f"{r['method']} `{r['pipeline'].split(',', 1)[1]}`" for r in on_front)
                or "none"
            )
        )
        wins = [
            r for r in circ if r["luts"] < base["luts"] and r["accuracy"] >= base["accuracy"] - 0.01
        ]
        out.append(
            "- **wins** (fewer LUTs than dense CSD, at most 1 point less accuracy, "
            f"{base['stored_weights']} -> fewer stored weights): "
            + (
                ", ".join(
                    f"`{r['pipeline'].split(',', 1)[1]}` ({r['luts']} LUTs,"
                    f" {100 * r['accuracy']:.2f} %)"
                    for r in sorted(wins, key=lambda r: r["luts"])
                )
                or "none"
            )
        )
        forms = sorted({r["pipeline"].split("form=")[1].rstrip("}") for r in circ})
        dearer = [
            f
            for f in forms
            if all(r["luts"] >= base["luts"] for r in circ if f"form={f}}}" in r["pipeline"])
        ]
        lossy = sorted({r["block"] for r in circ if r["accuracy"] < base["accuracy"] - 0.01})
        out.append(
            f"- **loses**: {len(circ) - len(wins)} of {len(circ)} circulant points; forms costing"
            f" at least dense CSD's LUTs at every block size: {', '.join(dearer) or 'none'};"
            f" blocks with a point losing more than 1 point: {', '.join(map(str, lossy)) or 'none'}"
        )
        if best_store is not None:
            out.append(
                f"- fewest stored weights: {best_store['method']} ({best_store['stored_weights']}"
                f" vs {base['stored_weights']}) at {100 * best_store['accuracy']:.2f} %"
            )
        out.append("")
    if skipped:
        out.append("### not measured\n")
        out += [f"- {s}" for s in skipped]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    today = datetime.date.today().isoformat()
    ap.add_argument("-o", "--outdir", type=Path, default=ROOT / "benchmarks" / "results" / today)
    ap.add_argument("--epochs", type=int, default=200, help="circulant training epochs")
    ap.add_argument("--blocks", default="2,4,8,16")
    ap.add_argument("--forms", default=",".join(FORMS))
    ap.add_argument("--nets", default="digits_mlp,digits_cnn,digits_lstm")
    ap.add_argument("--render", type=Path, help="only re-render OUTDIR from this circulant.json")
    args = ap.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    if args.render:
        saved = json.loads(args.render.read_text())
        write(args.outdir, saved["rows"], saved["trained"], saved["skipped"])
        return
    work = ROOT / "build" / "bench_circulant"
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    trained: list[dict[str, Any]] = []

    def add(model: Path, pipeline: str, net_name: str, method: str, **extra: Any) -> None:
        row = measure(model, pipeline, net_name, method, **extra)
        rows.append(row)
        print(
            f"{net_name:>10} {method:>22} {pipeline:50} acc {row['accuracy']:.4f} adders"
            f" {row['adders']:5d} LUTs {row['luts']:6d} stored {row['stored_weights']:5d}"
            f" {row['compile_s']:6.1f} s",
            flush=True,
        )

    every = {"digits_mlp": EXAMPLE_MODEL, "digits_cnn": EXAMPLE_CNN, "digits_lstm": LSTM}
    nets = {name: every[name] for name in args.nets.split(",")}
    for name, model in nets.items():
        add(model, "quantize,csd", name, "dense CSD")
        add(model, "quantize,lcc", name, "dense LCC")
        if name == "digits_mlp":
            add(
                PRUNED_MODEL,
                "quantize,share{clusters=24,layers=fc1},lcc",
                name,
                "pruned+shared+LCC",
            )
        elif name == "digits_cnn":
            pruned = work / "digits_cnn_pruned.onnx"
            finetune(model, EXAMPLE_DATA, pruned, FinetuneOptions(group_lasso=0.1))
            add(pruned, "quantize,share{clusters=16,layers=fc},lcc", name, "pruned+shared+LCC")
        else:
            skipped.append(
                "digits_lstm pruned+shared+LCC: group-lasso fine-tuning trains MLPs and CNNs,"
                " not recurrent layers"
            )
        for b in map(int, args.blocks.split(",")):
            out = work / f"{name}_circ{b}.onnx"
            try:
                res = circulant_finetune(
                    model, EXAMPLE_DATA, out, CirculantOptions(b, epochs=args.epochs)
                )
            except NnlccError as e:
                skipped.append(f"{name} circulant b={b}: {e}")
                print(f"{name} b={b}: skipped: {e}", flush=True)
                continue
            trained.append({"network": name, **res.to_dict()})
            print(f"{name}: {res.summary()} ({res.seconds:.1f} s)", flush=True)
            for form in args.forms.split(","):
                if form == "fft" and b & (b - 1):
                    continue
                method = "circulant+LCC" if form == "lcc" else f"circulant b={b}"
                add(
                    out,
                    f"quantize,circulant{{block={b},form={form}}}",
                    name,
                    method,
                    block=b,
                    train_s=res.seconds,
                    accuracy_trained_float=res.accuracy_after,
                )
    (args.outdir / "circulant.json").write_text(
        json.dumps(
            {
                "family": FAMILY.name,
                "epochs": args.epochs,
                "rows": rows,
                "trained": trained,
                "skipped": skipped,
            },
            indent=2,
        )
        + "\n"
    )
    write(args.outdir, rows, trained, skipped)


def write(
    outdir: Path, rows: list[dict[str, Any]], trained: list[dict[str, Any]], skipped: list[str]
) -> None:
    """circulant.md and circulant.png from the measured rows."""
    md = [
        "# Block-circulant compression vs CSD, LCC and pruning (benchmarks/circulant.py)\n",
        f"LUTs: {FAMILY} cost model. Accuracy: bit-exact golden model on the digits test set.\n",
        table(rows),
        "",
        "## Trained circulant models (float, before compiling)\n",
        "| network | b | float | projected | trained | stored / weights | train s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {t['network']} | {t['block']} | {100 * t['accuracy_float']:.2f} %"
            f" | {100 * t['accuracy_projected']:.2f} % | {100 * t['accuracy_after']:.2f} %"
            f" | {t['stored_weights']} / {t['weights']} | {t['seconds']} |"
            for t in trained
        ),
        "",
        "## Where circulant wins and loses\n",
        verdict(rows, skipped),
    ]
    (outdir / "circulant.md").write_text("\n".join(md) + "\n")
    plot(rows, outdir / "circulant.png")
    print("\n".join(md))


if __name__ == "__main__":
    main()
