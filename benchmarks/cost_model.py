"""Calibrate :mod:`nnlcc.ir.cost` on the designs nnlcc emits, and measure its error out of sample.

Usage (one command; re-running it reuses every tool result whose Verilog is unchanged)::

    nice -n 10 .venv/bin/python benchmarks/cost_model.py --results benchmarks/results/<date>
        [--families ecp5,ice40,xc7] [--only TAG,...] [-o build/bench_cost_model]

The designs (:data:`CASES`) are what ``nnlcc compile`` builds today: ``auto`` (CSD with shared
subexpressions, LCC, alkaid) with ``truncate=auto``, LCC and CSD directly, circulant, max pools
(MAX nodes), ``schedule{every=1..3}``; single layers of the shipped models and of random
matrices, whole networks, and self-test tops on their boards (in context: network, ROMs,
checker, UART reporter, as ``--build`` makes them). Each is written by nnlcc's own writers
(:func:`nnlcc.hdl.top.top_for`, the self-test tree of :mod:`nnlcc.boards.build`) and run through
the project's yosys scripts, then:

* ECP5: ``nextpnr-ecp5 --pack-only`` on an LFE5U-85F (network and layers ``--out-of-context``,
  self-tests in context with their pins): TRELLIS_COMB and TRELLIS_FF, the cells placement
  keeps (checked: :data:`PLACE_CHECKS` are placed too, see ``place`` in the JSON);
* iCE40: ``nextpnr-ice40 --pack-only`` on the iCEBreaker's UP5K: ICESTORM_LC (logic cells,
  each a LUT4 and a flip-flop) beside yosys's SB_LUT4 and flip-flops;
* xc7: yosys ``synth_xilinx`` only. No open placer exists for 7-series and Vivado is not run:
  the xc7 figures are calibrated against yosys's LUT count (LUT1-6, SRLs) and flip-flops.

The LUT coefficients (:class:`nnlcc.ir.family.CostModel`) are fitted by non-negative least
squares on the layers and networks (out of context) against placed LUTs on ECP5 and yosys
LUTs on iCE40 and xc7. Errors are reported three ways: with the stored coefficients
(in-sample once they are copied from this run), **leave-one-out** (each design predicted by
coefficients fitted on the others: what the family table stores and the reports print) and on
the self-test tops, which no fit sees (held out; the model's network figure plus
:func:`nnlcc.boards.fit.wrapper_resources`). Flip-flops have no fitted coefficient (the model
counts them), so their error is out of sample by construction.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnlcc.boards import get_board
from nnlcc.boards.build import SELFTEST_NAME, synth_script
from nnlcc.boards.build import _pnr_args as pnr_args  # the board flow's own arguments
from nnlcc.boards.build import _selftest_plan as selftest_plan
from nnlcc.boards.fit import model_resources
from nnlcc.boards.stream_selftest import selftest_inputs
from nnlcc.boards.toolchain import count_cells, parse_nextpnr, read_yosys_stat, run_tool
from nnlcc.compile_layer import one_layer_network
from nnlcc.data import Dataset
from nnlcc.driver import load_data, load_model, run_passes
from nnlcc.hdl.top import top_for
from nnlcc.ir.family import ECP5, FAMILIES
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.lower import lower_network, lower_pool
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import DenseLayer, MatrixGraph, PoolLayer
from nnlcc.ir.window import Window
from nnlcc.passes import PassContext, parse_pipeline, resolve_pipeline

sys.path.insert(0, str(Path(__file__).parent))
from harness import HARNESS, harness_verilog

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "mlp": ROOT / "examples" / "digits_mlp.onnx",
    "pruned": ROOT / "examples" / "digits_mlp_pruned.onnx",
    "cnn": ROOT / "examples" / "digits_cnn.onnx",
}
NETWORK = "nnlcc_network"


@dataclass(frozen=True)
class Case:
    """One design: ``source`` is a shipped model (``mlp``, ``pruned``, ``cnn``), ``rand:RxC``
    (a random dense layer) or ``maxpool:CxK`` (a ``K x K`` max pool of ``C`` channels); ``part`` is ``network``,
    ``selftest:<board>`` or a layer's name (``layer`` for a random one)."""

    tag: str
    source: str
    pipeline: str
    part: str = "layer"

    @property
    def group(self) -> str:
        return (
            "selftest"
            if self.part.startswith("selftest")
            else ("network" if self.part == "network" else "layer")
        )


