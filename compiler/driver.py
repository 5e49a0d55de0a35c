"""The compile driver: everything ``nnlcc compile`` does, as a Python API.

model.onnx -> MatrixGraph -> passes -> LoweredNetwork (golden model) -> Verilog -> cocotb check
-> board build files -> report.json / report.md, all written atomically into one directory.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnlcc import prune as _prune  # noqa: F401  (registers prune)
from nnlcc import quantize as _quantize  # noqa: F401  (registers quantize, csd)
from nnlcc import share as _share  # registers share; per-layer compression facts
from nnlcc.data import Dataset, load_npz, random_dataset
from nnlcc.errors import BadInputError
from nnlcc.fixed_point import sqnr_db
from nnlcc.lower import lower_network
from nnlcc.lowered import LoweredLayer, LoweredNetwork
from nnlcc.matrix_ir import DenseLayer, MatrixGraph
from nnlcc.passes import PASSES, PassContext, format_pipeline, parse_pipeline

try:  # the LCC pass registers itself on import
    from nnlcc import lcc as _lcc
except ImportError:  # pragma: no cover - only while LCC is not part of the tree
    _lcc = None

if TYPE_CHECKING:
    from nnlcc.config import Config

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_MODEL = REPO_ROOT / "examples" / "digits_mlp.onnx"
EXAMPLE_DATA = REPO_ROOT / "examples" / "digits.npz"
EXAMPLE_CNN = REPO_ROOT / "examples" / "digits_cnn.onnx"  # same test images as the MLP
MATRIX_PASSES = ("csd", "lcc")
#: Passes that change the network's structure: an implied quantize goes after them.
STRUCTURAL_PASSES = ("prune",)


def default_pipeline() -> str:
    return "quantize,lcc" if "lcc" in PASSES else "quantize,csd"


Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class CompileOptions:
    model: Path = EXAMPLE_MODEL
    board: str = "arty-a7"
    outdir: Path | None = None
    passes: str | None = None
    data: Path | None = None
    verify: bool = True
    random_vectors: int = 1000
    simulator: str | None = None
    build: bool = False
    report_only: bool = False
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    config: Config | None = None  # nnlcc.toml: per-layer settings (see nnlcc.config)
    sweep: list[str] = field(default_factory=list)  # other settings tried (see nnlcc.sweep)


def resolve_pipeline(text: str | None) -> list[Any]:
    """Parse the pipeline; put ``quantize`` first (after any leading prune, which changes the
    activations it calibrates on) and a matrix pass last if the user left them out (the
    report stores the completed pipeline)."""
    passes = parse_pipeline(text if text else default_pipeline())
    if not any(p.name == "quantize" for p in passes):
        at = next((i for i, p in enumerate(passes) if p.name not in STRUCTURAL_PASSES), len(passes))
        passes = passes[:at] + parse_pipeline("quantize") + passes[at:]
    if not any(p.name in MATRIX_PASSES for p in passes):
        passes += parse_pipeline(default_pipeline().split(",")[-1])
    return passes


def load_model(path: Path) -> MatrixGraph:
    from nnlcc.frontends.onnx import load_onnx

    graph = load_onnx(path)
    if not graph.layers:
        raise BadInputError(f"model '{path}' has no matrix layers to compile")
    graph.verify()
    return graph


def load_data(graph: MatrixGraph, model: Path, data: Path | None, seed: int) -> Dataset:
    if data is not None:
        return load_npz(data, graph.input_size)
    if model.resolve() in (EXAMPLE_MODEL, EXAMPLE_CNN) and EXAMPLE_DATA.is_file():
        return load_npz(EXAMPLE_DATA, graph.input_size)
    sidecar = model.with_suffix(".npz")
    if sidecar.is_file():
        return load_npz(sidecar, graph.input_size)
    # images: a few random frames (1000 ResNet inputs would be 1.2 GB of calibration data)
    return random_dataset(
        graph.input_size, seed=seed, n=max(8, min(1000, 2**21 // graph.input_size))
    )


def run_passes(graph: MatrixGraph, passes: list[Any], data: Dataset, log: Log = _quiet) -> None:
    """Run ``passes`` in order; per-layer config settings are honoured by ``apply_pass``."""
    from nnlcc.config import apply_pass

    n = len(graph.matrix_layers())
    for p in passes:
        done = [0]

        def layer_step(name: str, p: Any = p, done: list[int] = done) -> None:
            done[0] += 1
            log(f"pass {p.name}: {name} ({done[0]}/{n})")

        log(f"pass {p.name}")
        apply_pass(p, graph, PassContext(calibration=data.x_calib, progress=layer_step))
        graph.verify()


def accuracy_report(graph: MatrixGraph, net: LoweredNetwork, data: Dataset) -> dict[str, Any]:
    """Float network vs golden integer model on the test inputs."""
    from nnlcc.frontends.onnx import onnx_reference

    x = data.x_test
    y_float = onnx_reference(graph.source, x) if graph.source else graph.forward_float(x)
    y_float = np.asarray(y_float, dtype=np.float64).reshape(len(x), -1)
    q = net.evaluate(net.quantize_input(x))
    y_gold = net.output_fmt.to_real(q)
    out: dict[str, Any] = {
        "dataset": data.name,
        "samples": len(x),
        "sqnr_db": round(sqnr_db(y_float, y_gold), 2),
        "argmax_agreement": round(float(np.mean(y_float.argmax(1) == y_gold.argmax(1))), 4),
        "float": None,
        "golden": None,
    }
    if data.y_test is not None:
        out["float"] = round(float(np.mean(y_float.argmax(1) == data.y_test)), 4)
        out["golden"] = round(float(np.mean(y_gold.argmax(1) == data.y_test)), 4)
    return out


def verification_vectors(
    net: LoweredNetwork, data: Dataset, n_random: int, seed: int
) -> np.ndarray:
    """The test set (quantized) followed by ``n_random`` uniformly random in-range vectors."""
    rng = np.random.default_rng(seed)
    fmt = net.input_fmt
    rand = rng.integers(fmt.lo, fmt.hi, size=(n_random, net.n_inputs), endpoint=True)
    return np.concatenate([net.quantize_input(data.x_test), rand]).astype(np.int64)


def layer_rows(graph: MatrixGraph, net: LoweredNetwork) -> list[dict[str, Any]]:
    from nnlcc.hdl.stream import stream_facts

    stream = stream_facts(net)  # kernel, stride, line_buffer_bits of a CNN's window layers
    rows = []
    for layer, low in zip(graph.layers, net.layers, strict=True):
        g = low.graph
        if not isinstance(layer, DenseLayer):  # pool, add, flatten: an adder graph, no matrix
            rows.append(_plain_row(layer.name, layer.kind, low, stream.get(layer.name, {})))
            continue
        r, c = layer.shape
        code = layer.code
        assert code is not None
        implemented = code.implemented()
        row: dict[str, Any] = {
            "name": layer.name,
            "kind": layer.kind,
            "shape": [r, c],
            "pass": code.name,
            "adders": g.adders,
            "const_adders": g.const_adders,
            "adders_per_weight": round(g.adders / max(r * c, 1), 4),
            "depth": g.depth,
            "latency": g.latency,
            "in_fmt": str(low.in_fmt),
            "out_fmt": str(low.out_fmt),
            "out_bits": low.out_fmt.bits,
            "max_bits": g.max_bits,
            "adder_bits": g.adder_bits,
            "weight_sqnr_db": round(sqnr_db(layer.weight, implemented), 2),
            "relu": layer.relu,
        }
        row["csd_baseline_adders"] = csd_baseline_layer(layer)
        row.update(_share.compression_facts(layer))  # kept/shared columns, pre-adders
        row.update({k: v for k, v in code.summary().items() if k not in row})
        row.update(stream.get(layer.name, {}))
        rows.append(row)
    return rows


def _plain_row(name: str, kind: str, low: LoweredLayer, facts: dict[str, Any]) -> dict[str, Any]:
    """Report row of a layer without weights; ``shape`` is its graph's outputs x inputs."""
    g = low.graph
    return {
        "name": name,
        "kind": kind,
        "shape": [len(g.outputs), g.n_inputs],
        "pass": low.op or kind,
        "adders": g.adders,
        "const_adders": g.const_adders,
        "adders_per_weight": None,
        "depth": g.depth,
        "latency": g.latency,
        "in_fmt": str(low.in_fmt),
        "out_fmt": str(low.out_fmt),
        "out_bits": low.out_fmt.bits,
        "max_bits": g.max_bits,
        "adder_bits": g.adder_bits,
        **facts,
    }


