"""The ``nnlcc`` command line: it parses options and calls the Python API, nothing more.

Exit status: 0 success, 1 verification failed (hardware differs from the golden model),
2 bad input (one line on stderr says what is wrong and what to do).
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from nnlcc.errors import NnlccError

EXIT_CODES = (
    "Exit status: 0 success; 1 verification failed (the hardware differs from the golden"
    " model); 2 bad input (one line on stderr says what is wrong and what to do)."
)

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    help="Compile trained neural networks (ONNX) into multiplier-free FPGA hardware.\n\n"
    "Start with `nnlcc inspect MODEL.onnx`, then `nnlcc compile MODEL.onnx`.",
    epilog=EXIT_CODES,
)
err = Console(stderr=True, highlight=False)

Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="no progress, no summary")]
Verbose = Annotated[
    int, typer.Option("-v", "--verbose", count=True, help="list every step (-v) with its time")
]
JobsOption = Annotated[
    int | None,
    typer.Option(
        "-j",
        "--jobs",
        help="tasks at once (a layer's coding and lowering, a sweep point): 1 runs them one after"
        " another in this process; N on a local Dask cluster of N worker processes",
        show_default="the machine's cores, once a model has 32768 weights",
    ),
]
ClusterOption = Annotated[
    str | None,
    typer.Option(
        help="run the tasks on this Dask scheduler, e.g. tcp://HOST:8786 (its workers need"
        " the same nnlcc)"
    ),
]
AsJson = Annotated[
    bool,
    typer.Option(
        "--json", help="machine-readable result on stdout (errors too: {error, exit_code})"
    ),
]


def _fail(e: NnlccError, as_json: bool = False) -> None:
    """Print ``e`` as one line (and as JSON on stdout with ``--json``), exit with its code."""
    if as_json:
        typer.echo(json.dumps({"error": str(e), "exit_code": e.exit_code}))
    err.print(f"[bold red]error:[/bold red] {escape(str(e))}", soft_wrap=True)
    raise typer.Exit(e.exit_code)


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Python warnings (numpy's divide by zero, overflow, ...) as one line each, printed once
    the command succeeded (after an error, the error line alone is printed)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        yield
    seen: set[str] = set()
    for w in caught:
        text = f"{w.category.__name__}: {str(w.message).splitlines()[0] if str(w.message) else ''}"
        if text not in seen:
            seen.add(text)
            err.print(f"[yellow]warning:[/yellow] {escape(text)}", soft_wrap=True)


def _dumps(r: Any, indent: int | None = 2) -> str:
    """Strict JSON (RFC 8259) for ``--json``: infinities become null plus a note."""
    from nnlcc.report.files import dumps

    return dumps(r, indent)


def _level(quiet: bool, verbose: int) -> int:
    return 0 if quiet else 1 + verbose


@app.command(epilog=EXIT_CODES)
def compile(
    model: Annotated[
        Path | None, typer.Argument(help="ONNX model; default: the shipped digits MLP")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("-c", "--config", help="nnlcc.toml: defaults and per-layer settings"),
    ] = None,
    board: Annotated[
        str | None,
        typer.Option(help="target board (see `nnlcc boards`)", show_default="arty-a7"),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="output directory (default build/<model>)")
    ] = None,
    passes: Annotated[
        str | None, typer.Option(help='pass pipeline, e.g. "quantize{act_bits=8},lcc{sqnr_db=45}"')
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="npz with x_train/x_test/y_test for calibration and accuracy"),
    ] = None,
    verify: Annotated[
        bool | None,
        typer.Option(
            "--verify/--no-verify", help="run the cocotb bit-exact check", show_default="verify"
        ),
    ] = None,
    vectors: Annotated[
        int | None,
        typer.Option(help="random vectors simulated after the test set", show_default="1000"),
    ] = None,
    simulator: Annotated[str | None, typer.Option(help="verilator (default) or icarus")] = None,
    build: Annotated[
        bool | None,
        typer.Option("--build/--no-build", help="place-and-route to a bitstream (iCE40/ECP5)"),
    ] = None,
    synth: Annotated[
        bool,
        typer.Option(
            "--synth",
            help="also synthesize the network with yosys for the board's resources (minutes;"
            " the default is the calibrated cost model, seconds)",
        ),
    ] = False,
    report_only: Annotated[
        bool | None,
        typer.Option(
            "--report-only/--full",
            help="passes and report only: no Verilog, simulation or board files",
        ),
    ] = None,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            help='also try these settings for the trade-off plot, e.g. --sweep "lcc{sqnr_db=35}"'
            " (repeat the option)"
        ),
    ] = None,
    accuracy_drop: Annotated[
        float | None,
        typer.Option(
            "--accuracy-drop",
            help="points of accuracy (golden model vs float) the compiler may give up; it"
            " chooses each layer's SQNR target for the fewest estimated LUTs on validation data"
            " (a seeded 20% of x_train/y_train, or --val; else the test set, reported as"
            " optimistic) and reports the test accuracy apart (default 0.5 when --data is"
            " given, stated in the report; without data every layer gets 45 dB)",
        ),
    ] = None,
    val: Annotated[
        Path | None,
        typer.Option(
            "--val",
            help="npz with x_val, y_val: the labelled data --accuracy-drop chooses on",
        ),
    ] = None,
    layer: Annotated[
        str | None,
        typer.Option(
            help="only this matrix layer's adder graph as Verilog (a conv reads one window"
            " vector); verified on --vectors random vectors unless --no-verify"
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="replace OUTDIR even if nnlcc did not write it (never the current directory,"
            " the model's folder or their ancestors)",
        ),
    ] = False,
    jobs: JobsOption = None,
    cluster: ClusterOption = None,
    quiet: Quiet = False,
    verbose: Verbose = 0,
    as_json: AsJson = False,
) -> None:
    """Compile MODEL for BOARD, verify it bit-exact, write the reports.

    Writes the Verilog, test vectors, board files and report.json / report.md / report.html
    into the output directory. Options given here override those of --config.

    Example: nnlcc compile examples/digits_mlp.onnx --board arty-a7 -o build/digits
    """
    from nnlcc.config import Config, load_config
    from nnlcc.driver import CompileOptions, command_jobs, compile_model
    from nnlcc.progress import StepProgress

    try:
        cfg = load_config(config) if config is not None else Config()
        opts = CompileOptions.from_config(
            cfg,
            model=model,
            board=board,
            outdir=output,
            passes=passes,
            data=data,
            verify=verify,
            random_vectors=vectors,
            simulator=simulator,
            build=build,
            synth=synth or None,
            report_only=report_only,
            sweep=sweep or None,
            accuracy_drop=accuracy_drop,
            val=val,
            force=force or None,
            cluster=cluster,
        )
        opts.jobs = command_jobs(jobs, cfg)
        with _one_line_warnings(), StepProgress(_level(quiet, verbose), err) as log:
            from nnlcc.report.summary import layer_summary_line, summary_line

            if layer is not None:
                from nnlcc.compile_layer import compile_layer

                done = compile_layer(opts, layer, log)
                line = layer_summary_line(done)
            else:
                report = compile_model(opts, log=log)
                done, line = report.to_json(), summary_line(report)
    except NnlccError as e:
        _fail(e, as_json)
    if as_json:
        typer.echo(_dumps(done))
    elif not quiet:
        typer.echo(line)


@app.command(epilog=EXIT_CODES)
def inspect(
    model: Annotated[Path, typer.Argument(help="ONNX model to look at")],
    sqnr_db: Annotated[float, typer.Option(help="SQNR target of the LCC estimate (dB)")] = 45.0,
    csd_bits: Annotated[int, typer.Option(help="weight bits of the CSD baseline")] = 8,
    lcc: Annotated[
        bool, typer.Option("--lcc/--no-lcc", help="estimate LCC additions (runs the pass)")
    ] = True,
    quiet: Quiet = False,
    verbose: Verbose = 0,
    as_json: AsJson = False,
) -> None:
    """Show what nnlcc sees in a model, before compiling it.

    Layers, shapes, which nodes are supported (and why not), weight statistics and the
    estimated additions for CSD and LCC. Exit status 0 whenever the model could be read:
    the verdict is in the output ("supported").

    Example: nnlcc inspect examples/digits_mlp.onnx
    """
    from nnlcc.errors import BadInputError
    from nnlcc.inspect import inspect_model, render_text
    from nnlcc.progress import StepProgress

    try:
        if not 2 <= csd_bits <= 24:
            raise BadInputError("--csd-bits must be in 2..24")
        if not 0 < sqnr_db <= 150:
            raise BadInputError("--sqnr-db must be in (0, 150]")
        with _one_line_warnings(), StepProgress(_level(quiet, verbose), err) as log:
            info = inspect_model(model, csd_bits=csd_bits, sqnr_db=sqnr_db, lcc=lcc, log=log)
    except NnlccError as e:
        _fail(e, as_json)
    typer.echo(_dumps(info) if as_json else render_text(info).rstrip())


@app.command(epilog=EXIT_CODES)
def opt(
    source: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="IR text (an output directory's ir.txt; - reads stdin) or an ONNX model (*.onnx)",
        ),
    ],
    passes: Annotated[
        str | None,
        typer.Option(
            "-p",
            "--passes",
            help='pass pipeline, run as given, e.g. "quantize,csd{weight_bits=6}"',
            show_default="quantize,auto",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="npz with x_train (calibration) for the passes that read data"),
    ] = None,
    board: Annotated[
        str | None,
        typer.Option(help="board whose FPGA family auto prices on", show_default="arty-a7"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("-c", "--config", help="nnlcc.toml: defaults and per-layer settings"),
    ] = None,
    output: Annotated[
        str, typer.Option("-o", "--output", help="write the IR text here (- : stdout)")
    ] = "-",
    force: Annotated[
        bool,
        typer.Option("--force", help="replace an -o file that does not hold IR text"),
    ] = False,
    jobs: JobsOption = None,
    cluster: ClusterOption = None,
    quiet: Quiet = False,
    verbose: Verbose = 0,
) -> None:
    """Run a pass pipeline on IR text (or an ONNX model) and print the resulting IR text.

    Runs exactly the passes named: no format or matrix pass is added.

    Options left out take compile's defaults (pipeline, board, calibration data).

    The output is deterministic, for FileCheck: nnlcc opt a.ir -p csd | filecheck checks.ir

    Example: nnlcc opt build/digits_mlp/ir.txt --passes "csd{weight_bits=6}" -o csd6.txt
    """
    from nnlcc.opt import STDIO, check_output, optimize, write_output
    from nnlcc.progress import StepProgress

    try:
        to_file = output != STDIO
        if to_file:
            named = [Path(p) for p in (source, data, config) if p is not None and p != STDIO]
            check_output(Path(output), named, force)
        with _one_line_warnings(), StepProgress(_level(quiet, verbose), err) as log:
            text = optimize(
                source,
                passes,
                data=data,
                board=board,
                config=config,
                log=log,
                jobs=jobs,
                cluster=cluster,
            )
            if to_file:
                write_output(text, Path(output), log)
    except NnlccError as e:
        _fail(e)
    if not to_file:
        typer.echo(text, nl=False)


@app.command(epilog=EXIT_CODES)
def sim(
    outdir: Annotated[Path, typer.Argument(help="a directory written by `nnlcc compile`")],
    simulator: Annotated[str | None, typer.Option(help="verilator (default) or icarus")] = None,
    quiet: Quiet = False,
    verbose: Verbose = 0,
    as_json: AsJson = False,
) -> None:
    """Re-run the cocotb bit-exact check of a compiled design.

    -v shows the simulator's own output (otherwise it goes to a log file in OUTDIR).

    Example: nnlcc sim build/digits_mlp
    """
    from nnlcc.progress import StepProgress
    from nnlcc.sim.verify import rerun

    try:
        with StepProgress(_level(quiet, verbose), err) as log:
            log(f"cocotb: re-running the bit-exact check in {outdir}")
            res = rerun(outdir, simulator=simulator, verbose=verbose >= 1 and not as_json)
    except NnlccError as e:
        _fail(e, as_json)
    if as_json:
        typer.echo(
            json.dumps({"vectors": res.vectors, "simulator": res.simulator, "bit_exact": True})
        )
    elif not quiet:
        typer.echo(f"{res.vectors} vectors bit-exact in {res.simulator}")


@app.command(epilog=EXIT_CODES)
def report(
    outdir: Annotated[Path, typer.Argument(help="a directory written by `nnlcc compile`")],
    as_json: AsJson = False,
) -> None:
    """Re-render report.md and report.html from OUTDIR/report.json.

    Useful after editing report.json or upgrading nnlcc; every compile writes all three.

    Example: nnlcc report build/digits_mlp
    """
    from nnlcc.report import rerender

    try:
        paths = rerender(outdir)
    except NnlccError as e:
        _fail(e, as_json)
    if as_json:
        typer.echo(json.dumps({"written": [str(p) for p in paths]}))
    else:
        typer.echo(" ".join(str(p) for p in paths))


@app.command()
def boards(as_json: AsJson = False) -> None:
    """List the supported boards.

    Example: nnlcc boards
    """
    from nnlcc.boards import list_boards

    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"name": b.name, "device": b.device, "luts": b.luts, "clock_hz": b.clock_hz}
                    for b in list_boards()
                ]
            )
        )
        return
    for b in list_boards():
        typer.echo(f"{b.name:14} {b.device:22} {b.luts:7d} LUTs  {b.clock_hz / 1e6:6.1f} MHz")


@app.command()
def finetune(
    model: Annotated[Path, typer.Argument(help="ONNX MLP to prune")],
    data: Annotated[
        Path, typer.Option(help="npz with x_train, y_train (training) and x_test, y_test")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="ONNX model to write")],
    group_lasso: Annotated[
        float | None,
        typer.Option(
            "--group-lasso", help="λ of the group penalty: larger removes more columns (~0.01-0.05)"
        ),
    ] = None,
    circulant: Annotated[
        str | None,
        typer.Option(
            "--circulant",
            help="train with BxB block-circulant weights (B-vectors; dense and CNN chains)",
            metavar="B",
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="epochs (group lasso: with the penalty; default 60)")
    ] = None,
    retrain_epochs: Annotated[
        int | None, typer.Option(help="epochs retraining the kept weights (default epochs/2)")
    ] = None,
    input_weight: Annotated[
        float, typer.Option(help="penalty factor of the network-input groups")
    ] = 1.0,
    channel_weight: Annotated[
        float,
        typer.Option(
            help="CNN: penalty factor (times λ) of whole output channels; 0: im2col columns only"
        ),
    ] = 0.0,
    lr: Annotated[
        float | None,
        typer.Option(
            help="learning rate (group lasso: SGD, 0.1 on an MLP, 0.01 on a CNN; circulant:"
            " Adam, 0.01)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the initial shuffle and batches")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="no progress bar")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="result as JSON on stdout")] = False,
) -> None:
    """Fine-tune MODEL on DATA and write the ONNX model: prune it by group lasso, or train it
    with block-circulant weights (--circulant B).

    Group lasso: whole input columns (pixels, hidden neurons) go to zero and are removed; on
    a CNN, whole im2col columns (an input channel at a kernel position) go to zero, and an
    output channel no column reads any more is removed (--channel-weight pushes whole channels).
    Circulant: every dense/conv layer is trained as BxB circulant blocks (one B-vector each,
    starting from the projection of the float weights), so `circulant{block=B}` keeps it
    exactly.  The output is written only when training and the ONNX round trip succeed.

    Example: nnlcc finetune examples/digits_mlp.onnx --data examples/digits.npz
    --group-lasso 0.03 -o build/digits_pruned.onnx; nnlcc finetune examples/digits_mlp.onnx
    --data examples/digits.npz --circulant 4 -o build/digits_circ4.onnx
    """
    from nnlcc.errors import BadInputError
    from nnlcc.finetune import CirculantOptions, FinetuneOptions, circulant_finetune
    from nnlcc.finetune import finetune as run_finetune

    res: Any
    try:
        if (group_lasso is None) == (circulant is None):
            raise BadInputError("nnlcc finetune needs exactly one of --group-lasso and --circulant")
        if circulant is not None:
            block = int(circulant) if circulant.strip().lstrip("-").isdigit() else circulant
            copts = CirculantOptions(
                block=block,  # type: ignore[arg-type]  # checked by CirculantOptions
                epochs=200 if epochs is None else epochs,
                lr=0.01 if lr is None else lr,
                seed=seed,
            )
            res = circulant_finetune(model, data, output, copts, progress=not (quiet or as_json))
        else:
            assert group_lasso is not None
            opts = FinetuneOptions(
                group_lasso=group_lasso,
                epochs=60 if epochs is None else epochs,
                retrain_epochs=retrain_epochs,
                lr=lr,
                seed=seed,
                input_weight=input_weight,
                channel_weight=channel_weight,
            )
            res = run_finetune(model, data, output, opts, progress=not (quiet or as_json))
    except NnlccError as e:
        _fail(e, as_json)
    if as_json:
        typer.echo(json.dumps(res.to_dict(), indent=2))
    elif not quiet:
        typer.echo(f"{res.summary()} -> {output}")


def main() -> None:
    try:
        app()
    except NnlccError as e:  # errors raised outside a command body (e.g. option parsing)
        err.print(f"[bold red]error:[/bold red] {escape(str(e))}", soft_wrap=True)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
