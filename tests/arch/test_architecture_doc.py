"""docs/architecture.md's folder table names every module of the package, each in the row of
its folder (a module in a subfolder inside the parentheses after the subfolder's name)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"


def table_rows() -> dict[str, str]:
    """Folder (as ``compiler/ir/``) -> the text of its row in the doc's folder table."""
    rows: dict[str, str] = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| `([\w/]+/)` \| (.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def package_modules() -> list[Path]:
    """Every module of the wheel's packages (``__init__`` aside), as paths in the checkout:
    pyproject's ``packages`` in the folders ``package-dir`` maps them to."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs: dict[str, str] = tool["package-dir"]
    found: list[Path] = []
    for package in tool["packages"]:
        base = max((n for n in dirs if package == n or package.startswith(n + ".")), key=len)
        rest = package[len(base) :].lstrip(".").split(".") if package != base else []
        folder = ROOT / dirs[base] / Path(*rest)
        found += sorted(p for p in folder.glob("*.py") if p.name != "__init__.py")
    return found


def group_after(text: str, start: int) -> str:
    """The parenthesized group that opens first after ``start`` in ``text``."""
    i = text.index("(", start)
    depth = 0
    for j in range(i, len(text)):
        depth += {"(": 1, ")": -1}.get(text[j], 0)
        if depth == 0:
            return text[i : j + 1]
    raise AssertionError(f"unbalanced parentheses after {text[start : start + 40]!r}")


def where_named(module: Path, rows: dict[str, str]) -> str | None:
    """Why ``module`` is not named in its folder's row (None: it is)."""
    rel = module.relative_to(ROOT).as_posix()
    folder = max((f for f in rows if rel.startswith(f)), key=len, default=None)
    if folder is None:
        return f"{rel}: no row of the folder table covers its folder"
    row, name = rows[folder], f"`{module.stem}`"
    sub = rel[len(folder) :].rsplit("/", 1)[0] if "/" in rel[len(folder) :] else ""
    if sub:  # a module of a subfolder: inside the parentheses after `sub/`
        at = row.find(f"`{sub}/`")
        if at < 0:
            return f"{rel}: the row of {folder} does not name `{sub}/`"
        row = group_after(row, at)
    return None if name in row else f"{rel}: the row of {folder} does not name {name}"


def test_every_package_module_is_in_the_folder_table() -> None:
    rows = table_rows()
    assert {"compiler/", "compiler/ir/", "compiler/passes/", "boards/"} <= set(rows)
    modules = package_modules()
    assert len(modules) > 80  # the walk found the package
    missing = [why for m in modules if (why := where_named(m, rows)) is not None]
    assert missing == [], "docs/architecture.md's folder table lacks:\n" + "\n".join(missing)


def test_the_check_fails_for_a_module_the_table_does_not_name() -> None:
    rows = table_rows()
    assert where_named(ROOT / "compiler" / "ir" / "notes.py", rows) is None
    assert where_named(ROOT / "compiler" / "passes" / "lcc" / "fp.py", rows) is None
    assert where_named(ROOT / "compiler" / "ir" / "no_such_module.py", rows) is not None
    # circulant/ has a `code` too, but not an `fs`: a subfolder's modules are its own
    assert where_named(ROOT / "compiler" / "passes" / "circulant" / "fs.py", rows) is not None
