"""Every case of the bad-input corpus (tests/corpus/generate.py): exit status 2, one line on
stderr holding the expected fragment, no traceback, and the file tree around the run exactly
as before (nothing created, removed or changed; the user's files intact)."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from generate import Case, generate

from nnlcc.cli import app


def _snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` with its kind and, for files, a hash of the content."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = f"link:{os.readlink(p)}"
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Case]]]:
    root = tmp_path_factory.mktemp("corpus") / "work"
    cases = generate(root)
    yield root, {c.name: c for c in cases}


def _names() -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return [c.name for c in generate(Path(d))]


def test_corpus_is_big_enough() -> None:
    assert len(_names()) >= 60


@pytest.mark.parametrize("name", _names())
def test_bad_input(
    name: str, corpus: tuple[Path, dict[str, Case]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cases = corpus
    case = cases[name]
    monkeypatch.chdir(root)
    before = _snapshot(root.parent)
    res = CliRunner().invoke(app, case.argv)
    after = _snapshot(root.parent)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback: a bug
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == case.exit_code, (case.argv, res.stderr)
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in res.stderr
    assert case.fragment in lines[0], lines[0]
    assert after == before, "the run created, removed or changed files"