AUTO_LOW = "auto{sqnr_db=18}"  # what --accuracy-drop picks for fc1 on the digits MLP
CASES: tuple[Case, ...] = (
    # single layers (out of context), small to mid first: the shipped models' layers as
    # nnlcc compile codes them, and random matrices for shapes and codes the examples lack
    Case("cnn_conv1", "cnn", "quantize,auto", "conv1"),
    Case("cnn_pool1", "cnn", "quantize,auto", "pool1"),
    Case("cnn_conv2", "cnn", "quantize,auto", "conv2"),
    Case("cnn_pool2", "cnn", "quantize,auto", "pool2"),
    Case("cnn_fc", "cnn", "quantize,auto", "fc"),
    Case("maxpool32", "maxpool:32x2", "quantize"),
    Case("mlp_fc2", "mlp", "quantize,auto", "fc2"),
    Case("mlp_fc2_24db", "mlp", "quantize,auto{sqnr_db=24}", "fc2"),
    Case("mlp_fc2_every2", "mlp", "quantize,auto,schedule{every=2}", "fc2"),
    Case("mlp_fc2_every3", "mlp", "quantize,auto,schedule{every=3}", "fc2"),
    Case("rand32x32_csd5", "rand:32x32", "quantize,csd{weight_bits=5}"),
    Case("rand24x48_share", "rand:24x48", "quantize,share{clusters=16},auto"),
    Case("rand64x64_circ4", "rand:64x64", "quantize,circulant{block=4}"),
    Case("rand32x96_circ8", "rand:32x96", "quantize,circulant{block=8}"),
    Case("rand128x16_auto", "rand:128x16", "quantize,auto{sqnr_db=35}"),
    Case("rand16x128_auto", "rand:16x128", "quantize,auto{sqnr_db=35}"),
    Case("rand48x48_lcc_every2", "rand:48x48", "quantize,lcc{sqnr_db=30},schedule{every=2}"),
    Case("rand64x64_auto30", "rand:64x64", "quantize,auto{sqnr_db=30}"),
    Case("pruned_fc1", "pruned", "quantize,auto", "fc1"),
    # small ones: each through three families in a few minutes on a contended machine
    Case("rand8x16_csd", "rand:8x16", "quantize,csd"),
    Case("rand16x16_lcc", "rand:16x16", "quantize,lcc{sqnr_db=35}"),
    Case("rand16x24_alkaid", "rand:16x24", "quantize,auto{coders=alkaid,sqnr_db=30}"),
    Case("rand12x32_every2", "rand:12x32", "quantize,auto{sqnr_db=30},schedule{every=2}"),
    Case("rand16x16_circ4", "rand:16x16", "quantize,circulant{block=4}"),
    Case("rand8x32_every3", "rand:8x32", "quantize,auto{sqnr_db=35},schedule{every=3}"),
    Case("maxpool16", "maxpool:16x2", "quantize"),
    Case("mlp_fc1_18db", "mlp", f"quantize,{AUTO_LOW}", "fc1"),
    Case("mlp_fc1_alkaid", "mlp", "quantize,auto{coders=alkaid}", "fc1"),
    # whole networks, out of context
    Case("cnn_net", "cnn", "quantize,auto", "network"),
    Case("mlp_net_low", "mlp", f"quantize,{AUTO_LOW}", "network"),
    Case("pruned_net", "pruned", "quantize,auto", "network"),
    # self-test tops in context (held out: no fit sees them)
    Case("cnn_selftest_ice40", "cnn", "quantize,auto", "selftest:icebreaker"),
    Case("mlp_low_selftest_ecp5", "mlp", f"quantize,{AUTO_LOW}", "selftest:ulx3s"),
    Case("cnn_selftest_ecp5", "cnn", "quantize,auto", "selftest:ulx3s"),
    # the big ones last (a run that is cut short loses these first)
    Case("mlp_fc1", "mlp", "quantize,auto", "fc1"),
    Case("mlp_fc1_every3", "mlp", "quantize,auto,schedule{every=3}", "fc1"),
    Case("mlp_fc1_lcc", "mlp", "quantize,lcc", "fc1"),
    Case("mlp_net", "mlp", "quantize,auto", "network"),
    Case("mlp_selftest_ecp5", "mlp", "quantize,auto", "selftest:ulx3s"),
)

