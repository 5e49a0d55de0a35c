"""``nnlcc compile MODEL --layer NAME``: one matrix layer's adder graph as Verilog.

The whole network is quantized (formats come from calibration through every layer before
it), the matrix pass codes only the named layer, and the layer's adder graph (matrix product
plus requantization) becomes a one-layer :class:`~nnlcc.ir.lowered.LoweredNetwork` emitted by
:mod:`nnlcc.hdl`: one vector per clock, for a convolution one window vector (order in
:mod:`nnlcc.ir.window`).  Huge layers are announced with their estimated size before the Verilog
is generated.  With verification the layer is simulated bit-exact in cocotb against its golden
model on random in-range vectors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnlcc.baselines import facts_of
from nnlcc.driver import load_data, run_passes
from nnlcc.errors import BadInputError
from nnlcc.frontends import load_model
from nnlcc.hdl.names import verilog_name
from nnlcc.hdl.top import top_for
from nnlcc.ir.family import Family
from nnlcc.ir.lower import lower_layer
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import ConvLayer, MatrixGraph, MatrixLayer
from nnlcc.outdir import check_outdir, default_name, staged_outdir
from nnlcc.passes import PassContext, PassKind, resolve_pipeline
from nnlcc.report.rows import code_adders, layer_row

__all__ = ["HUGE_LAYER_ADDERS", "compile_layer", "estimate", "one_layer_network"]

Log = Callable[[str], None]

HUGE_LAYER_ADDERS = 200_000
"""Above this many adders ``--layer`` warns with the estimated size before generating."""

FLAT_NODES = 20_000
"""Graphs with more nodes are written by :mod:`nnlcc.hdl.flat_verilog` (Amaranth's converter
ran out of WebAssembly memory after 11 minutes on a 128 x 1152 LCC layer)."""

#: Verilog bytes per adder-graph node of the flat writer (which huge layers use), measured:
#: 26.3 MB for the 130,862 nodes of a 128 x 1152 LCC layer (delayed copies included).
_VERILOG_BYTES_PER_NODE = 200


def estimate(layer: MatrixLayer) -> dict[str, int]:
    """Adders and approximate Verilog size of a coded matrix layer, before lowering it."""
    assert layer.code is not None
    rows, cols = layer.shape
    adders = code_adders(layer.code, cols)
    nodes = adders + cols + 3 * rows  # inputs, adders, bias/shift/clamp per output
    return {"adders": adders, "nodes": nodes, "verilog_bytes": nodes * _VERILOG_BYTES_PER_NODE}


def one_layer_network(
    graph: MatrixGraph, layer: MatrixLayer, family: Family | None = None
) -> LoweredNetwork:
    """The layer's adder graph as a vector network (a conv reads one window vector);
    ``family``: the board's, for the default schedule (:func:`nnlcc.ir.lower.lower_network`)."""
    assert layer.in_fmt is not None
    low = lower_layer(layer, layer.in_fmt, family)
    low.kind, low.window, low.image, low.inputs = "dense", None, (), ()
    return LoweredNetwork(
        name=f"{graph.name}_{layer.name}",
        input_fmt=layer.in_fmt,
        layers=[low],
        input_shape=(layer.shape[1],),
    )


def _find(graph: MatrixGraph, name: str) -> MatrixLayer:
    for layer in graph.matrix_layers():
        if layer.name == name:
            return layer
    names = [layer.name for layer in graph.matrix_layers()]
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise BadInputError(f"no matrix layer '{name}' in {graph.name} (matrix layers: {shown})")


