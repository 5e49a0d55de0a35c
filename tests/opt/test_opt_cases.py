"""FileCheck-style tests of every pass: IR text in, ``nnlcc opt``, IR text checked.

Each ``tests/opt/<pass>/*.ir`` file is one case, written the way LLVM's lit tests are: the
input IR (``#`` lines are comments to the IR parser), one or more ``# RUN:`` lines and the
``# CHECK:`` lines that FileCheck (the ``filecheck`` package, a Python clone of LLVM's) matches
against the output::

    # RUN: nnlcc opt %s --passes "csd{weight_bits=3}" | filecheck %s
    # CHECK:      code csd frac=1 cse=1
    # CHECK-NEXT:   1 0 2 0
    graph tiny input=x shape=4 fmt=s8.7 output=fc1
    ...

A RUN line is ``[not] nnlcc opt ARGS [2>&1] | filecheck %s [FILECHECK OPTIONS]`` and runs as is
in a shell too; ``not`` expects a one-line error (exit status 2), checked on stderr.
``# REQUIRES: module`` skips the case when that module is not installed.  This driver runs
``nnlcc opt`` in process, feeds its stdout to filecheck and, on a mismatch, prints filecheck's
message and the unified diff of what the passes changed (the input IR against the output).
Every output must also read back as IR text and print the same.

:func:`test_every_registered_pass_has_a_case` fails for a pass in the registry that no RUN line
runs: a new pass lands with its cases (docs/architecture.md, "Testing a pass").
"""

from __future__ import annotations

import difflib
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnlcc.cli import app
from nnlcc.errors import NnlccError
from nnlcc.ir.text import print_graph
from nnlcc.passes import get_all_passes, parse_pipeline
from nnlcc.passes.text import parse_graph

HERE = Path(__file__).parent
CASES = sorted(HERE.glob("*/*.ir"))
RUN_RE = re.compile(
    r"^(?P<not>not\s+)?nnlcc\s+opt\s+(?P<args>.*?)\s*(?P<merge>2>&1)?\s*\|\s*filecheck\s+%s"
    r"(?P<fc>.*)$"
)
runner = CliRunner()


@dataclass
class Run:
    """One RUN line: the ``nnlcc opt`` arguments and the filecheck options."""

    line: str
    args: list[str]
    filecheck: list[str]
    fails: bool  # ``not``: an error is expected


def directives(case: Path, name: str) -> list[str]:
    """The text after ``# NAME:`` on each line of ``case``."""
    prefix = re.compile(rf"^#\s*{name}:\s*(.*)$")
    return [m[1].strip() for line in case.read_text().splitlines() if (m := prefix.match(line))]


def runs(case: Path) -> list[Run]:
    out = []
    for line in directives(case, "RUN"):
        m = RUN_RE.match(line)
        assert m, f"{case}: RUN line not of the form 'nnlcc opt ... | filecheck %s': {line}"
        args = [str(case) if a == "%s" else a for a in shlex.split(m["args"])]
        fc = [str(case) if a == "%s" else a for a in shlex.split(m["fc"])]
        assert bool(m["not"]) == bool(m["merge"]), f"{case}: 'not' goes with '2>&1': {line}"
        out.append(Run(line, args, fc, bool(m["not"])))
    assert out, f"{case} has no RUN line"
    return out


def pipeline_of(run: Run) -> str | None:
    """The ``--passes`` value of a RUN line (None: the default pipeline)."""
    for i, a in enumerate(run.args):
        if a in ("-p", "--passes") and i + 1 < len(run.args):
            return run.args[i + 1]
        if a.startswith("--passes="):
            return a.split("=", 1)[1]
    return None


def _input_ir(case: Path) -> str:
    """The case's input as IR text, comments gone (what the output is diffed against)."""
    try:
        return print_graph(parse_graph(case.read_text()))
    except NnlccError:  # an error case may hold an input that does not parse
        return case.read_text()


def _changed(case: Path, output: str) -> str:
    diff = difflib.unified_diff(
        _input_ir(case).splitlines(keepends=True),
        output.splitlines(keepends=True),
        f"{case.name} (input)",
        f"{case.name} (output)",
    )
    return "".join(diff) or "(the output equals the input)\n"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.stem}" for c in CASES])
def test_case(case: Path) -> None:
    for module in directives(case, "REQUIRES"):
        pytest.importorskip(module, reason=f"{case.name} requires {module}")
    for run in runs(case):
        res = runner.invoke(app, ["opt", *run.args])
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        if run.fails:
            assert res.exit_code == 2, f"{run.line}\nexpected exit 2, got {res.exit_code}"
            assert res.stdout == "", f"{run.line}\nan error prints nothing on stdout"
            errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
            assert len(errors) == 1 and "Traceback" not in res.stderr, res.stderr
            output = res.stderr
        else:
            assert res.exit_code == 0, f"{run.line}\nexit {res.exit_code}:\n{res.stderr}"
            output = res.stdout
            assert print_graph(parse_graph(output)) == output, "the output does not round-trip"
        checked = subprocess.run(
            [sys.executable, "-m", "filecheck", str(case), *run.filecheck],
            input=output,
            capture_output=True,
            text=True,
            check=False,
        )
        if checked.returncode != 0:
            what = output if run.fails else _changed(case, output)
            pytest.fail(
                f"{case.relative_to(HERE)}: RUN: {run.line}\n{checked.stdout}{checked.stderr}\n"
                f"{'stderr' if run.fails else 'what the passes changed'}:\n{what}",
                pytrace=False,
            )


def test_every_registered_pass_has_a_case() -> None:
    """A pass in the registry that no RUN line runs fails here: add tests/opt/<pass>/*.ir."""
    covered: set[str] = set()
    for case in CASES:
        for run in runs(case):
            text = pipeline_of(run)
            if text is not None and not run.fails:
                covered.update(p.name for p in parse_pipeline(text))
    missing = sorted(set(get_all_passes()) - covered)
    assert not missing, (
        f"passes without a filecheck case: {', '.join(missing)}; add tests/opt/<pass>/<case>.ir"
        " (docs/architecture.md, 'Testing a pass')"
    )