#: Designs also placed (not only packed), to check that placement keeps the packed counts:
#: out of context on ECP5; on the UP5K (39 pins) inside the serial wrapper of
#: ``benchmarks/harness.py``, whose own cells are counted apart (``harness_ice40``).
PLACE_CHECKS = {"mlp_fc2": ("ecp5", "ice40"), "mlp_low_selftest_ecp5": ("ecp5",)}

#: nextpnr's device arguments per family for designs out of context (the network alone).
PACK_ARGS = {
    "ecp5": ["--85k", "--package", "CABGA381", "--out-of-context"],
    "ice40": ["--up5k", "--package", "sg48"],
}


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ designs


@functools.cache
def _model_graph(source: str, pipeline: str) -> tuple[MatrixGraph, Dataset]:
    path = MODELS[source]
    graph = load_model(path)
    data = load_data(graph, path, None, 0)
    run_passes(graph, resolve_pipeline(pipeline), data, board="ulx3s")
    return graph, data


def _random_graph(spec: str, pipeline: str, seed: int) -> MatrixGraph:
    rows, cols = (int(v) for v in spec.split("x"))
    rng = np.random.default_rng(seed)
    layer = DenseLayer(
        name="fc",
        weight=rng.normal(0.0, 1.0 / np.sqrt(cols), size=(rows, cols)),
        bias=rng.normal(0.0, 0.1, size=rows),
        relu=True,
    )
    graph = MatrixGraph("rand", "x", cols, "y", [layer])
    ctx = PassContext(rng.normal(0.0, 1.0, size=(512, cols)), ECP5)
    for p in parse_pipeline(pipeline):
        p.apply(graph, ctx)
    return graph


def _maxpool(spec: str) -> LoweredNetwork:
    """A ``k x k`` max pool's graph on ``C`` channels of unsigned 8-bit values (``CxK``).
    (3 x 3 on 4 or more channels trips an assertion in yosys 0.70's synth_ecp5, ABC9.)"""
    c, k = (int(v) for v in spec.split("x"))
    fmt = FixedFormat(8, 4, signed=False)
    layer = PoolLayer("pool", "max", (c, 8, 8), Window((k, k)), in_fmt=fmt, out_fmt=fmt)
    low = lower_pool(layer, fmt)
    low.kind, low.window, low.image, low.inputs = "dense", None, (), ()
    return LoweredNetwork("pool", fmt, [low], (low.graph.n_inputs,))


def design(case: Case) -> tuple[LoweredNetwork, Dataset | None]:
    """The lowered network of ``case`` (a layer is a one-layer vector network, as
    ``nnlcc compile --layer`` builds it), and its data for a self-test's ROMs."""
    seed = int(hashlib.sha256(case.tag.encode()).hexdigest()[:8], 16)
    if case.source.startswith("maxpool:"):
        return _maxpool(case.source.split(":")[1]), None
    if case.source.startswith("rand:"):
        graph = _random_graph(case.source.split(":")[1], case.pipeline, seed)
        return one_layer_network(graph, graph.matrix_layers()[0]), None
    graph, data = _model_graph(case.source, case.pipeline)
    if case.part == "network" or case.part.startswith("selftest"):
        return lower_network(graph), data
    layer = next(la for la in graph.layers if la.name == case.part)
    if isinstance(layer, PoolLayer):
        assert layer.in_fmt is not None
        low = lower_pool(layer, layer.in_fmt)
        low.kind, low.window, low.image, low.inputs = "dense", None, (), ()
        return LoweredNetwork(f"{graph.name}_{layer.name}", layer.in_fmt, [low],
                              (low.graph.n_inputs,)), None  # fmt: skip
    assert isinstance(layer, DenseLayer | type(layer))
    return one_layer_network(graph, layer), None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- tool runs


