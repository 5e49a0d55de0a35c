"""The ``nnlcc`` command line: it parses options and calls the Python API, nothing more.

Exit status: 0 success, 1 hardware/golden mismatch, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from nnlcc.errors import NnlccError

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    help="Compile trained neural networks (ONNX) into multiplier-free FPGA hardware.",
)
err = Console(stderr=True, highlight=False)


class _Log:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            err.print(f"[dim]{time.perf_counter() - self.t0:6.1f}s[/dim] {msg}")


def _fail(e: NnlccError) -> None:
    err.print(f"[bold red]error:[/bold red] {e}", soft_wrap=True)
    raise typer.Exit(e.exit_code)


@app.command()
def compile(
    model: Annotated[
        Path | None, typer.Argument(help="ONNX model; default: the shipped digits MLP")
    ] = None,
    board: Annotated[str, typer.Option(help="target board (see `nnlcc boards`)")] = "arty-a7",
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
        bool, typer.Option("--verify/--no-verify", help="run the cocotb bit-exact check")
    ] = True,
    vectors: Annotated[
        int, typer.Option(help="random vectors simulated after the test set")
    ] = 1000,
    simulator: Annotated[str | None, typer.Option(help="verilator (default) or icarus")] = None,
    build: Annotated[
        bool, typer.Option(help="run place-and-route to a bitstream (iCE40/ECP5)")
    ] = False,
    report_only: Annotated[
        bool, typer.Option(help="passes and report only: no Verilog, simulation or board files")
    ] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print report.json to stdout")] = False,
) -> None:
    """Compile MODEL for BOARD, verify it bit-exact and write the report.

    Example: nnlcc compile examples/digits_mlp.onnx --board arty-a7 -o build/digits
    """
    from nnlcc.driver import EXAMPLE_MODEL, CompileOptions, compile_model

    opts = CompileOptions(
        model=model or EXAMPLE_MODEL,
        board=board,
        outdir=output,
        passes=passes,
        data=data,
        verify=verify,
        random_vectors=vectors,
        simulator=simulator,
        build=build,
        report_only=report_only,
    )
    try:
        report = compile_model(opts, log=_Log(quiet or as_json))
    except NnlccError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    elif not quiet:
        typer.echo(summary_line(report))


def summary_line(r: dict[str, Any]) -> str:
    t, acc, ver = r["totals"], r["accuracy"], r["verification"]
    parts = [
        f"{r['model_name']}: {t['adders']} adders ({t['adders_per_weight']}/weight, "
        f"CSD {t['csd_adders']})",
    ]
    if acc.get("float") is not None:
        parts.append(f"accuracy float {acc['float']:.4f} golden {acc['golden']:.4f}")
    else:
        parts.append(f"output SQNR {acc['sqnr_db']} dB")
    if ver.get("bit_exact") is None:
        parts.append(f"NOT verified ({ver.get('skipped')})")
    else:
        parts.append(
            f"{ver['vectors']} vectors bit-exact in {ver['simulator']}"
            if ver["bit_exact"]
            else "verification FAILED"
        )
    res = r.get("resources", {})
    if "luts" in res:
        parts.append(
            f"{res['luts']} LUTs{' (est.)' if res.get('estimate') else ''} on {res.get('device')}"
        )
    parts.append(f"-> {r.get('outdir')}")
    return "; ".join(parts)


@app.command()
def sim(
    outdir: Annotated[Path, typer.Argument(help="a directory written by `nnlcc compile`")],
    simulator: Annotated[str | None, typer.Option(help="verilator (default) or icarus")] = None,
) -> None:
    """Re-run the cocotb bit-exact check of a compiled design.

    Example: nnlcc sim build/digits_mlp
    """
    from nnlcc.sim.verify import rerun

    try:
        res = rerun(outdir, simulator=simulator)
    except NnlccError as e:
        _fail(e)
    typer.echo(f"{res.vectors} vectors bit-exact in {res.simulator}")


@app.command()
def report(
    outdir: Annotated[Path, typer.Argument(help="a directory written by `nnlcc compile`")],
) -> None:
    """Re-render report.md and report.html from OUTDIR/report.json.

    Example: nnlcc report build/digits_mlp
    """
    from nnlcc.report import rerender

    try:
        paths = rerender(outdir)
    except NnlccError as e:
        _fail(e)
    typer.echo(" ".join(str(p) for p in paths))


@app.command()
def boards() -> None:
    """List the supported boards.

    Example: nnlcc boards
    """
    from nnlcc.boards import list_boards

    for b in list_boards():
        typer.echo(f"{b.name:14} {b.device:22} {b.luts:7d} LUTs  {b.clock_hz / 1e6:6.1f} MHz")


def main() -> None:
    try:
        app()
    except NnlccError as e:  # errors raised outside a command body (e.g. option parsing)
        err.print(f"[bold red]error:[/bold red] {e}")
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
