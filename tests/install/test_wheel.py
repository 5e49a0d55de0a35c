"""nnlcc installed from its wheel works outside the checkout.

Builds the wheel (offline, from a copy of the package sources so the checkout gets no build/
or egg-info), installs it into a fresh virtual environment in ``tmp_path`` and, from a folder
there, runs ``nnlcc compile`` (no model: the shipped example, found through
importlib.resources), ``nnlcc inspect`` and ``nnlcc compile --layer``.

The dependencies are not downloaded again: a ``.pth`` file in the new environment adds this
interpreter's site-packages to its path. Folders added by a ``.pth`` are not scanned for
``.pth`` files themselves, so an editable install of nnlcc there stays inactive; the test
checks that ``nnlcc`` is imported from the new environment.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest

from nnlcc.sim import available_simulators

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("verilator" not in available_simulators(), reason="no verilator"),
    pytest.mark.skipif(
        importlib.util.find_spec("pip") is None or importlib.util.find_spec("setuptools") is None,
        reason="building the wheel offline (--no-build-isolation) needs pip and setuptools "
        "in the test's environment",
    ),
]

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VECTORS = "50"  # random vectors after the test set: the point is the installed paths


def _package_dirs() -> dict[str, str]:
    """Import package -> source folder, as pyproject.toml maps them."""
    mapping: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
    return mapping


def _copy_sources(dest: Path) -> Path:
    """pyproject.toml, its readme and license files and the package folders, nothing else."""
    dest.mkdir()
    names = {"pyproject.toml", PYPROJECT["project"]["readme"], *_package_dirs().values()}
    names |= {p.name for p in REPO.glob("LICEN[CS]E*")}
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in sorted(names):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def _run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; a non-zero exit fails the test with the command and its output."""
    run = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False, **kw)
    assert run.returncode == 0, f"{' '.join(argv)}:\n{run.stdout}\n{run.stderr}"
    return run


def _build_wheel(src: Path, out: Path) -> Path:
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    _run([*pip, "--no-index", "-q", "-w", str(out), str(src)])
    (wheel,) = out.glob("nnlcc-*.whl")
    return wheel


def _make_venv(where: Path, wheel: Path) -> Path:
    """A fresh environment holding the wheel; its dependencies come from this interpreter's."""
    venv.create(where, with_pip=False)
    python = where / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(python), "-c", purelib]).stdout.strip())
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
    _run([*pip, "--no-index", "--ignore-installed", "-q", str(wheel)])
    # the folders this interpreter imports its dependencies from (venv, user or system site)
    ours = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    (site / "_nnlcc_test_deps.pth").write_text("".join(f"{p}\n" for p in ours))
    return python


def _env(venv_dir: Path) -> dict[str, str]:
    """The user's environment with the new venv first on PATH and nothing pointing at the
    checkout (PYTHONPATH). This interpreter's scripts folder is left off PATH, as in a plain
    ``pip install nnlcc`` (no ``boards`` extra): yosys is then absent, which the default
    compile does not need (its resources come from the cost model)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    ours = Path(sysconfig.get_paths()["scripts"]).resolve()
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != ours]
    env["PATH"] = os.pathsep.join([str(venv_dir / "bin"), *path])
    env.pop("VIRTUAL_ENV", None)
    return env


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Files of the checkout (size, mtime) outside .git, virtual environments, tool caches
    (.hypothesis, .pytest_cache, ...: other test workers write there) and __pycache__."""
    files: dict[str, tuple[int, int]] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".")
            and d != "__pycache__"
            and not (Path(folder) / d / "pyvenv.cfg").exists()
        ]
        for name in names:
            p = Path(folder) / name
            st = p.stat()
            files[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return files


def _nnlcc(venv_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([str(venv_dir / "bin" / "nnlcc"), *args], cwd=cwd, env=_env(venv_dir))


def test_installed_wheel_compiles_inspects_and_compiles_a_layer(tmp_path: Path) -> None:
    before = _snapshot(REPO)
    wheel = _build_wheel(_copy_sources(tmp_path / "src"), tmp_path / "dist")

    # every module and shipped file of the package folders made it into the wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    for package, folder in _package_dirs().items():
        for f in (REPO / folder).rglob("*"):
            if f.suffix in (".py", ".onnx", ".npz") and "__pycache__" not in f.parts:
                rel = f.relative_to(REPO / folder).as_posix()
                assert f"{package.replace('.', '/')}/{rel}" in names, f

    venv_dir = tmp_path / "venv"
    python = _make_venv(venv_dir, wheel)
    work = tmp_path / "elsewhere"
    work.mkdir()

    show = "import nnlcc.examples as e; print(e.__file__); print(e.MODEL)"
    where = _run([str(python), "-c", show], cwd=work, env=_env(venv_dir)).stdout.split()
    for p in where:  # the installed package, not the checkout's (editable) one
        assert Path(p).resolve().is_relative_to(venv_dir.resolve()), where

    _nnlcc(venv_dir, work, "compile", "-o", "out", "--vectors", VECTORS, "-q")
    report = json.loads((work / "out" / "report.json").read_text())
    assert Path(report["model"]).resolve() == Path(where[1]).resolve()  # the shipped example
    assert report["verification"]["bit_exact"] is True
    assert report["totals"]["adders"] > 0

    model = work / "model.onnx"
    shutil.copy(where[1], model)
    inspected = json.loads(_nnlcc(venv_dir, work, "inspect", "model.onnx", "--json").stdout)
    assert inspected["supported"] is True
    assert [layer["name"] for layer in inspected["layers"]] == ["fc1", "fc2"]

    layer_args = ["model.onnx", "--layer", "fc2", "-o", "out2", "--vectors", VECTORS, "-q"]
    _nnlcc(venv_dir, work, "compile", *layer_args)
    layer = json.loads((work / "out2" / "layer.json").read_text())
    assert layer["layer"] == "fc2" and (work / "out2" / "fc2.v").is_file()
    assert layer["verification"]["bit_exact"] is True

    after = _snapshot(REPO)
    changed = sorted(k for k in after.keys() | before.keys() if after.get(k) != before.get(k))
    assert not changed, f"written into the checkout: {changed}"
