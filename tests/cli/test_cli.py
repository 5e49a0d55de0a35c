"""The command line: help with an example on every command, one-line errors with the
documented exit status for each command's bad input, --json, progress levels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from nnlcc.cli import app

runner = CliRunner()
COMMANDS = ["compile", "inspect", "opt", "sim", "report", "boards"]


def run(*args: str | Path) -> tuple[int, str, str]:
    res = runner.invoke(app, [str(a) for a in args])
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def error_line(stderr: str) -> str:
    """The single ``error:`` line (progress lines may precede it)."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert stderr.rstrip().endswith(errors[0]), "the error is the last thing printed"
    return errors[0]


@pytest.fixture(scope="module")
def not_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("bad") / "model.onnx"
    p.write_bytes(b"this is not a protobuf \x00\xff")
    return p


@pytest.fixture(scope="module")
def sigmoid_mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Gemm followed by a Sigmoid: readable ONNX that nnlcc cannot compile."""
    w = onnx.numpy_helper.from_array(np.ones((3, 4), dtype=np.float32), "w")
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"], name="fc", transB=1),
        helper.make_node("Sigmoid", ["h"], ["y"], name="act"),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [w],
    )
    p = tmp_path_factory.mktemp("sig") / "sigmoid.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    return p


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example_and_exit_codes(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert f"Example: nnlcc {command}" in out
    if command != "boards":
        assert "2 bad input" in " ".join(out.split())


def test_top_level_help_lists_commands_and_completion() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for command in COMMANDS:
        assert command in out
    assert "--install-completion" in out
    assert "Exit status: 0 success" in " ".join(out.split())


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["compile", "missing.onnx"], "not found"),
        (["compile", "{not_onnx}"], "is not an ONNX model"),
        (["compile", "{sigmoid}"], "Sigmoid"),
        (["compile", "--passes", "lcc{sqnr=3}"], "unknown option 'sqnr'"),
        (["compile", "--passes", "magic"], "unknown pass 'magic'"),
        (["compile", "--board", "zedboard"], "unknown board 'zedboard'"),
        (["compile", "--config", "missing.toml"], "config file 'missing.toml' not found"),
        (["compile", "--config", "{bad_toml}"], "invalid TOML"),
        (["compile", "--config", "{bad_key}"], "unknown key 'boardd'"),
        (["compile", "--config", "{bad_layer}"], "[layers.fc9] matches no layer"),
        (["inspect", "missing.onnx"], "not found"),
        (["inspect", "{not_onnx}"], "is not an ONNX model"),
        (["inspect", "--csd-bits", "40", "{sigmoid}"], "--csd-bits must be in 2..24"),
        (["opt", "missing.txt"], "no such file: 'missing.txt'"),
        (["opt", "missing.onnx"], "not found"),
        (["opt", "{not_onnx}"], "is not an ONNX model"),
        (["opt", "{bad_ir}"], "IR text line 3: "),
        (["opt", "examples/digits_mlp.onnx", "-p", "magic"], "unknown pass 'magic'"),
        (["opt", "examples/digits_mlp.onnx", "-p", "csd"], "pass csd codes to fixed-point"),
        (["opt", "examples/digits_mlp.onnx", "--board", "zed"], "unknown board 'zed'"),
        (["opt", "examples/digits_mlp.onnx", "-o", "{tmp}"], "is a directory"),
        (["sim", "{tmp}"], "not a directory written by nnlcc compile"),
        (["report", "{tmp}/nowhere"], "does not exist"),
        (["report", "{tmp}"], "has no report.json"),
        (["report", "{bad_report}"], "is not valid JSON"),
    ],
)
def test_bad_input_is_one_line_with_exit_2(
    args: list[str], expect: str, tmp_path: Path, not_onnx: Path, sigmoid_mlp: Path
) -> None:
    (tmp_path / "bad.toml").write_text("[compile\n")
    (tmp_path / "key.toml").write_text('[compile]\nboardd = "x"\n')
    (tmp_path / "layer.toml").write_text("[layers.fc9]\nlcc = { sqnr_db = 40 }\n")
    (tmp_path / "bad.ir").write_text(
        "graph g input=x shape=2 fmt=- output=y\n\ndense y 1x2 relu=9\n"
    )
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "report.json").write_text("{not json")
    subst = {
        "{not_onnx}": str(not_onnx),
        "{sigmoid}": str(sigmoid_mlp),
        "{bad_toml}": str(tmp_path / "bad.toml"),
        "{bad_key}": str(tmp_path / "key.toml"),
        "{bad_layer}": str(tmp_path / "layer.toml"),
        "{bad_report}": str(tmp_path / "rep"),
        "{bad_ir}": str(tmp_path / "bad.ir"),
        "{tmp}": str(tmp_path),
    }
    argv = [subst.get(a, a.replace("{tmp}", str(tmp_path))) for a in args]
    code, out, err = run(*argv, "-o", tmp_path / "out") if args[0] == "compile" else run(*argv)
    assert code == 2, err
    line = error_line(err)
    assert expect in line
    assert "Traceback" not in err
    assert out == ""


def test_json_errors_are_machine_readable(tmp_path: Path) -> None:
    code, out, err = run("compile", tmp_path / "missing.onnx", "--json")
    assert code == 2
    assert json.loads(out) == {"error": error_line(err)[len("error: ") :], "exit_code": 2}
    code, out, _ = run("inspect", tmp_path / "missing.onnx", "--json")
    assert code == 2 and json.loads(out)["exit_code"] == 2


def test_compile_report_only_json_and_files(tmp_path: Path) -> None:
    out_dir = tmp_path / "digits"
    code, out, _ = run("compile", "--report-only", "-o", out_dir, "--json", "-q")
    assert code == 0
    report = json.loads(out)
    assert report["outdir"] == str(out_dir)
    assert [lay["name"] for lay in report["layers"]] == ["fc1", "fc2"]
    for name in ("report.json", "report.md", "report.html"):
        assert (out_dir / name).is_file()
    saved = json.loads((out_dir / "report.json").read_text())
    assert saved["totals"] == report["totals"]


def test_progress_levels(tmp_path: Path) -> None:
    code, out, err = run("compile", "--report-only", "-o", tmp_path / "a", "-v")
    assert code == 0
    steps = [line for line in err.splitlines() if "✓" in line]
    titles = " | ".join(steps)
    for step in ("frontend", "pass quantize", "pass auto: fc1 (1/2)", "pass auto: fc2 (2/2)"):
        assert step in titles
    assert out.startswith("digits_mlp: ") and out.count("\n") == 1  # the summary line
    code, out, err = run("compile", "--report-only", "-o", tmp_path / "b", "-q")
    assert code == 0 and out == "" and err == ""


def test_config_sets_defaults_and_cli_wins(tmp_path: Path) -> None:
    cfg = tmp_path / "nnlcc.toml"
    cfg.write_text(
        '[compile]\npasses = "quantize,csd"\nreport_only = true\nboard = "icebreaker"\n'
        "[layers.fc2]\ncsd = { weight_bits = 5 }\n"
    )
    code, out, _ = run("compile", "-c", cfg, "--board", "ulx3s", "-o", tmp_path / "o", "--json")
    assert code == 0
    r = json.loads(out)
    assert r["board"] == "ulx3s"  # the command line wins over [compile]
    assert r["verification"]["skipped"] == "report only"  # from [compile]
    assert r["config"] == str(cfg)
    assert r["layer_config"]["fc2"]["csd"] == {"weight_bits": 5}
    fc1, fc2 = r["layers"]
    assert fc1["pass"] == fc2["pass"] == "csd"
    assert fc2["weight_frac_bits"] < fc1["weight_frac_bits"]  # 5-bit weights on fc2 only


def test_inspect_text_and_json(sigmoid_mlp: Path) -> None:
    code, out, _ = run("inspect", "examples/digits_mlp.onnx")
    assert code == 0
    assert "fc1" in out and "16×64" in out and "LCC" in out and "supported" in out
    code, out, _ = run("inspect", sigmoid_mlp, "--json", "--no-lcc")
    assert code == 0
    info = json.loads(out)
    assert info["supported"] is False
    (bad,) = [n for n in info["nodes"] if not n["supported"]]
    assert bad["op"] == "Sigmoid" and bad["reason"]


def test_report_command_rerenders(tmp_path: Path) -> None:
    out_dir = tmp_path / "r"
    assert run("compile", "--report-only", "-o", out_dir, "-q")[0] == 0
    (out_dir / "report.html").unlink()
    (out_dir / "report.md").unlink()
    code, out, _ = run("report", out_dir)
    assert code == 0
    assert (out_dir / "report.html").is_file() and (out_dir / "report.md").is_file()
    assert str(out_dir / "report.html") in out


def test_boards_json() -> None:
    code, out, _ = run("boards", "--json")
    assert code == 0
    names = [b["name"] for b in json.loads(out)]
    assert "arty-a7" in names and "icebreaker" in names
