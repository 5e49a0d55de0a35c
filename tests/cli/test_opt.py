"""``nnlcc opt``: what it reads (IR text, stdin, ONNX), that it runs exactly the passes named
with compile's defaults otherwise, that its output is compile's ir.txt and deterministic, and
that ``-o`` never writes over a file the user did not ask for.  The passes' own IR-in/IR-out
cases are in ``tests/opt``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnlcc.cli import app
from nnlcc.driver import EXAMPLE_MODEL
from nnlcc.ir.family import ECP5
from nnlcc.passes.auto import AutoRecord
from nnlcc.passes.text import parse_graph

runner = CliRunner()

TINY = """\
graph tiny input=x shape=3 fmt=- output=fc2

dense fc1 2x3 relu=1 in=- out=-
  bias 0.125 -0.25
  weight
    0.5 -0.25 0.75
    1.0 0.125 -0.5

dense fc2 1x2 relu=0 in=- out=-
  bias 0.5
  weight
    0.75 -1.0
"""


def opt(*args: str | Path, stdin: str | None = None) -> tuple[int, str, str]:
    res = runner.invoke(app, ["opt", *map(str, args)], input=stdin)
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def error(err: str) -> str:
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "Traceback" not in err
    return line


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.ir"
    p.write_text(TINY)
    return p


def test_onnx_in_gives_compiles_ir(tmp_path: Path) -> None:
    """``opt MODEL.onnx -p P`` prints what ``compile MODEL.onnx --passes P`` writes as ir.txt
    (same calibration data: the shipped digits set)."""
    out_dir = tmp_path / "c"
    res = runner.invoke(
        app,
        [
            "compile",
            str(EXAMPLE_MODEL),
            "--passes",
            "quantize,csd",
            "--report-only",
            "-o",
            str(out_dir),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.stderr
    code, out, _ = opt(EXAMPLE_MODEL, "--passes", "quantize,csd", "-q")
    assert code == 0
    assert out == (out_dir / "ir.txt").read_text()
    # and from that ir.txt on: only the pass named runs, the formats stay
    code, again, _ = opt(out_dir / "ir.txt", "--passes", "csd{weight_bits=5}", "-q")
    assert code == 0
    before, after = parse_graph(out), parse_graph(again)
    assert [la.out_fmt for la in after.layers] == [la.out_fmt for la in before.layers]
    assert [la.code.frac for la in after.layers] != [la.code.frac for la in before.layers]  # type: ignore[union-attr]


def test_stdin_file_and_determinism(tiny: Path) -> None:
    pipeline = "quantize,share{clusters=2},lcc{sqnr_db=30}"
    code, from_file, _ = opt(tiny, "-p", pipeline, "-q")
    assert code == 0
    code, from_stdin, _ = opt("-", "-p", pipeline, "-q", stdin=TINY)
    assert code == 0
    assert from_stdin == from_file
    assert opt(tiny, "-p", pipeline, "-q")[1] == from_file  # deterministic
    assert "code share" in from_file and "code lcc" in from_file


def test_runs_exactly_the_passes_named(tiny: Path) -> None:
    code, out, _ = opt(tiny, "-p", "prune{sparsity=0}", "-q")
    assert code == 0
    g = parse_graph(out)
    assert g.input_fmt is None and all(la.code is None for la in g.matrix_layers())
    code, out, _ = opt(tiny, "-q")  # no --passes: compile's default, quantize,auto
    assert code == 0
    g = parse_graph(out)
    assert g.input_fmt is not None
    assert all(la.code is not None and AutoRecord in la.notes for la in g.matrix_layers())


def test_data_and_board_are_compiles_options(tiny: Path, tmp_path: Path) -> None:
    data = tmp_path / "small.npz"
    x = np.random.default_rng(0).uniform(0, 0.25, size=(32, 3))
    np.savez(data, x_train=x, x_test=x)
    code, out, _ = opt(tiny, "-p", "quantize", "--data", data, "-q")
    assert code == 0
    assert str(parse_graph(out).input_fmt) == "u8.10"  # [0, 0.25): unsigned, 2 more frac bits
    code, out, _ = opt(tiny, "-p", "quantize,auto{coders=csd}", "--board", "ulx3s", "-q")
    assert code == 0
    assert all(la.notes[AutoRecord].family is ECP5 for la in parse_graph(out).matrix_layers())


def test_config_per_layer_settings(tiny: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "nnlcc.toml"
    cfg.write_text('[compile]\npasses = "quantize,csd"\n[layers.fc2]\ncsd = { weight_bits = 3 }\n')
    code, out, _ = opt(tiny, "-c", cfg, "-q")
    assert code == 0
    fc1, fc2 = parse_graph(out).matrix_layers()
    assert fc1.code.frac == 6 and fc2.code.frac == 1  # type: ignore[union-attr]


def test_matrix_pass_needs_formats_first(tiny: Path) -> None:
    code, out, err = opt(tiny, "-p", "csd,quantize")
    assert code == 2 and out == ""
    assert error(err) == (
        "error: pass csd codes to fixed-point formats and the graph input x has none;"
        ' put a format pass before it, e.g. --passes "quantize,csd"'
    )
    half = TINY.replace("graph tiny input=x shape=3 fmt=-", "graph tiny input=x shape=3 fmt=s8.7")
    code, _, err = opt("-", "-p", "lcc", stdin=half)
    assert code == 2 and "layer fc1 has none" in error(err)


def test_unparseable_ir_names_the_line() -> None:
    code, out, err = opt("-", stdin=TINY.replace("1.0 0.125 -0.5", "1.0 zero -0.5"))
    assert code == 2 and out == ""
    assert error(err).startswith("error: IR text line 7: ")


def test_output_file(tiny: Path, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.ir"
    code, out, _ = opt(tiny, "-p", "quantize", "-o", target, "-q")
    assert code == 0 and out == ""
    text = target.read_text()
    assert parse_graph(text).input_fmt is not None
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    assert opt(tiny, "-p", "quantize,csd", "-o", target, "-q")[0] == 0  # IR text: replaced
    assert "code csd" in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["out.ir"]  # no temporary left
    code, out, _ = opt(tiny, "-p", "quantize", "-o", "-", "-q")
    assert code == 0 and out == text


def test_output_never_overwrites_what_the_user_did_not_ask_for(tiny: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    code, _, err = opt(tiny, "-p", "quantize", "-o", notes)
    assert code == 2 and "exists and is not IR text nnlcc wrote; --force" in error(err)
    assert notes.read_text() == "my notes\n"
    code, _, err = opt(tiny, "-p", "quantize", "-o", tiny)
    assert code == 2 and "is an input of this run" in error(err)
    assert tiny.read_text() == TINY
    data = tmp_path / "d.npz"
    np.savez(data, x_train=np.zeros((4, 3)), x_test=np.zeros((4, 3)))
    code, _, err = opt(tiny, "-p", "quantize", "--data", data, "-o", data, "--force")
    assert code == 2 and "is an input of this run" in error(err)
    link = tmp_path / "link.ir"
    link.symlink_to(notes)
    code, _, err = opt(tiny, "-p", "quantize", "-o", link)
    assert code == 2 and "symbolic link" in error(err)
    assert notes.read_text() == "my notes\n"
    # a failing pipeline leaves an existing output as it was
    ir = tmp_path / "kept.ir"
    ir.write_text(TINY)
    code, _, _ = opt(tiny, "-p", "csd", "-o", ir)
    assert code == 2 and ir.read_text() == TINY
    assert opt(tiny, "-p", "quantize", "-o", notes, "--force", "-q")[0] == 0
    assert parse_graph(notes.read_text()).input_fmt is not None
