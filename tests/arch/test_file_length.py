"""The engineering standard: no Python file of the project over 600 lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 600


def _python_files() -> list[Path]:
    """The tracked Python files (and, outside a git checkout, every one under the root)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        return [ROOT / line for line in out.splitlines() if line]
    except (OSError, subprocess.CalledProcessError):
        skip = {".venv", "build", ".git"}
        return [p for p in ROOT.rglob("*.py") if not skip & set(p.relative_to(ROOT).parts)]


def test_no_python_file_over_600_lines() -> None:
    files = _python_files()
    assert files, "no Python files found"
    long = {
        str(p.relative_to(ROOT)): n
        for p in files
        if p.is_file() and (n := len(p.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert not long, f"over {LIMIT} lines: {long}"