def compile_layer(opts: Any, name: str, log: Log) -> dict[str, Any]:
    """Compile layer ``name`` of ``opts.model`` (a :class:`~nnlcc.driver.CompileOptions`) to
    ``<outdir>/<layer>.v``; returns (and writes as ``layer.json``) what was done."""
    t0 = time.perf_counter()
    opts.validate()
    model = Path(opts.model)
    module = verilog_name(name)  # module and file name (layer names may be anything)
    outdir = opts.output_dir(f"{default_name(model.stem)[:120]}_{module}")
    anchors = [Path(f) for f in (opts.model, opts.data) if f is not None]
    check_outdir(outdir, anchors, opts.force)
    log(f"frontend: {model}")
    graph = load_model(model)
    layer = _find(graph, name)
    passes = resolve_pipeline(opts.passes)
    data = load_data(graph, model, opts.data, opts.seed, log)
    from nnlcc.boards import get_board

    board = get_board(opts.board)
    structural = [p for p in passes if p.kind is not PassKind.MATRIX]
    matrix = [p for p in passes if p.kind is PassKind.MATRIX]
    run_passes(graph, structural, data, log, board=board)  # formats of the whole network
    # the matrix pass codes this layer only (a graph of one layer; passes read its weight)
    sub = MatrixGraph(graph.name, graph.input_name, graph.input_size, graph.output_name, [layer])
    for p in matrix:
        log(f"pass {p.name}: {name}")
        p.apply(sub, PassContext(data.x_calib, board.family))
    size = estimate(layer)
    if size["adders"] > HUGE_LAYER_ADDERS:
        log(
            f"warning: layer {name} is huge: {size['adders']:,} adders, about"
            f" {size['verilog_bytes'] / 1e6:.0f} MB of Verilog; generating it anyway"
        )
    with staged_outdir(outdir, anchors, opts.force, log) as tmp:
        net = one_layer_network(graph, layer, board.family)
        g = net.layers[0].graph
        # the row report.json would have for this layer (no cost, so no baseline)
        row = layer_row(layer, net.layers[0], facts=facts_of(layer))
        report: dict[str, Any] = {
            "model": str(model),
            "layer": row.name,
            "kind": row.kind,
            "shape": list(row.shape),
            "passes": ",".join(p.name for p in passes),
            "in_fmt": row.in_fmt,
            "out_fmt": row.out_fmt,
            "adders": row.adders,
            "const_adders": row.const_adders,
            "depth": row.depth,
            "latency": row.latency,
            "estimate": size,
        }
        if isinstance(layer, ConvLayer):
            report["window"] = layer.window.to_text()
        verilog = tmp / f"{module}.v"
        flat = len(g.nodes) > FLAT_NODES
        log(f"verilog: {len(g.nodes):,} nodes ({'flat writer' if flat else 'amaranth'})")
        top = top_for(net)  # a vector top: the layer reads one (window) vector per clock
        if flat:
            from nnlcc.hdl.flat_verilog import emit_flat_verilog

            meta = {**emit_flat_verilog(net, verilog, name=module), **top.testbench_meta()}
        else:
            meta = top.emit(verilog, module)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        report["verilog_writer"] = "flat" if flat else "amaranth"
        if opts.verify:
            from nnlcc.sim.runner import SIM_DIR_ENV, run_cocotb
            from nnlcc.sim.verify import write_vectors

            rng = np.random.default_rng(opts.seed)
            fmt = layer.in_fmt
            assert fmt is not None
            x = rng.integers(
                fmt.lo, fmt.hi, size=(opts.random_vectors, net.n_inputs), endpoint=True
            )
            write_vectors(net, x, tmp)
            log(f"cocotb: layer {name}, {len(x)} random vectors")
            res = run_cocotb(
                verilog,
                module,
                top.testbench,
                tmp,
                simulator=opts.simulator,
                extra_env={SIM_DIR_ENV: str(tmp.resolve())},
            )
            report["verification"] = {
                "simulator": res.simulator,
                "vectors": res.vectors,
                "bit_exact": res.bit_exact,
            }
        else:
            report["verification"] = {"bit_exact": None, "skipped": "--no-verify"}
        report["verilog"] = str(outdir / verilog.name)
        report["verilog_bytes"] = verilog.stat().st_size
        report["seconds"] = round(time.perf_counter() - t0, 2)
        (tmp / "layer.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