class Cache:
    """Tool results of one design directory, kept while its Verilog is unchanged."""

    def __init__(self, workdir: Path, digest: str) -> None:
        self.path = workdir / "tools.json"
        old = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.data: dict[str, Any] = old if old.get("verilog_sha") == digest else {}
        self.data["verilog_sha"] = digest

    #: ``--cached-only``: never run a tool, report what an earlier run measured
    offline = False

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def missing(self, key: str) -> bool:
        """Whether ``key`` must be measured now (never with :attr:`offline`)."""
        return self.data.get(key) is None and not Cache.offline

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.path.write_text(json.dumps(self.data, indent=1) + "\n")


def _pack(fam: str, netlist: str, cwd: Path, step: str, extra: list[str]) -> dict[str, Any]:
    tool = FAMILIES[fam].toolchain.pnr
    assert tool is not None
    args = [*extra, "--json", netlist, "--report", f"{step}.json", "--log", f"{step}.log",
            "--quiet"]  # fmt: skip
    run = run_tool(tool, args, cwd=cwd, step=step, check=False)
    if run.returncode != 0:
        failed = {"failed": (run.output.strip().splitlines() or ["?"])[-1], "seconds": run.seconds}
        return _recover(fam, failed, cwd / f"{step}.log")
    res = parse_nextpnr("", json.loads((cwd / f"{step}.json").read_text()))
    fam_obj = FAMILIES[fam]
    return {
        "luts": res.used(fam_obj, "luts"),
        "ffs": res.used(fam_obj, "ffs"),
        "bram": res.used(fam_obj, "bram"),
        "seconds": round(run.seconds, 1),
    }


def _recover(fam: str, got: Any, log: Path) -> Any:
    """A run that failed after its utilisation table (the board's arguments ask for a
    bitstream config, which a --pack-only run cannot write): the table from its log."""
    if not isinstance(got, dict) or "failed" not in got or not log.is_file():
        return got
    text = log.read_text(errors="replace")
    if "Device utilisation" not in text:
        return got
    res = parse_nextpnr(text)
    fam_obj = FAMILIES[fam]
    return {
        "luts": res.used(fam_obj, "luts"),
        "ffs": res.used(fam_obj, "ffs"),
        "bram": res.used(fam_obj, "bram"),
        "seconds": got.get("seconds"),
        "note": f"utilisation read from the log; the run then failed: {got['failed'].strip()}",
    }


def _synth(fam: str, verilog: str, top: str, cwd: Path) -> dict[str, Any]:
    family = FAMILIES[fam]
    script = synth_script(family, verilog, top, f"stat_{fam}.json")
    if family.open_pnr:
        script += f"write_json net_{fam}.json\n"
    (cwd / f"synth_{fam}.ys").write_text(script)
    run = run_tool("yosys", ["-q", "-l", f"synth_{fam}.log", f"synth_{fam}.ys"], cwd=cwd,
                   step=f"synth_{fam}")  # fmt: skip
    cells = read_yosys_stat(cwd / f"stat_{fam}.json")
    return {**count_cells(family, cells), "cells": cells, "seconds": round(run.seconds, 1)}


def measure_network(case: Case, net: LoweredNetwork, fams: list[str], wd: Path) -> dict[str, Any]:
    """yosys (and nextpnr's packer) on the network alone, per family."""
    top_for(net).emit(wd / "network.v", NETWORK)
    digest = hashlib.sha256((wd / "network.v").read_bytes()).hexdigest()
    cache = Cache(wd, digest)
    out: dict[str, Any] = {}
    for fam in fams:
        key = f"yosys_{fam}"
        if cache.missing(key):
            say(f"  {case.tag}: yosys {fam}")
            cache.put(key, _synth(fam, "network.v", NETWORK, wd))
        out[key] = cache.get(key)
        if fam in PACK_ARGS:
            key = f"pack_{fam}"
            if cache.missing(key):
                say(f"  {case.tag}: nextpnr-{fam} --pack-only")
                cache.put(key, _pack(fam, f"net_{fam}.json", wd, key,
                                     [*PACK_ARGS[fam], "--pack-only"]))  # fmt: skip
            out[key] = cache.get(key)
        if fam in PLACE_CHECKS.get(case.tag, ()):
            out.update(_place_check(case, net, fam, wd, cache))
    return out