def csd_baseline_layer(layer: DenseLayer, bits: int = 8) -> int:
    """Plain CSD additions (no sharing) of one layer at ``bits``-bit weights."""
    from nnlcc.csd import csd_adders
    from nnlcc.fixed_point import quantize_weights

    return csd_adders(quantize_weights(layer.weight, bits)[0])


def csd_baseline(graph: MatrixGraph, bits: int = 8) -> int:
    """Plain CSD additions (no sharing) at ``bits``-bit weights: the field's baseline."""
    return sum(csd_baseline_layer(layer, bits) for layer in graph.matrix_layers())


def compile_model(opts: CompileOptions, log: Log = _quiet) -> dict[str, Any]:
    """Compile ``opts.model``; returns the report (also written to the output directory)."""
    t0 = time.perf_counter()
    model = Path(opts.model)
    log(f"frontend: {model}")
    graph = load_model(model)
    if opts.build and len(graph.input_shape) == 3:  # fail before minutes of compiling
        raise BadInputError(_NO_STREAM_SELFTEST)
    from nnlcc.boards import get_board

    board = get_board(opts.board)
    passes = user_passes = resolve_pipeline(opts.passes)
    pristine = copy.deepcopy(graph) if opts.sweep else None
    layer_config: dict[str, Any] = {}
    if opts.config is not None:
        log(f"config: {opts.config.path or 'per-layer settings'}")
        passes, layer_config = opts.config.apply(graph, passes)
    data = load_data(graph, model, opts.data, opts.seed)
    outdir = Path(opts.outdir) if opts.outdir else Path("build") / model.stem

    run_passes(graph, passes, data, log)
    from nnlcc.code_rows import code_rows, implemented_accuracy, too_big

    net: LoweredNetwork | None = None
    if opts.report_only and too_big(graph):  # e.g. ResNet-34: rows from the codes
        log("report only: per-layer costs from the matrix codes (too big to lower)")
        layers = code_rows(graph, csd_baseline_layer)
    else:
        log("lowering to adder graphs")
        net = lower_network(graph)
        layers = layer_rows(graph, net)
    weights = sum(r * c for r, c in (layer.shape for layer in graph.matrix_layers()))
    adders = sum(row["adders"] for row in layers)
    report: dict[str, Any] = {
        "nnlcc_version": _version(),
        "model": str(model),
        "model_name": graph.name,
        "board": board.name,
        "passes": format_pipeline(passes),
        "input_fmt": str(graph.input_fmt),
        "output_fmt": str(graph.layers[-1].out_fmt),
        "latency_cycles": net.latency if net is not None else None,
        "layers": layers,
        "totals": {
            "adders": adders,
            "const_adders": sum(row["const_adders"] or 0 for row in layers),
            "pre_adders": sum(row.get("pre_adders", 0) for row in layers),
            "weights": weights,
            "adders_per_weight": round(adders / max(weights, 1), 4),
            "csd_adders": csd_baseline(graph),
            "csd_weight_bits": 8,
            "adder_bits": sum(row["adder_bits"] or 0 for row in layers),
        },
    }
    from nnlcc.hdl.stream import is_streaming, stream_throughput

    if net is not None and is_streaming(net):
        # the graphs' latency sum is not end to end: line buffers wait for rows; the cocotb
        # check measures it (last pixel of the last image in -> its output out)
        report["latency_cycles"] = None
        report["throughput"] = stream_throughput(net)
    if opts.config is not None:
        report["config"] = str(opts.config.path)
        report["layer_config"] = layer_config
    if net is None:
        log("coded matrices vs float network (no golden model: too big)")
        report["accuracy"] = implemented_accuracy(graph, data.x_test[:2], data.name)
    else:
        log("golden model vs float network")
        report["accuracy"] = accuracy_report(graph, net, data)
    if pristine is not None and net is not None:
        from nnlcc.sweep import run_sweep, sweep_point

        chosen = {**sweep_point(graph, net, passes, report["accuracy"]), "chosen": True}
        report["sweep"] = [
            chosen,
            *run_sweep(pristine, user_passes, opts.sweep, data, opts.config, log),
        ]

    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        (tmp / "ir.txt").write_text(graph.to_text())
        if opts.report_only:
            report["verification"] = {
                "simulator": None,
                "vectors": 0,
                "bit_exact": None,
                "skipped": "report only",
            }
            report["resources"] = {"skipped": "report only"}
        else:
            assert net is not None  # only --report-only skips lowering
            report["verification"] = _verify(net, data, tmp, opts, log)
            if "clocks_to_last_output" in report["verification"]:
                ver = report["verification"]
                report["latency_cycles"] = ver["clocks_to_last_output"] - ver["pixels"]
            log(f"board files for {board.name}")
            from nnlcc.boards import board_build

            vectors = net.quantize_input(data.x_test)
            if is_streaming(net):  # the board self-test drives vectors, not pixel streams
                report["resources"] = _stream_resources(board, net, tmp, opts.build, log)
            else:
                report["resources"] = board_build(
                    board, net, tmp, x_int=vectors, run_pnr=opts.build, progress=log
                )
        report["seconds"] = round(time.perf_counter() - t0, 2)
        write_report(report, tmp)
        if outdir.exists():
            shutil.rmtree(outdir)
        tmp.rename(outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report["outdir"] = str(outdir)
    return report


def _verify(
    net: LoweredNetwork, data: Dataset, outdir: Path, opts: CompileOptions, log: Log
) -> dict[str, Any]:
    from nnlcc.hdl import emit_verilog

    vectors = verification_vectors(net, data, opts.random_vectors, opts.seed)
    if not opts.verify:
        emit_verilog(net, outdir / "nnlcc_top.v", name="nnlcc_top")
        return {"simulator": None, "vectors": 0, "bit_exact": None, "skipped": "--no-verify"}
    from nnlcc.sim.verify import verify_network

    log(f"cocotb: {len(vectors)} vectors back-to-back")
    res = verify_network(net, vectors, outdir, simulator=opts.simulator)
    return {
        "simulator": res.simulator,
        "vectors": res.vectors,
        "bit_exact": res.bit_exact,
        "test_set_vectors": len(data.x_test),
        "random_vectors": opts.random_vectors,
        # streaming CNNs: pixels driven (one per clock) and the clock of the last output
        **{k: res.summary[k] for k in ("pixels", "clocks_to_last_output") if k in res.summary},
    }


_NO_STREAM_SELFTEST = (
    "no board self-test exists for pixel-streaming CNNs yet: compile without --build "
    "(the resource estimate is still made)"
)


def _stream_resources(
    board: Any, net: LoweredNetwork, outdir: Path, build: bool, log: Log
) -> dict[str, Any]:
    """A CNN's board figures: the yosys estimate of the streaming top alone (there is no
    pixel-streaming board self-test yet, so no bitstream)."""
    from nnlcc.boards.build import NETWORK_MODULE, estimate_network
    from nnlcc.boards.toolchain import find_tool
    from nnlcc.errors import ToolchainError
    from nnlcc.hdl import emit_verilog

    if build:
        raise BadInputError(_NO_STREAM_SELFTEST)
    bdir = outdir / "board"
    bdir.mkdir(parents=True, exist_ok=True)
    emit_verilog(net, bdir / "network.v", NETWORK_MODULE)
    facts: dict[str, Any] = {"board": board.name, "device": board.device, "family": board.family}
    note = "pixel-streaming CNN: network estimate only, no board self-test yet"
    try:
        find_tool("yosys")
    except ToolchainError as e:
        return {**facts, "skipped": str(e), "note": note}
    log(f"board {board.name}: yosys estimate of the streaming network")
    counts, seconds = estimate_network(board.family, bdir, progress=log)
    caps = {"luts": board.luts, "ffs": board.ffs, "bram": board.bram, "dsp": board.dsp}
    return {
        **facts,
        "estimate": True,
        "tool": "yosys",
        "design": "streaming network alone (no I/O, no self-test)",
        "fmax_mhz": None,
        **counts,
        "device_luts": board.luts,
        "device_ffs": board.ffs,
        "fits": all((counts.get(k) or 0) <= cap for k, cap in caps.items()),
        "utilization_pct": round(100.0 * (counts.get("luts") or 0) / board.luts, 2),
        "timings_s": {"estimate": round(seconds, 2)},
        "note": note,
    }


def write_report(report: dict[str, Any], outdir: Path) -> None:
    from nnlcc.report import write_reports

    write_reports(report, outdir)  # report.json, report.md, report.html


def _version() -> str:
    from nnlcc import __version__

    return __version__
