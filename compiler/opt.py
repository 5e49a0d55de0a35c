"""``nnlcc opt``: IR text (or an ONNX model) in, a pass pipeline run, IR text out.

The pass-level counterpart of ``mlir-opt`` / ``xdsl-opt``: it reads the text of
:func:`nnlcc.ir.text.print_graph` (what ``ir.txt`` in an output directory holds, ``-`` for
stdin) or an ONNX model, runs exactly the passes named (compile's pipeline syntax, parser and
errors; no pass is added, so ``--passes prune`` runs prune alone), and returns the graph as IR
text.  The output depends only on the input, the pipeline, the calibration data and the board's
family, so it can be pinned by FileCheck-style tests (``tests/opt``).

What ``nnlcc compile`` would choose is the default for everything else: the pipeline
(``quantize,auto``), the board (its family is what ``auto`` prices on), the calibration data
(``--data``, else the shipped data for the shipped models, else ``MODEL.npz`` beside the model
(for IR text: beside the model its ``source`` line names, or beside the IR file), else random
inputs with compile's seed), and ``--config`` (its ``[compile]`` table and per-layer settings).
Compile's whole-network searches (``--accuracy-drop``, ``--sweep``) are not passes and stay in
``nnlcc compile``.

Bad input is one :class:`~nnlcc.errors.NnlccError` line: unparseable IR (naming its line), an
unknown pass or option, a matrix pass on a graph without fixed-point formats, an output path
that is an input of the run or a file nnlcc did not write.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nnlcc.config import Config, load_config
from nnlcc.driver import (
    WORKER_MODULES,
    CompileOptions,
    command_jobs,
    load_data,
    prepare_jobs,
    run_passes,
)
from nnlcc.errors import BadInputError
from nnlcc.frontends import load_model
from nnlcc.ir.matrix import AddLayer, MatrixGraph
from nnlcc.ir.text import print_graph
from nnlcc.jobs import open_jobs
from nnlcc.passes import Pass, PassKind, attach_layer_settings, parse_pipeline
from nnlcc.passes.runner import DEFAULT_PIPELINE
from nnlcc.passes.text import parse_graph

__all__ = [
    "STDIO",
    "OptInput",
    "check_formats",
    "check_output",
    "optimize",
    "read_input",
    "write_output",
]

Log = Callable[[str], None]

#: The path that means stdin (for the input) or stdout (for ``-o``).
STDIO = "-"
#: How IR text that nnlcc printed starts (what :func:`check_output` lets ``-o`` replace).
IR_HEADER = "graph "


def _quiet(_: str) -> None:
    pass


@dataclass
class OptInput:
    """The graph read, and the files it came from (``None``: stdin)."""

    graph: MatrixGraph
    path: Path | None
    #: the model whose calibration data compile would use (see the module docstring)
    model: Path | None


def _read_text(path: Path) -> str:
    if path.is_dir():
        hint = " (an output directory's IR is its ir.txt)" if (path / "ir.txt").is_file() else ""
        raise BadInputError(
            f"'{path}' is a directory; nnlcc opt reads IR text or an ONNX model{hint}"
        )
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"no such file: '{path}'") from None
    except UnicodeDecodeError:
        raise BadInputError(
            f"'{path}' is not IR text (not UTF-8); an ONNX model must be named *.onnx"
        ) from None
    except OSError as e:
        raise BadInputError(f"cannot read '{path}': {e.strerror}") from None


def read_input(source: str) -> OptInput:
    """``source``: ``-`` (IR text on stdin), a ``*.onnx`` model or a file of IR text."""
    if source == STDIO:
        try:
            text = sys.stdin.read()
        except UnicodeDecodeError:
            raise BadInputError(
                "stdin is not IR text (not UTF-8); pass an ONNX model by its path"
            ) from None
        graph = parse_graph(text)
        return OptInput(graph, None, _source_model(graph))
    path = Path(source)
    if path.suffix.lower() == ".onnx":
        return OptInput(load_model(path), path, path)
    graph = parse_graph(_read_text(path))
    return OptInput(graph, path, _source_model(graph) or path)


def _source_model(graph: MatrixGraph) -> Path | None:
    """The model the IR's ``source`` line names, when that file exists here."""
    src = Path(graph.source) if graph.source else None
    return src if src is not None and src.is_file() else None


