"""The package's import layering (cli -> commands -> driver -> ... -> passes -> ir) holds, with
no import cycles: import-linter checks the contracts in pyproject.toml."""

from __future__ import annotations

import json
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


def import_cycles(tree: Path) -> list[list[str]]:
    """Strongly connected groups of nnlcc modules (imports for type checking aside)."""
    code = f"""
import json, sys
sys.path.insert(0, {str(tree)!r})
import grimp
g = grimp.build_graph("nnlcc", cache_dir=None, exclude_type_checking_imports=True)
index, low, stack, on, out = {{}}, {{}}, [], set(), []
sys.setrecursionlimit(100000)
def visit(v):
    index[v] = low[v] = len(index); stack.append(v); on.add(v)
    for w in sorted(g.find_modules_directly_imported_by(v)):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        group = []
        while True:
            w = stack.pop(); on.discard(w); group.append(w)
            if w == v:
                break
        if len(group) > 1:
            out.append(sorted(group))
for m in sorted(g.modules):
    if m not in index:
        visit(m)
print(json.dumps(out))
"""
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    cycles: list[list[str]] = json.loads(res.stdout)
    return cycles


def test_no_import_cycles(tmp_path: Path) -> None:
    pytest.importorskip("grimp")
    assert import_cycles(package_tree(tmp_path / "tree")) == []


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


def test_every_subpackage_is_packaged() -> None:
    """pyproject's package list is written by hand (package-dir maps the card's folders); a
    subpackage missing from it is missing from the wheel."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tool["packages"])
    found = set()
    for name, folder in tool["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    # a subpackage of a mapped folder that is itself mapped is listed once under its own name
    assert found - listed == set(), f"add to [tool.setuptools] packages: {sorted(found - listed)}"
