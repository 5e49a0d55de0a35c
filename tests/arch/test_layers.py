"""The package's import layering (cli -> commands -> driver -> ... -> passes -> ir) holds, with
no import cycles: import-linter checks the contracts in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    if not linter.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    res = subprocess.run(
        [str(linter), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
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