def _place_check(
    case: Case, net: LoweredNetwork, fam: str, wd: Path, cache: Cache
) -> dict[str, Any]:
    """Placement of the network alone (ECP5, out of context) or in the serial harness
    (iCE40: with its packed count, to subtract it)."""
    out: dict[str, Any] = {}
    if fam == "ecp5":
        key = "place_ecp5"
        if cache.missing(key):
            say(f"  {case.tag}: nextpnr-ecp5 placement (check)")
            cache.put(key, _pack(fam, "net_ecp5.json", wd, key, [*PACK_ARGS[fam], "--no-route"]))
        return {key: cache.get(key)}
    meta = top_for(net).emit(wd / "network.v", NETWORK)
    (wd / "harness.v").write_text((wd / "network.v").read_text() + harness_verilog(meta))
    if cache.missing("harness_yosys_ice40"):
        say(f"  {case.tag}: yosys ice40 (in the harness)")
        script = synth_script(FAMILIES[fam], "harness.v", HARNESS, "stat_h.json")
        (wd / "synth_h.ys").write_text(script + "write_json h_ice40.json\n")
        run_tool("yosys", ["-q", "-l", "synth_h.log", "synth_h.ys"], cwd=wd, step="synth_h")
        cells = read_yosys_stat(wd / "stat_h.json")
        cache.put("harness_yosys_ice40", {**count_cells(FAMILIES[fam], cells), "cells": cells})
    args = ["--up5k", "--package", "sg48", "--pcf-allow-unconstrained"]
    for key, flag in (("harness_pack_ice40", "--pack-only"), ("harness_place_ice40", "--no-route")):
        if cache.missing(key):
            say(f"  {case.tag}: nextpnr-ice40 {flag} (in the harness)")
            cache.put(key, _pack(fam, "h_ice40.json", wd, key, [*args, flag]))
        out[key] = cache.get(key)
    out["harness_yosys_ice40"] = cache.get("harness_yosys_ice40")
    return out


def measure_selftest(
    case: Case, net: LoweredNetwork, data: Dataset | None, wd: Path
) -> dict[str, Any]:
    """The board's self-test top as ``--build`` writes it, through its own yosys script
    and nextpnr's packer (placed too for :data:`PLACE_CHECKS`)."""
    board = get_board(case.part.split(":")[1])
    fam = board.family.name
    x = selftest_inputs(net, net.quantize_input(data.x_test) if data is not None else None)
    plan, _ = selftest_plan(board, net, x, script_after_synth=f"tee -q -o {SELFTEST_NAME}_stat.json stat -json")  # fmt: skip
    sdir = wd / "selftest"
    plan.extract(str(sdir))
    digest = hashlib.sha256(
        b"".join(
            p.read_bytes()
            for p in sorted(sdir.glob("*"))
            if p.is_file() and p.suffix in (".v", ".il", ".ys", ".lpf", ".pcf")
        )
    ).hexdigest()
    cache = Cache(wd, digest)
    out: dict[str, Any] = {"family": fam, "board": board.name}
    if cache.missing(f"yosys_{fam}"):
        say(f"  {case.tag}: yosys {fam} (self-test top)")
        run = run_tool("yosys", ["-q", "-l", f"{SELFTEST_NAME}.rpt", f"{SELFTEST_NAME}.ys"],
                       cwd=sdir, step="synth")  # fmt: skip
        cells = read_yosys_stat(sdir / f"{SELFTEST_NAME}_stat.json")
        cache.put(f"yosys_{fam}", {**count_cells(board.family, cells), "cells": cells,
                                   "seconds": round(run.seconds, 1)})  # fmt: skip
    out[f"yosys_{fam}"] = cache.get(f"yosys_{fam}")
    args = [a for a in pnr_args(board, board.platform()) if a not in ("--quiet",)]
    args = _without(args, ("--log", "--report", "--json"))
    for key, flag in (("pack", "--pack-only"), ("place", "--no-route")):
        if key == "place" and fam not in PLACE_CHECKS.get(case.tag, ()):
            continue
        k = f"{key}_{fam}"
        if cache.missing(k):
            say(f"  {case.tag}: nextpnr-{fam} {flag} (self-test top)")
            cache.put(k, _pack(fam, f"{SELFTEST_NAME}.json", sdir, k, [*args, flag]))
        out[k] = _recover(fam, cache.get(k), sdir / f"{k}.log")
    return out


