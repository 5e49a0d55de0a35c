"""The documentation's examples run, so they cannot rot.

* ```console blocks: every ``$ nnlcc ...`` line runs through the CLI; it must exit 0, or the
  status a following ``# exit N`` line states, and print every output line the block shows
  after it (pages show output only where it is stable, e.g. ``inspect --no-lcc``).
* ```python blocks: executed in order in one namespace per page.
* ```toml blocks: valid ``nnlcc.toml`` files.

Everything runs in a scratch directory that links ``examples/`` and ``docs/``, so the
relative paths of the docs work and the ``build/`` outputs land in the test's tmp dir.
"""

from __future__ import annotations

import re
import shlex
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnlcc import passes as passes_module
from nnlcc.cli import app
from nnlcc.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.M | re.S)


def blocks(page: Path, lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(page.read_text()) if kind == lang]


def commands(page: Path) -> list[tuple[str, int, list[str]]]:
    """(command, expected exit status, output lines shown after it) per ``$`` line."""
    out: list[tuple[str, int, list[str]]] = []
    for body in blocks(page, "console"):
        for line in body.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], 0, []))
            elif (m := re.fullmatch(r"# exit (\d+)", line)) and out:
                out[-1] = (out[-1][0], int(m.group(1)), out[-1][2])
            elif out and line.strip():
                out[-1][2].append(line.rstrip())
    return out


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("examples", "docs"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_docs_exist_with_the_promised_sections() -> None:
    guide = (ROOT / "docs" / "user-guide.md").read_text()
    for heading in (
        "## The command line",
        "## Configuration",
        "## The Python API",
        "## Adding a pass",
        "## Adding a board",
    ):
        assert heading in guide
    arch = (ROOT / "docs" / "architecture.md").read_text()
    assert "```mermaid" in arch and "flowchart" in arch


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_console_examples_run(page: Path, scratch: Path) -> None:
    runner = CliRunner()
    for command, status, shown in commands(page):
        argv = shlex.split(command)
        assert argv[0] == "nnlcc", f"{page.name}: console examples run nnlcc only: {command}"
        res = runner.invoke(app, argv[1:])
        assert res.exit_code == status, f"{page.name}: `{command}` -> {res.exit_code}\n{res.stderr}"
        if status:
            assert res.stderr.strip().splitlines()[-1].startswith("error: ")
        printed = {line.rstrip() for line in (res.stdout + res.stderr).splitlines()}
        for line in shown:  # output shown in the docs is real output
            assert line in printed, f"{page.name}: `{command}` no longer prints:\n{line}"


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.name)
def test_python_examples_run(page: Path, scratch: Path) -> None:
    code = blocks(page, "python")
    before = set(passes_module.pass_names())
    module = types.ModuleType(f"nnlcc_docs_{page.stem.replace('-', '_')}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    try:
        for i, block in enumerate(code):
            where = f"{page.name}[python block {i}]"
            exec(compile(block, where, "exec", dont_inherit=True), module.__dict__)
    finally:  # a pass registered by an example must not leak into other tests
        del sys.modules[module.__name__]
        for name in set(passes_module.pass_names()) - before:
            passes_module.unregister_pass(name)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_toml_examples_are_valid_configs(page: Path, scratch: Path) -> None:
    for block in blocks(page, "toml"):
        parse_config(block, scratch / "nnlcc.toml")
