"""The compile driver: everything ``nnlcc compile`` does, as a Python API.

model.onnx -> MatrixGraph -> passes -> LoweredNetwork (golden model) -> Verilog -> cocotb check
-> board resources (the calibrated cost model; yosys with --synth, yosys + nextpnr with
--build) -> report.json / report.md, all written atomically into one directory.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnlcc import examples
from nnlcc.baselines import layer_facts
from nnlcc.data import Dataset, load_npz, load_val, random_dataset
from nnlcc.errors import BadInputError
from nnlcc.frontends import load_model
from nnlcc.hdl.top import TopStrategy, top_class, top_for
from nnlcc.ir.cost import NetworkCost, estimate_network
from nnlcc.ir.family import family_option
from nnlcc.ir.lower import lower_network
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import MatrixGraph
from nnlcc.ir.text import print_graph
from nnlcc.jobs import SERIAL, Jobs, check_jobs, open_jobs
from nnlcc.outdir import check_outdir, default_name, staged_outdir
from nnlcc.passes import (
    Pass,
    attach_layer_settings,
    format_pipeline,
    parse_pipeline,
    resolve_pipeline,
)
from nnlcc.passes import run_passes as _run_passes
from nnlcc.report.accuracy import accuracy_report
from nnlcc.report.files import plain
from nnlcc.report.rows import implemented_accuracy, layer_rows, layer_totals, too_big
from nnlcc.report.schema import AccuracyDrop, Report, Resources, Verification

if TYPE_CHECKING:
    from nnlcc.boards.profiles import BoardProfile
    from nnlcc.config import Config

EXAMPLE_MODEL = examples.MODEL
EXAMPLE_DATA = examples.DATA
EXAMPLE_CNN = examples.CNN  # same test images as the MLP
DEFAULT_BOARD = "arty-a7"


Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class CompileOptions:
    model: Path = EXAMPLE_MODEL
    board: str = DEFAULT_BOARD
    outdir: Path | None = None
    passes: str | None = None
    data: Path | None = None
    verify: bool = True
    random_vectors: int = 1000
    simulator: str | None = None
    build: bool = False
    synth: bool = False  # refine the cost model's resource estimate with yosys (minutes)
    report_only: bool = False
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    config: Config | None = None  # nnlcc.toml: per-layer settings (see nnlcc.config)
    sweep: list[str] = field(default_factory=list)  # other settings tried (see nnlcc.sweep)
    force: bool = False  # replace an existing OUTDIR nnlcc did not write (see nnlcc.outdir)
    # points of golden accuracy auto may give up (None: DEFAULT_DROP with --data, else off)
    accuracy_drop: float | None = None
    # tasks at once (nnlcc.jobs): 1 one after another in this process; None the machine's
    # cores, on a local cluster started where it pays off; N a local cluster of N workers
    jobs: int | None = 1
    cluster: str | None = None  # an existing Dask scheduler's address (then jobs is its)
    val: Path | None = None  # labelled data --accuracy-drop chooses on (x_val, y_val)

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> CompileOptions:
        """Options from the ``[compile]`` table of ``config``, with ``overrides`` (not None)
        winning; per-layer rules travel along as ``config``."""
        from nnlcc.config import COMPILE_KEYS

        kwargs: dict[str, Any] = {COMPILE_KEYS[k][1]: v for k, v in config.compile.items()}
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        return cls(config=config if config.path or config.rules else None, **kwargs)

    def validate(self) -> None:
        """Check the options that need no model, before any pass runs."""
        from nnlcc.sim.runner import SIMULATORS

        where = f" (in {self.config.path})" if self.config is not None and self.config.path else ""
        if isinstance(self.random_vectors, bool) or not 0 <= self.random_vectors <= 10**7:
            raise BadInputError(
                f"--vectors must be in 0..10000000, not {self.random_vectors}{where}"
            )
        if isinstance(self.seed, bool) or not 0 <= self.seed < 2**63:
            raise BadInputError(f"seed must be in 0..2**63-1, not {self.seed}{where}")
        drop = self.accuracy_drop
        if drop is not None and (
            isinstance(drop, bool) or not isinstance(drop, int | float) or not 0 <= drop <= 100
        ):
            raise BadInputError(
                f"--accuracy-drop must be a number of accuracy points in 0..100, not {drop}{where}"
            )
        check_jobs(self.jobs, self.cluster, where)
        if self.simulator is not None and self.simulator not in SIMULATORS:
            raise BadInputError(
                f"unknown simulator {self.simulator!r}{where}; use one of {', '.join(SIMULATORS)}"
            )
        resolve_pipeline(self.passes)  # an unknown pass or option: one line, before any work
        for entry in self.sweep:
            parse_pipeline(entry)

    def output_dir(self, default: str) -> Path:
        """OUTDIR: the option, else ``build/<default>``."""
        return Path(self.outdir) if self.outdir is not None else Path("build") / default


def command_jobs(jobs: int | None, config: Config) -> int | None:
    """``--jobs`` as the commands read it: given, else ``[compile] jobs`` of the config, else
    None (the machine's cores, on a local cluster where it pays off: :mod:`nnlcc.jobs`); the
    Python API's default is 1 instead (:class:`CompileOptions`)."""
    if jobs is not None:
        return jobs
    found: int | None = config.compile.get("jobs")
    return found


def _anchors(opts: CompileOptions) -> list[Path]:
    """The user's input files, whose folders an OUTDIR never replaces."""
    files = [opts.model, opts.data, opts.val, opts.config.path if opts.config is not None else None]
    return [Path(f) for f in files if f is not None]


def load_data(
    graph: MatrixGraph, model: Path | None, data: Path | None, seed: int, log: Log = _quiet
) -> Dataset:
    """``data``, else the shipped examples' data, else a ``MODEL.npz`` beside the model when its
    arrays fit (named as such in the report), else random inputs (``model`` None: no model
    file, e.g. IR text read from stdin)."""
    n_classes = graph.output_size if graph.output_size > 1 else None
    if data is not None:
        return load_npz(data, graph.input_size, n_classes)
    if model is not None:
        if (
            model.resolve() in (EXAMPLE_MODEL.resolve(), EXAMPLE_CNN.resolve())
            and EXAMPLE_DATA.is_file()
        ):
            return load_npz(EXAMPLE_DATA, graph.input_size, n_classes)
        sidecar = model.with_suffix(".npz")
        if sidecar.is_file():
            try:
                found = load_npz(sidecar, graph.input_size, n_classes)
            except BadInputError as e:
                log(f"warning: not using {sidecar} found beside the model: {e}")
            else:
                log(f"note: using {sidecar}, found beside the model (--data chooses another)")
                found.name = f"{sidecar.name} (found beside the model)"
                return found
    # images: a few random frames (1000 ResNet inputs would be 1.2 GB of calibration data)
    return random_dataset(
        graph.input_size, seed=seed, n=max(8, min(1000, 2**21 // graph.input_size))
    )


def run_passes(
    graph: MatrixGraph,
    passes: list[Pass],
    data: Dataset,
    log: Log = _quiet,
    *,
    board: str | BoardProfile = DEFAULT_BOARD,
    jobs: Jobs = SERIAL,
) -> None:
    """Run ``passes`` on the calibration inputs of ``data`` (per-layer settings honoured) for
    ``board`` (its FPGA family is what ``auto`` prices its candidates on); ``jobs`` runs a
    matrix pass's layers (:mod:`nnlcc.jobs`)."""
    from nnlcc.boards import get_board

    _run_passes(graph, passes, data.x_calib, get_board(board).family, log, jobs)


def verification_vectors(
    net: LoweredNetwork, data: Dataset, n_random: int, seed: int
) -> np.ndarray:
    """The test set (quantized) followed by ``n_random`` uniformly random in-range vectors."""
    rng = np.random.default_rng(seed)
    fmt = net.input_fmt
    rand = rng.integers(fmt.lo, fmt.hi, size=(n_random, net.n_inputs), endpoint=True)
    return np.concatenate([net.quantize_input(data.x_test), rand]).astype(np.int64)


def compile_model(opts: CompileOptions, log: Log = _quiet) -> Report:
    """Compile ``opts.model``; returns the report (also written to the output directory).

    The steps: :func:`code_model` (frontend, per-layer settings, data, passes),
    :func:`lower_model` (golden model, cost model, fit check), :func:`build_report` (rows,
    baselines, accuracy, sweep), each running its per-layer work as tasks of the run's jobs
    (``opts.jobs``, ``opts.cluster``: :mod:`nnlcc.jobs`, stopped before the hardware steps),
    then into the staged output directory the IR text, :func:`check_and_build` (cocotb,
    board files) and the reports."""
    t0 = time.perf_counter()
    opts.validate()
    model = Path(opts.model)
    outdir = opts.output_dir(default_name(model.stem))
    check_outdir(outdir, _anchors(opts), opts.force)  # before minutes of compiling
    with open_jobs(opts.jobs, opts.cluster, log, warm=WORKER_MODULES) as jobs:
        coded = code_model(opts, log, jobs)
        net, cost = lower_model(coded, opts, log, jobs)
        report = build_report(coded, net, cost, opts, log, jobs)
    with staged_outdir(outdir, _anchors(opts), opts.force, log) as tmp:
        if too_big(coded.graph):  # the parseable IR of ResNet-34 would be hundreds of MB
            log("ir.txt skipped: the network is too big to print its IR")
        else:
            (tmp / "ir.txt").write_text(print_graph(coded.graph))
        check_and_build(report, coded, net, cost, tmp, opts, log)
        report.seconds = round(time.perf_counter() - t0, 2)
        write_report(report, tmp)
    report.outdir = str(outdir)
    return report


#: What a local cluster's workers import as they start (while the frontend runs here).
WORKER_MODULES = ("nnlcc.passes.auto", "nnlcc.passes.lcc", "nnlcc.ir.lower")


@dataclass
class Coded:
    """A model after its passes (:func:`code_model`), and what the report says of how."""

    graph: MatrixGraph
    board: BoardProfile
    data: Dataset
    passes: list[Pass]  # the pipeline as run (completed, per-layer matrix passes added)
    user_passes: list[Pass]  # the pipeline as the user wrote it (what a sweep edits)
    layer_config: dict[str, Any]  # the per-layer settings applied, by layer
    targets: AccuracyDrop | None  # --accuracy-drop's search (None: fixed targets)
    pristine: MatrixGraph | None  # the graph before the passes, for a sweep


def prepare_jobs(jobs: Jobs, graph: MatrixGraph, sweep: list[str]) -> None:
    """Tell ``jobs`` how much work is coming (a local cluster starts if it pays off): one task
    per matrix layer, or per sweep point."""
    layers = graph.matrix_layers()
    weights = sum(layer.weight.size for layer in layers)
    jobs.prepare(tasks=max(len(layers), len(sweep)), work=weights * (1 + len(sweep)))


def code_model(opts: CompileOptions, log: Log = _quiet, jobs: Jobs = SERIAL) -> Coded:
    """Import ``opts.model``, attach its per-layer settings and run the passes on its data (with
    ``--accuracy-drop``, choosing auto's per-layer SQNR targets); ``jobs`` runs the per-layer
    work."""
    model = Path(opts.model)
    log(f"frontend: {model}")
    graph = load_model(model)
    prepare_jobs(jobs, graph, opts.sweep)
    refusal = top_class(graph.input_shape).selftest_refusal
    if opts.build and refusal is not None:  # fail before minutes of compiling
        raise BadInputError(refusal)
    from nnlcc.boards import get_board

    board = get_board(opts.board)
    passes = user_passes = resolve_pipeline(opts.passes)
    pristine = copy.deepcopy(graph) if opts.sweep else None
    layer_config: dict[str, Any] = {}
    if opts.config is not None:
        log(f"config: {opts.config.path or 'per-layer settings'}")
        settings = opts.config.layer_settings(graph)
        passes, layer_config = attach_layer_settings(graph, passes, settings)
    data = load_data(graph, model, opts.data, opts.seed, log)
    if opts.val is not None:
        n_classes = graph.output_size if graph.output_size > 1 else None
        data.x_val, data.y_val = load_val(Path(opts.val), graph.input_size, n_classes)
        data.val_source = f"--val file {Path(opts.val).name} ({len(data.x_val)} samples)"
    drop = accuracy_drop(opts, passes, data, bool(layer_config), log)
    if drop is not None and opts.accuracy_drop is None and _all_imported(graph):
        log("note: a quantized model keeps its integers (--accuracy-drop trades them)")
        drop = None
    targets = None
    if drop is None:
        run_passes(graph, passes, data, log, board=board, jobs=jobs)
    else:
        from nnlcc.sweep import choose_targets

        run_passes(graph, passes[:-1], data, log, board=board, jobs=jobs)
        auto = passes[-1]
        family = family_option(auto.name, getattr(auto, "family", "")) or board.family
        # an imported model's integers are traded only when the user asked for a drop
        default = opts.accuracy_drop is None
        targets = choose_targets(
            graph, auto, data, drop, family, log, jobs, trade_imported=not default, default=default
        )
    return Coded(graph, board, data, passes, user_passes, layer_config, targets, pristine)


def lower_model(
    coded: Coded, opts: CompileOptions, log: Log = _quiet, jobs: Jobs = SERIAL
) -> tuple[LoweredNetwork | None, NetworkCost | None]:
    """The golden model (each matrix layer lowered as a task of ``jobs``) and its cost-model
    estimate on the board's family (``--build``: the fit check too); neither for a network too
    big to lower in ``--report-only``."""
    board = coded.board
    if opts.report_only and too_big(coded.graph):  # e.g. ResNet-34: rows from the codes
        log("report only: per-layer costs from the matrix codes (too big to lower)")
        return None, None
    log("lowering to adder graphs")
    net = lower_network(coded.graph, board.family, jobs)
    warn_wide(net, log)
    log(f"cost model: LUTs and FFs per layer ({board.family})")
    cost = estimate_network(net, board.family)
    if opts.build and not opts.report_only:  # before the cocotb check and the tools
        from nnlcc.boards.fit import check_fit

        check_fit(board, net, cost)
    return net, cost


def build_report(
    coded: Coded,
    net: LoweredNetwork | None,
    cost: NetworkCost | None,
    opts: CompileOptions,
    log: Log = _quiet,
    jobs: Jobs = SERIAL,
) -> Report:
    """The report of a coded model: its rows (baselines priced only with a lowered network),
    totals, accuracy and sweep (baselines and sweep points: tasks of ``jobs``); verification
    and resources come later (:func:`check_and_build`)."""
    graph, board, data = coded.graph, coded.board, coded.data
    # the compile step of the report: facts and baselines (priced only with a lowered network)
    # ... and each layer's SQNR after truncation, on the calibration data
    x_int = net.quantize_input(data.x_calib) if net is not None else None
    facts = layer_facts(graph, board.family if net is not None else None, net, x_int, jobs)
    costs = cost.layers if cost is not None else None  # net None: from the matrix codes
    layers = layer_rows(graph, net, board.family, costs, facts)
    report = Report(
        nnlcc_version=_version(),
        model=str(opts.model),
        model_name=graph.name,
        board=board.name,
        passes=format_pipeline(coded.passes),
        input_fmt=str(graph.input_fmt),
        output_fmt=str(graph.layers[-1].out_fmt),
        latency_cycles=net.latency if net is not None else None,
        layers=layers,
        totals=layer_totals(graph, layers, board.family),
        accuracy_drop=coded.targets,
    )
    top = top_for(net) if net is not None else None
    if top is not None and top.throughput is not None:
        # the graphs' latency sum is not end to end: line buffers wait for rows; the cocotb
        # check measures it (last pixel of the last image in -> its output out)
        report.latency_cycles = None
        report.throughput = top.throughput
    if opts.config is not None:
        report.config = str(opts.config.path)
        report.layer_config = coded.layer_config
    if net is None:
        log("coded matrices vs float network (no golden model: too big)")
        report.accuracy = implemented_accuracy(graph, data.x_test[:2], data.name)
    else:
        log("golden model vs float network")
        report.accuracy = accuracy_report(graph, net, data)
    if coded.pristine is not None and net is not None:
        from nnlcc.sweep import run_sweep, sweep_point

        chosen = sweep_point(graph, net, coded.passes, report.accuracy)
        chosen.chosen = True
        others = run_sweep(
            coded.pristine,
            coded.user_passes,
            opts.sweep,
            data,
            opts.config,
            log,
            family=board.family,
            jobs=jobs,
        )
        report.sweep = [chosen, *others]
    return report


def check_and_build(
    report: Report,
    coded: Coded,
    net: LoweredNetwork | None,
    cost: NetworkCost | None,
    outdir: Path,
    opts: CompileOptions,
    log: Log = _quiet,
) -> None:
    """Check the Verilog bit-exact against the golden model (cocotb) and write the board files
    into ``outdir`` (``--synth``, ``--build``: run the tools), filling the report's
    ``verification``, ``resources`` and measured latency; both skipped with ``--report-only``."""
    if opts.report_only:
        report.verification = Verification(None, 0, None, skipped="report only")
        report.resources = Resources(skipped="report only")
        if net is None:  # too big to lower: the fit verdict from the codes
            from nnlcc.boards.code_fit import code_fit

            board = coded.board
            log(f"fit verdict on {board.name} and the largest parts (from the codes)")
            adders = {
                row.name: row.adders for row in report.layers if row.adders_per_weight is not None
            }
            report.resources = Resources.from_json(code_fit(coded.graph, adders, board))
            log(report.resources.message or "")
        return
    assert net is not None  # only --report-only skips lowering
    top = top_for(net)
    report.verification = _verify(top, coded.data, outdir, opts, log)
    measured = top.measured_latency(report.verification.to_json())
    if measured is not None:
        report.latency_cycles = measured
    board = coded.board
    log(f"board files for {board.name}")
    from nnlcc.boards import board_build

    vectors = net.quantize_input(coded.data.x_test)
    built = board_build(
        board,
        net,
        outdir,
        x_int=vectors,
        run_pnr=opts.build,
        synth=opts.synth,
        cost=cost,
        progress=log,
    )
    report.resources = Resources.from_json(plain(built))
    res = report.resources
    if top.step_clocks is not None:  # a recurrent top: its steps per second
        placed = res.fmax_mhz is not None and res.estimate is False
        mhz = res.fmax_mhz if placed and res.fmax_mhz is not None else board.clock_mhz
        report.steps_per_second = round(mhz * 1e6 / top.step_clocks)
        report.steps_per_second_at = (
            f"the placed Fmax, {mhz:g} MHz" if placed else f"the board clock, {mhz:g} MHz"
        )


def _all_imported(graph: MatrixGraph) -> bool:
    """Every matrix layer holds an imported model's integers (nothing to trade by default)."""
    from nnlcc.ir.imported import imported_ints

    return all(imported_ints(layer) is not None for layer in graph.matrix_layers())


#: ``--accuracy-drop`` when ``--data`` is given and the option is not.
DEFAULT_DROP = 0.5


def accuracy_drop(
    opts: CompileOptions, passes: list[Pass], data: Dataset, configured: bool, log: Log
) -> float | None:
    """The accuracy drop the compile searches SQNR targets for, or None (fixed targets).

    Given: it needs a labelled test set, ``auto`` as the only matrix pass (the last pass) and
    no per-layer settings, else one line says what is missing.  Not given: ``DEFAULT_DROP``
    when ``--data`` is, under the same conditions (else a note, and the fixed targets)."""
    from nnlcc.passes.auto import Auto
    from nnlcc.sweep import MIN_SAMPLES, TARGET_LEVELS

    drop = opts.accuracy_drop if opts.accuracy_drop is not None else None
    if drop is None and opts.data is None:
        return None
    explicit = drop is not None
    matrix = [p for p in passes if p.kind.value == "matrix"]
    why = None
    if not data.labelled:
        why = f"the test set of {data.name} has no labels (y_test)"
    elif len(matrix) != 1 or not isinstance(passes[-1], Auto):
        why = (
            "it chooses the SQNR targets of the auto matrix pass, and the pipeline codes with "
            + ("+".join(p.name for p in matrix))
        )
    elif configured:
        why = "per-layer settings (nnlcc.toml [layers]) fix the layers' options"
    if why is not None:
        fixed = f"every layer keeps its fixed SQNR target ({TARGET_LEVELS[0]:g} dB by default)"
        if explicit:
            raise BadInputError(f"--accuracy-drop cannot be used: {why}; without it {fixed}")
        log(f"note: no accuracy-driven targets ({why}); {fixed}")
        return None
    on = data.x_val if data.x_val is not None else data.x_test
    what = "validation" if data.x_val is not None else "test"
    if len(on) < MIN_SAMPLES:
        log(
            f"warning: --accuracy-drop on {len(on)} {what} samples (fewer than"
            f" {MIN_SAMPLES}): one sample is {100 / len(on):.1f} points, too coarse"
            " for a meaningful accuracy"
        )
    if data.x_val is None:
        log(
            "note: --accuracy-drop chooses on the test set (no validation data: x_train and"
            " y_train in --data, or --val); the reported accuracy is optimistic"
        )
    if drop is None:
        log(
            f"note: --data without --accuracy-drop: auto may give up {DEFAULT_DROP:g} points"
            " of accuracy (the default; --accuracy-drop 0 allows none)"
        )
    return float(drop if drop is not None else DEFAULT_DROP)


#: Adders wider than this get a warning: the design is legal but almost surely not meant.
WIDE_BITS = 64


def warn_wide(net: LoweredNetwork, log: Log) -> None:
    """Warn, naming the layer, when an adder is absurdly wide (a 1e30 bias, a tiny headroom)."""
    for layer in net.layers:
        bits = layer.graph.max_bits
        if bits > WIDE_BITS:
            log(
                f"warning: layer {layer.name} needs {bits}-bit adders (more than {WIDE_BITS});"
                " check its weights and bias and the quantize options"
            )


def _verify(
    top: TopStrategy, data: Dataset, outdir: Path, opts: CompileOptions, log: Log
) -> Verification:
    net = top.net
    vectors = verification_vectors(net, data, opts.random_vectors, opts.seed)
    if not opts.verify:
        top.emit(outdir / "nnlcc_top.v", "nnlcc_top")
        return Verification(None, 0, None, skipped="--no-verify")
    from nnlcc.sim.verify import verify_network

    log(f"cocotb: {len(vectors)} vectors back-to-back")
    res = verify_network(net, vectors, outdir, simulator=opts.simulator)
    return Verification.from_json(
        plain(
            {
                "simulator": res.simulator,
                "vectors": res.vectors,
                "bit_exact": res.bit_exact,
                "test_set_vectors": len(data.x_test),
                "random_vectors": opts.random_vectors,
                # what the top's testbench measures besides (a CNN: pixels, clock of the last
                # output): fields of Verification
                **{k: res.summary[k] for k in top.summary_facts},
            }
        )
    )


def write_report(report: Report, outdir: Path) -> None:
    from nnlcc.report import write_reports

    write_reports(report, outdir)  # report.json, report.md, report.html


def _version() -> str:
    from nnlcc import __version__

    return __version__
