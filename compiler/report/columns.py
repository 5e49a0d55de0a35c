"""Column specifications shared by every report format (report.md and report.html)."""

from __future__ import annotations

from typing import Any

#: The accuracy table of every report format: (header, report.json key).
ACCURACY_COLUMNS = (
    ("dataset", "dataset"),
    ("samples", "samples"),
    ("float", "float"),
    ("golden (integer)", "golden"),
    ("output SQNR dB", "sqnr_db"),
    ("argmax agreement", "argmax_agreement"),
)


def accuracy_table(acc: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Headers and the one row of the accuracy table."""
    return [h for h, _ in ACCURACY_COLUMNS], [[acc.get(k) for _, k in ACCURACY_COLUMNS]]
