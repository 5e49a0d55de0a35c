"""The report files of an output directory: report.json (the source of truth, a
:class:`~nnlcc.report.schema.Report` written as strict JSON), then report.md and report.html
rendered from the :class:`Report` read back from it; :func:`rerender` rebuilds the last two
(``nnlcc report OUTDIR``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from nnlcc.errors import BadInputError
from nnlcc.report.html import render_html
from nnlcc.report.markdown import render_markdown
from nnlcc.report.schema import Report

#: Keys every report.json has; ``rerender`` refuses a file without them.
REQUIRED_KEYS = Report.REQUIRED


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o)}")


#: Top-level key listing the values strict JSON cannot hold (see :func:`strict`).
NOTES_KEY = "json_notes"


def plain(o: Any) -> Any:
    """``o`` as plain JSON data: numpy arrays and scalars and paths become Python's."""
    if isinstance(o, dict):
        return {str(k): plain(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [plain(v) for v in o]
    if isinstance(o, np.ndarray):
        return plain(o.tolist())
    if isinstance(o, np.generic | Path):
        return plain(_json_default(o))
    return o


def strict(r: Any) -> Any:
    """``r`` as strict JSON data (RFC 8259): NaN and +-Infinity become ``null``, and a
    top-level dict gets :data:`NOTES_KEY` saying which values were infinite (an exact layer's
    SQNR) or NaN."""
    notes: list[str] = []

    def walk(o: Any, where: str) -> Any:
        if isinstance(o, dict):
            return {k: walk(v, f"{where}.{k}" if where else k) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(o)]
        if isinstance(o, float) and not math.isfinite(o):
            kind = "NaN" if math.isnan(o) else ("+inf" if o > 0 else "-inf")
            notes.append(f"{where} is {kind}{' (exact)' if o > 0 else ''}, written as null")
            return None
        return o

    out = walk(plain(r), "")
    if notes and isinstance(out, dict):
        out[NOTES_KEY] = [*out.get(NOTES_KEY, []), *notes]
    return out


def dumps(r: Any, indent: int | None = 2) -> str:
    """``r`` as strict JSON text (see :func:`strict`)."""
    return json.dumps(strict(r), indent=indent, allow_nan=False)


def render_reports(r: Report, outdir: Path) -> list[Path]:
    """Write report.md and report.html for ``r`` into ``outdir``; returns their paths."""
    md, html = Path(outdir) / "report.md", Path(outdir) / "report.html"
    md.write_text(render_markdown(r))
    html.write_text(render_html(r))
    return [md, html]


def write_reports(r: Report, outdir: Path) -> list[Path]:
    """Write report.json (the source of truth), then report.md and report.html from it."""
    path = Path(outdir) / "report.json"
    path.write_text(dumps(r.to_json()) + "\n")
    return [path, *render_reports(Report.from_json(json.loads(path.read_text())), outdir)]


def read_report(outdir: Path) -> Report:
    """The report.json of a compile output directory, checked enough to render."""
    outdir = Path(outdir)
    path = outdir / "report.json" if outdir.is_dir() else outdir
    if not outdir.exists():
        raise BadInputError(f"'{outdir}' does not exist; give a directory written by nnlcc compile")
    if not path.is_file():
        raise BadInputError(
            f"'{outdir}' has no report.json; give a directory written by nnlcc compile"
        )
    try:
        r = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInputError(
            f"'{path}' is not valid JSON ({e}); re-run nnlcc compile to rewrite it"
        ) from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(r, dict) or k not in r]
    if missing:
        raise BadInputError(
            f"'{path}' is not an nnlcc report (missing {', '.join(missing)});"
            " re-run nnlcc compile to rewrite it"
        )
    return Report.from_json(r)


def rerender(outdir: Path) -> list[Path]:
    """``nnlcc report OUTDIR``: rebuild report.md and report.html from report.json."""
    r = read_report(outdir)
    target = Path(outdir) if Path(outdir).is_dir() else Path(outdir).parent
    return render_reports(r, target)
