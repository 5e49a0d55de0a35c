"""``nnlcc inspect MODEL.onnx``: what nnlcc sees in a model before compiling it.

Every ONNX node with its shapes and whether nnlcc can import it (and why not), then for an
importable model every matrix layer with weight statistics and the additions it would cost:

* **CSD** (``csd_bits``-bit weights, plain CSD without subexpression sharing, from
  :func:`nnlcc.passes.csd.csd_adders`): exact, the same baseline every report prints.
* **LCC** at the default ``lcc`` pass settings and ``sqnr_db``: *exact* (the pass runs on the
  layer) when the matrix has at most :data:`LCC_EXACT_ENTRIES` entries, which takes well
  under a second; otherwise *sampled*: the pass runs on :data:`LCC_SAMPLE_SLICES` slices'
  worth of lines along the matrix's short side (the long side, which sets the codebook
  quality, is kept whole), and the additions scale by ``short side / lines sampled``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnlcc.errors import NnlccError

#: Largest matrix (entries) whose LCC additions are computed by running the pass.
LCC_EXACT_ENTRIES = 1 << 16
#: Slices of the matrix the sampled LCC estimate factors.
LCC_SAMPLE_SLICES = 8
#: Block sizes whose block-circulant projection SQNR inspect reports.
CIRCULANT_BLOCKS = (2, 4, 8, 16, 32, 64)


def circulant_sqnr(layer: Any) -> dict[str, float | None]:
    """SQNR (dB) of the block-circulant projection of a matrix layer's weights for every block
    size of :data:`CIRCULANT_BLOCKS` that fits it (``None``: exactly block-circulant)."""
    from nnlcc.ir.fixed_point import sqnr_db
    from nnlcc.passes.circulant import layout_of

    out: dict[str, float | None] = {}
    for b in CIRCULANT_BLOCKS:
        lay = layout_of(layer, layer.weight, b)
        if lay.too_big():
            break
        vecs, exact = lay.project(layer.weight)
        out[str(b)] = None if exact else round(sqnr_db(layer.weight, lay.expand(vecs)), 2)
    return out


def weight_stats(w: np.ndarray, bits: int = 8) -> dict[str, Any]:
    """Min, max, mean |w|, std, share of exact zeros, and the SQNR of the weights rounded to
    ``bits``-bit fixed point (what the CSD baseline computes; compare with LCC's target)."""
    from nnlcc.ir.fixed_point import quantize_weights, sqnr_db

    a = np.abs(w)
    w_int, frac = quantize_weights(w, bits)
    q_db = sqnr_db(w, np.asarray(w_int, dtype=np.float64) * 2.0**-frac)
    return {
        "min": round(float(w.min()), 6),
        "max": round(float(w.max()), 6),
        "mean_abs": round(float(a.mean()), 6),
        "std": round(float(w.std()), 6),
        "zeros": round(float(np.mean(a == 0)), 4),
        f"sqnr_db_{bits}bit": round(q_db, 2) if math.isfinite(q_db) else None,
    }


def lcc_estimate(w: np.ndarray, sqnr_db: float) -> dict[str, Any]:
    """LCC additions of ``w`` at the default pass settings (see the module docstring)."""
    from nnlcc.passes.lcc import Lcc, slice_width

    lcc = Lcc(sqnr_db=sqnr_db)
    rows, cols = w.shape
    if w.size <= LCC_EXACT_ENTRIES:
        code = lcc.build(w)
        return {"adders": code.adders, "method": "exact", "sqnr_db": round(code.reached_db, 2)}
    short_axis = 1 if rows >= cols else 0  # slices cut the short side; keep the long whole
    long_n, short_n = max(rows, cols), min(rows, cols)
    take = min(short_n, LCC_SAMPLE_SLICES * slice_width(long_n, "auto"))
    pick = np.random.default_rng(0).choice(short_n, size=take, replace=False)
    part = w[:, np.sort(pick)] if short_axis == 1 else w[np.sort(pick), :]
    code = lcc.build(np.ascontiguousarray(part))
    return {
        "adders": round(code.adders * short_n / take),
        "method": f"sampled {take} of {short_n} {'columns' if short_axis == 1 else 'rows'}",
        "sqnr_db": round(code.reached_db, 2),
    }


def inspect_model(
    path: str | Path,
    *,
    csd_bits: int = 8,
    sqnr_db: float = 45.0,
    lcc: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The facts ``nnlcc inspect`` prints, as a JSON-ready dict; ``log(step)`` is called at
    the start of each step (reading, each layer's LCC estimate) for progress displays.

    Raises :class:`~nnlcc.errors.BadInputError` only when the file is not a readable ONNX
    model; an unsupported model gives ``supported: False`` and the reasons per node.
    """
    from nnlcc.frontends.onnx import inspect_onnx, load_onnx, supported_ops
    from nnlcc.ir.csd import csd_adders
    from nnlcc.ir.fixed_point import quantize_weights
    from nnlcc.ir.matrix import MatrixLayer
    from nnlcc.passes.lowrank.spectrum import Spectrum

    say = log or (lambda _: None)
    say(f"frontend: {path}")
    nodes = inspect_onnx(path)
    out: dict[str, Any] = {
        "model": str(path),
        "nodes": nodes,
        "supported": True,
        "problem": None,
        "supported_ops": list(supported_ops()),
        "layers": [],
    }
    try:
        graph = load_onnx(path)
    except NnlccError as e:
        out["supported"] = False
        out["problem"] = str(e)
        return out
    out["name"] = graph.name
    out["input"] = {"name": graph.input_name, "shape": list(graph.input_shape)}
    out["output"] = {"name": graph.output_name}
    totals = {"weights": 0, "csd_adders": 0, "lcc_adders": 0}
    for layer in graph.layers:
        row: dict[str, Any] = {"name": layer.name, "kind": layer.kind}
        row["in_shape"] = list(getattr(layer, "in_shape", ()))
        row["out_shape"] = list(getattr(layer, "out_shape", ()))
        if isinstance(layer, MatrixLayer):
            w = layer.weight
            rows, cols = w.shape
            csd = csd_adders(quantize_weights(w, csd_bits)[0])
            row.update(
                matrix=[int(rows), int(cols)],
                weights=int(w.size),
                relu=bool(layer.relu),
                stats=weight_stats(w, csd_bits),
                csd_adders=csd,
                csd_adders_per_weight=round(csd / w.size, 4),
                circulant_sqnr_db=circulant_sqnr(layer),
                spectrum=Spectrum.of(w).facts(sqnr_db),
            )
            imported = imported_row(layer)
            if imported is not None:
                row["imported"] = imported
            totals["weights"] += int(w.size)
            totals["csd_adders"] += csd
            if lcc:
                say(f"LCC estimate: {layer.name} ({rows}x{cols})")
                est = lcc_estimate(w, sqnr_db)
                row["lcc"] = {**est, "adders_per_weight": round(est["adders"] / w.size, 4)}
                totals["lcc_adders"] += est["adders"]
        out["layers"].append(row)
    out["sqnr_db"] = sqnr_db
    out["totals"] = {
        **totals,
        "csd_weight_bits": csd_bits,
        "lcc_sqnr_db": sqnr_db if lcc else None,
    }
    if not lcc:
        del out["totals"]["lcc_adders"]
    return out


def imported_row(layer: Any) -> dict[str, Any] | None:
    """A quantized model's facts of a layer: imported formats and scales, folded nodes."""
    from nnlcc.ir.imported import ImportedQuant

    facts = layer.notes.get(ImportedQuant)
    if facts is None:
        return None
    return {
        "input": facts.input.describe() if facts.input else None,
        "weights": facts.weight.describe() if facts.weight else "float",
        "output": facts.output.describe() if facts.output else "exact (no quantizer)",
        "exact": not facts.inexact(),
        "inexact": facts.inexact(),
        "folded": list(facts.folded),
    }


def render_text(info: dict[str, Any]) -> str:
    """Plain-text tables of :func:`inspect_model`'s result (what the CLI prints)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # markup off: layer, node and file names are plain text ("[bold]fc1" is a legal name)
    console = Console(width=132, record=True, file=io.StringIO(), highlight=False, markup=False)
    nodes = Table(title=f"ONNX nodes of {info['model']}", title_justify="left", box=box.SIMPLE)
    for col in ("#", "node", "op", "inputs", "outputs", "ok", "why not"):
        nodes.add_column(col)
    for n in info["nodes"]:
        nodes.add_row(
            str(n["index"]),
            n["name"],
            n["op"],
            " ".join(n["in_shapes"]),
            " ".join(n["out_shapes"]),
            "yes" if n["supported"] else "NO",
            n["reason"],
        )
    console.print(nodes)
    if not info["supported"]:
        console.print(f"not supported: {info['problem']}")
        console.print(f"ONNX ops nnlcc imports: {', '.join(info['supported_ops'])}")
        return _rstrip(console.export_text())
    t = info["totals"]
    layers = Table(title=f"layers of {info['name']}", title_justify="left", box=box.SIMPLE)
    bits = t["csd_weight_bits"]
    for col in ("layer", "kind", "matrix", "relu", "weights min..max", "std", "zeros"):
        layers.add_column(col)
    layers.add_column(f"CSD {bits}-bit adders (/w)", justify="right")
    layers.add_column(f"{bits}-bit SQNR dB", justify="right")
    if "lcc_adders" in t:
        layers.add_column(f"LCC {t['lcc_sqnr_db']:g} dB adders (/w)", justify="right")
        layers.add_column("LCC estimate")
    for lay in info["layers"]:
        if "matrix" not in lay:
            layers.add_row(lay["name"], lay["kind"], "–")
            continue
        s = lay["stats"]
        cells = [
            lay["name"],
            lay["kind"],
            "×".join(map(str, lay["matrix"])),
            "yes" if lay["relu"] else "",
            f"{s['min']:.3g}..{s['max']:.3g}",
            f"{s['std']:.3g}",
            f"{s['zeros']:.0%}",
            f"{lay['csd_adders']} ({lay['csd_adders_per_weight']:.2f})",
            _fmt_db(s.get(f"sqnr_db_{bits}bit")),
        ]
        if "lcc" in lay:
            cells += [
                f"{lay['lcc']['adders']} ({lay['lcc']['adders_per_weight']:.2f})",
                lay["lcc"]["method"],
            ]
        layers.add_row(*cells)
    console.print(layers)
    quantized = [lay for lay in info["layers"] if lay.get("imported")]
    if quantized:
        table = Table(
            title="imported quantization (formats: bits.fraction bits; x: the model's scale)",
            title_justify="left",
            box=box.SIMPLE,
        )
        for col in ("layer", "input", "weights", "output", "exact", "folded"):
            table.add_column(col)
        for lay in quantized:
            q = lay["imported"]
            table.add_row(
                lay["name"],
                q["input"] or "",
                q["weights"],
                q["output"],
                "yes" if q["exact"] else "no: " + "; ".join(q["inexact"]),
                f"{len(q['folded'])} nodes",
            )
        console.print(table)
        for lay in quantized:
            console.print(f"{lay['name']} folds: {', '.join(lay['imported']['folded'])}")
        console.print()
    circ = [lay for lay in info["layers"] if lay.get("circulant_sqnr_db")]
    if circ:
        table = Table(
            title="block-circulant projection SQNR in dB (exact: already block-circulant)",
            title_justify="left",
            box=box.SIMPLE,
        )
        table.add_column("layer")
        for b in CIRCULANT_BLOCKS:
            table.add_column(f"b={b}", justify="right")
        for lay in circ:
            got = lay["circulant_sqnr_db"]
            table.add_row(
                lay["name"],
                *("–" if str(b) not in got else _fmt_db(got[str(b)]) for b in CIRCULANT_BLOCKS),
            )
        console.print(table)
    spec = [lay for lay in info["layers"] if "spectrum" in lay]
    if spec:
        table = Table(
            title=f"singular spectrum (relative to the largest) and the rank that pays off at"
            f" {info['sqnr_db']:g} dB (W = U V + E; saving: cost model entries x dB)",
            title_justify="left",
            box=box.SIMPLE,
        )
        for col in ("layer", "leading singular values", "rank: SQNR left for E", "paying rank"):
            table.add_column(col)
        for lay in spec:
            sp = lay["spectrum"]
            cands = ", ".join(f"{r}: {db:g}" for r, db in sp["rank_candidates"].items())
            pay = (
                f"{sp['paying_rank']} (saves ~{sp['saving_est']:.0%})"
                if sp["paying_rank"]
                else "none"
            )
            table.add_row(
                lay["name"],
                " ".join(f"{v:.2f}" for v in sp["singular_values_rel"]),
                cands or "–",
                pay,
            )
        console.print(table)
    line = f"{info['name']}: supported; {t['weights']} weights; CSD {t['csd_adders']} adders"
    if "lcc_adders" in t:
        ratio = t["csd_adders"] / t["lcc_adders"] if t["lcc_adders"] else math.inf
        line += f"; LCC ≈ {t['lcc_adders']} adders ({ratio:.2f}× fewer)"
    console.print(line)
    return _rstrip(console.export_text())


def _fmt_db(v: float | None) -> str:
    return "exact" if v is None else f"{v:.1f}"


def _rstrip(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