def check_formats(graph: MatrixGraph, passes: list[Pass]) -> None:
    """Refuse a matrix pass that would run before the graph has fixed-point formats.

    A matrix pass codes to the formats (the truncation budget, ``auto``'s prices, the input
    range of alkaid and circulant); ``nnlcc compile`` guarantees them by putting the format
    pass first, ``opt`` runs what it is told, so it says what is missing instead."""
    missing = _missing_format(graph)
    for p in passes:
        if p.kind is PassKind.FORMAT:
            missing = None
        elif p.kind is PassKind.MATRIX and missing is not None:
            raise BadInputError(
                f"pass {p.name} codes to fixed-point formats and {missing} has none;"
                f' put a format pass before it, e.g. --passes "quantize,{p.name}"'
            )


def _missing_format(graph: MatrixGraph) -> str | None:
    """What lacks a fixed-point format (``None``: the graph is quantized)."""
    if graph.input_fmt is None:
        return f"the graph input {graph.input_name}"
    for layer in graph.layers:
        fmts = [layer.in_fmt, layer.out_fmt]
        if isinstance(layer, AddLayer):
            fmts.append(layer.in_fmt_b)
        if any(f is None for f in fmts):
            return f"layer {layer.name}"
    return None


def optimize(
    source: str,
    passes: str | None = None,
    data: Path | None = None,
    board: str | None = None,
    config: Path | None = None,
    log: Log = _quiet,
    jobs: int | None = None,
    cluster: str | None = None,
) -> str:
    """Run ``passes`` (compile's default pipeline when None or empty) on the graph ``source``
    names (see :func:`read_input`); returns the graph as IR text.  ``jobs`` and ``cluster``
    run the matrix pass's layers as ``nnlcc compile`` does (:func:`command_jobs`)."""
    cfg = load_config(config) if config is not None else Config()
    opts = CompileOptions.from_config(cfg, passes=passes, data=data, board=board, cluster=cluster)
    opts.jobs = command_jobs(jobs, cfg)
    opts.validate()  # the pipeline and the config's options, before any work
    pipeline = parse_pipeline(opts.passes or DEFAULT_PIPELINE)
    log(f"reading {'stdin' if source == STDIO else source}")
    read = read_input(source)
    graph = read.graph
    if opts.config is not None:
        log(f"config: {opts.config.path or 'per-layer settings'}")
        pipeline, _ = attach_layer_settings(graph, pipeline, opts.config.layer_settings(graph))
    check_formats(graph, pipeline)
    dataset = load_data(graph, read.model, opts.data, opts.seed, log)
    with open_jobs(opts.jobs, opts.cluster, log, warm=WORKER_MODULES) as jobs_:
        prepare_jobs(jobs_, graph, [])
        run_passes(graph, pipeline, dataset, log, board=opts.board, jobs=jobs_)
    return print_graph(graph)


def check_output(output: Path, inputs: list[Path], force: bool = False) -> None:
    """Refuse an output path ``opt`` must not write, before any work: one of ``inputs`` (the
    files the user named: model or IR, data, config), a symbolic link, a directory, or an
    existing file that does not hold IR text (what ``opt`` and ``compile`` write) unless
    ``force``."""
    if str(output) in ("", "."):
        raise BadInputError("the output path is empty; pass -o FILE, or -o - for stdout")
    if output.is_symlink():
        raise BadInputError(f"-o '{output}' is a symbolic link; pass the file it points to")
    if output.is_dir():
        raise BadInputError(f"-o '{output}' is a directory; pass a file path")
    if not output.exists():
        return
    for f in inputs:
        if f.exists() and output.samefile(f):
            raise BadInputError(f"-o '{output}' is an input of this run; write elsewhere")
    if not force and not _is_ir_text(output):
        raise BadInputError(
            f"-o '{output}' exists and is not IR text nnlcc wrote; --force replaces it"
        )


def write_output(text: str, output: Path, log: Log = _quiet) -> None:
    """Write ``text`` to ``output`` (checked by :func:`check_output`) atomically: through a
    temporary file beside it, so a failed write leaves the file as it was."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    except OSError as e:
        raise BadInputError(f"cannot write '{output}': {e.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp makes the file private; give it the mode a plain open() would
        os.chmod(tmp, output.stat().st_mode & 0o777 if output.exists() else 0o666 & ~_umask())
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log(f"wrote {output}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_ir_text(path: Path) -> bool:
    """Whether ``path`` starts like :func:`~nnlcc.ir.text.print_graph`'s text."""
    try:
        with path.open("rb") as f:
            return f.read(len(IR_HEADER)) == IR_HEADER.encode()
    except OSError:
        return False
