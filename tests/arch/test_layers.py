"""The package's import layering (cli -> commands -> driver -> ... -> passes -> ir) holds, with
no import cycles: import-linter checks the contracts in pyproject.toml."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def package_tree(dest: Path) -> Path:
    """The ``nnlcc`` package as an installed wheel lays it out, as symlinks into the checkout.

    An editable install maps the card's folders (``hdl/`` -> ``nnlcc.hdl``) through an import
    hook that import-linter's module scan cannot see, so the scan runs on this tree instead."""
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    top = dest / "nnlcc"
    top.mkdir(parents=True)
    for entry in (ROOT / dirs["nnlcc"]).iterdir():
        (top / entry.name).symlink_to(entry)
    for name, folder in dirs.items():
        if name != "nnlcc":
            (top / name.split(".", 1)[1]).symlink_to(ROOT / folder)
    return dest


def test_import_contracts_hold(tmp_path: Path) -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    if not linter.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(package_tree(tmp_path / "tree"))}
    res = subprocess.run(
        [str(linter), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_importing_nnlcc_registers_no_pass() -> None:
    """The registry is lazy: importing the package imports no pass module."""
    code = (
        "import sys, nnlcc, nnlcc.passes; "
        "print(sorted(m for m in sys.modules if m.startswith('nnlcc.passes.') "
        "and m.rsplit('.', 1)[1] in ('lcc', 'csd', 'quantize', 'prune', 'share')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


if __name__ == "__main__":  # `make typecheck` runs mypy on this tree
    package_tree(Path(sys.argv[1]))