def _without(args: list[str], options: tuple[str, ...]) -> list[str]:
    """``args`` without each option of ``options`` and its value."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in options:
            skip = True
            continue
        out.append(a)
    return out


# --------------------------------------------------------------------------------- main


def conditions(workdir: Path) -> dict[str, Any]:
    def version(tool: str) -> str:
        r = run_tool(tool, ["--version"], cwd=workdir, step=f"version_{tool}", check=False)
        return r.output.strip().splitlines()[-1] if r.output.strip() else tool

    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} ({platform.system()}, 2 cores shared by ~6 agents,"
        " nice 10)",
        "python": platform.python_version(),
        "yosys": version("yosys"),
        "nextpnr-ecp5": version("nextpnr-ecp5"),
        "nextpnr-ice40": version("nextpnr-ice40"),
    }


def run_case(case: Case, fams: list[str], outdir: Path, with_model: bool = True) -> dict[str, Any]:
    net, data = design(case)
    wd = outdir / case.tag
    wd.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if case.group == "selftest":
        tools = measure_selftest(case, net, data, wd)
    else:
        tools = measure_network(case, net, fams, wd)
    row: dict[str, Any] = {
        "tag": case.tag,
        "source": case.source,
        "pipeline": case.pipeline,
        "part": case.part,
        "group": case.group,
        "adders": sum(la.graph.adders for la in net.layers),
        "latency": net.latency,
        "tools": tools,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    if not with_model:
        return row
    from nnlcc.boards.headroom import wrapper_resources

    # the model's figures, per family, as the compile computes them
    model: dict[str, Any] = {}
    for name, fam in FAMILIES.items():
        res = model_resources(net, fam)
        model[name] = {"luts": res["luts"], "ffs": res["ffs"], "bram": res["bram"]}
        if case.group == "selftest" and tools.get("family") == name:
            model[name]["wrapper"] = wrapper_resources(net, fam)
    row["model"] = model
    row["features"] = {n: feats(net, f) for n, f in FAMILIES.items()}
    return row


def feats(net: LoweredNetwork, fam: Any) -> dict[str, int]:
    from dataclasses import asdict

    from nnlcc.ir.cost import estimate_network

    total = estimate_network(net, fam).total
    assert total is not None
    return asdict(total.features)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default="ecp5,ice40,xc7", help="comma list")
    ap.add_argument("--only", default="", help="comma list of case tags (default: all)")
    ap.add_argument("-o", "--outdir", type=Path, default=Path("build") / "bench_cost_model")
    ap.add_argument("--results", type=Path, default=None, help="write cost_model.{json,md} here")
    ap.add_argument("--measure-only", action="store_true", help="run the tools, no fit")
    ap.add_argument(
        "--cached-only", action="store_true", help="run no tool: fit what earlier runs measured"
    )
    args = ap.parse_args(argv)
    fams = [f for f in args.families.split(",") if f]
    Cache.offline = args.cached_only
    only = [t for t in args.only.split(",") if t]
    t0 = time.perf_counter()
    rows = []
    by_tag = {c.tag: c for c in CASES}
    cases = [by_tag[t] for t in only] if only else list(CASES)  # --only: in its order
    if Cache.offline:  # only what an earlier run measured
        cases = [c for c in cases if (args.outdir / c.tag / "tools.json").is_file()]
    for i, case in enumerate(cases, 1):
        say(f"[{i}/{len(cases)}] {case.tag}: {case.pipeline} ({time.perf_counter() - t0:.0f} s)")
        rows.append(run_case(case, fams, args.outdir, with_model=not args.measure_only))
    if args.measure_only:
        return 0
    from cost_fit import analyse, markdown  # benchmarks/cost_fit.py: the fit and the tables

    stats = analyse(rows, fams)
    cond = {**conditions(args.outdir), "families": fams,
            "run_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    md = markdown(rows, stats, cond)
    print(md)
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        payload = {"conditions": cond, "stats": stats, "designs": rows}
        (args.results / "cost_model.json").write_text(json.dumps(payload, indent=1) + "\n")
        (args.results / "cost_model.md").write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
