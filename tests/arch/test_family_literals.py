"""FPGA families are spelled in one place: no string literal of the package sources outside
the family table (``compiler/ir/family.py``) is a family name."""

from __future__ import annotations

import ast
from pathlib import Path

from nnlcc.ir.family import FAMILIES

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("compiler", "hdl", "boards", "sim", "frontends")
TABLE = ROOT / "compiler" / "ir" / "family.py"


def family_literals(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, text) of every string constant whose whole text is one of ``names`` (case and
    surrounding spaces ignored), f-string parts included."""
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.strip().lower() in names
    )


def test_the_check_finds_what_it_looks_for() -> None:
    src = (
        'A = "ecp5"\nB = {"xc7": 1}\nC = f"{x}"\nD = "synth_ecp5 -flatten"\ndef f(x="ICE40"): ...\n'
    )
    assert family_literals(src, set(FAMILIES)) == [(1, "ecp5"), (2, "xc7"), (5, "ICE40")]


def test_no_family_literal_outside_the_family_table() -> None:
    names = set(FAMILIES)
    found = []
    for folder in PACKAGE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == TABLE:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{line}: {text!r}"
                for line, text in family_literals(path.read_text(), names)
            ]
    assert not found, "family names outside compiler/ir/family.py (use its Family objects):\n" + (
        "\n".join(found)
    )
