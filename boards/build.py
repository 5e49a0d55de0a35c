"""Board builds: resource estimates, self-test bitstreams (open flows: iCE40, ECP5) and vendor
build trees (xc7: Vivado).

The resources come from the calibrated cost model (:mod:`nnlcc.boards.fit`, seconds) unless
yosys is asked for (``synth``, and always with ``run_pnr``). Everything lands under
``outdir/board/``::

    network.v                  the network alone (module nnlcc_network), what yosys reads
    network_synth.ys/.log      with synth: yosys synth_<family> of the network, its stat JSON
    selftest/                  families with an open flow, with run_pnr: Amaranth build tree of
                               the self-test top, yosys/nextpnr logs, the bitstream
    vivado/                    xc7: Amaranth Vivado build tree + build.sh (needs Vivado)
    resources.json             the dict :func:`board_build` returns

Every command and file name that depends on the FPGA family comes from the board's
:class:`~nnlcc.ir.family.Family` (its :class:`~nnlcc.ir.family.Toolchain` and cell names).

Why the network alone is synthesized even when a bitstream is built: the self-test top adds
ROMs and a checker, so only the network-alone figure compares across boards and against the
Vivado (xc7) estimate. The fit check runs first on the cost model's figures (no tool), then on
yosys's figures of the self-test top before place-and-route.
"""

from __future__ import annotations

import json
import re
import string
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError, ToolchainError
from nnlcc.hdl.adder_tree import KEEP_COPIES
from nnlcc.hdl.top import TopStrategy, top_for
from nnlcc.ir.cost import NetworkCost
from nnlcc.ir.family import AdderDelay, Family
from nnlcc.ir.lowered import LoweredNetwork

from .fit import (
    MODEL_SOURCE,
    DesignTooLargeError,
    fit_advice,
    fits,
    model_resources,
    network_cost,
)
from .headroom import fit_verdict
from .profiles import BoardProfile, get_board
from .selftest import BoardSelfTest
from .stream_selftest import (
    StreamSelfTest,
    fitting_inputs,
    roms_in_luts,
    selftest_core,
    selftest_inputs,
)
from .toolchain import (
    count_cells,
    find_tool,
    first_error,
    parse_nextpnr,
    read_yosys_stat,
    run_tool,
)

__all__ = [
    "DesignTooLargeError",
    "board_build",
    "pnr_fields",
    "pnr_target_mhz",
    "synth_network",
    "synth_script",
]

NETWORK_MODULE = "nnlcc_network"
SELFTEST_NAME = "nnlcc_selftest"


def synth_script(family: Family, verilog: str, top: str, stat_json: str) -> str:
    """The yosys script synthesizing ``top`` of ``verilog`` for ``family`` (its
    :attr:`~nnlcc.ir.family.Toolchain.synth` command; on the digits MLP, CSD, ~1000 adders,
    about 60 s for each family); the copies of duplicated registers are kept
    (:data:`~nnlcc.hdl.adder_tree.KEEP_COPIES`)."""
    synth = family.toolchain.synth
    return (
        f"read_verilog {verilog}\nproc\n{KEEP_COPIES}\n{synth} -top {top}\n"
        f"tee -q -o {stat_json} stat -json\n"
    )


def synth_network(
    family: Family,
    bdir: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, int | None], float]:
    """Synthesize ``bdir/network.v`` with yosys for ``family``; return counts and seconds."""
    (bdir / "network_synth.ys").write_text(
        synth_script(family, "network.v", NETWORK_MODULE, "network_stat.json")
    )
    run = run_tool(
        "yosys",
        ["-q", "-l", "network_synth.log", "network_synth.ys"],
        cwd=bdir,
        step="network_synth",
        progress=progress,
    )
    cells = read_yosys_stat(bdir / "network_stat.json")
    return count_cells(family, cells), run.seconds


def _vectors(net: LoweredNetwork, x_int: npt.ArrayLike | None) -> npt.NDArray[np.int64]:
    return selftest_inputs(net, x_int)


def _selftest_plan(
    board: BoardProfile, net: LoweredNetwork, x: npt.NDArray[np.int64], **opts: Any
) -> Any:
    core = selftest_core(net, x, rom_in_luts=roms_in_luts(board, pnr_target_mhz(board)))
    top = BoardSelfTest(core, board)
    platform = board.platform()
    return platform.build(top, name=SELFTEST_NAME, do_build=False, **opts), top


def _write_vivado_tree(
    board: BoardProfile, net: LoweredNetwork, x: npt.NDArray[np.int64], vdir: Path
) -> list[Path]:
    plan, _ = _selftest_plan(board, net, x)
    plan.extract(str(vdir))
    script = vdir / "build.sh"
    script.write_text(
        "#!/bin/sh\n"
        "# Vivado build of the nnlcc self-test for "
        f"{board.name} ({board.device}); needs Vivado on PATH (or AMARANTH_ENV_VIVADO=settings64.sh).\n"
        "# Produces nnlcc_selftest.bit; program it with `openFPGALoader -b arty nnlcc_selftest.bit`.\n"
        "# LEDs: LD4 pass, LD5 fail, LD6 done, LD7 blinks.\n"
        'set -e\ncd "$(dirname "$0")"\n'
        f"exec sh build_{SELFTEST_NAME}.sh\n"
    )
    script.chmod(0o755)
    return sorted(p for p in vdir.rglob("*") if p.is_file())


def _inputs_text(core: Any, n: int) -> str:
    """What the self-test's input ROM holds, in words."""
    if isinstance(core, StreamSelfTest):
        return f"{n} images ({core.pixels} pixels)"
    return f"{n} vectors"


class _Template(string.Formatter):
    """``str.format`` with two conversions of its own: ``{x:upper}``, ``{x:lower}``."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec in ("upper", "lower"):
            return str(getattr(str(value), format_spec)())
        return str(super().format_field(value, format_spec))


def pnr_fields(platform: Any, name: str) -> dict[str, str]:
    """What a family's ``pnr_args`` and ``pack_args`` templates may name, from the same tables
    Amaranth's own build script uses: ``name`` (the design), ``device_option`` (nextpnr's
    device flag), ``package`` (the board's package), ``package_option`` (nextpnr's package
    name keyed by package, as ECP5 platforms have it), ``device_package_option`` (its suffix
    keyed by device, as iCE40 platforms have it) and ``speed`` (the speed grade, if any)."""
    packages = getattr(platform, "_nextpnr_package_options", {})
    return {
        "name": name,
        "device_option": platform._nextpnr_device_options[platform.device],
        "package": platform.package,
        "package_option": str(packages.get(platform.package, "")),
        "device_package_option": str(packages.get(platform.device, "")),
        "speed": str(getattr(platform, "speed", "")),
    }


def _fill(template: str, fields: dict[str, str]) -> list[str]:
    """A family's argument template, split at spaces, each word's placeholders filled."""
    return [_Template().format(word, **fields) for word in template.split()]


def _open_flow(family: Family) -> tuple[str, str]:
    """The place-and-route and packing tools of a family with an open flow."""
    tools = family.toolchain
    if tools.pnr is None or tools.pack is None:
        raise ToolchainError(f"no open place-and-route for {family}")
    return tools.pnr, tools.pack


def pnr_target_mhz(board: BoardProfile) -> float:
    """The clock nextpnr is asked to meet: the board's, or the clock the family's schedule
    aims at (:attr:`~nnlcc.ir.family.AdderDelay.target_mhz`) when that is faster. The
    schedule placed the registers for that clock; a placer asked only for a slow board clock
    stops improving the paths long before (the ULX3S's 25 MHz left the MLP at 144.5 MHz)."""
    adder = board.family.adder_delay
    target = adder.target_mhz if isinstance(adder, AdderDelay) else 0.0
    return max(board.clock_mhz, target)


def _retarget_clock(sdir: Path, family: Family, name: str, mhz: float) -> None:
    """Ask nextpnr for ``mhz`` on the board clock: the constraint file's clock line rewritten
    (the design, its UART divisor and timers, stay sized for the board's own clock)."""
    tools = family.toolchain
    if not tools.constraints or not tools.clock_constraint:
        return
    path = sdir / tools.constraints.format(name=name)
    value = f"{mhz * 1e6 / tools.clock_unit_hz:.6f}".rstrip("0").rstrip(".")
    text, n = re.subn(
        tools.clock_constraint,
        lambda m: (
            m.group(0)[: m.start(1) - m.start(0)] + value + m.group(0)[m.end(1) - m.start(0) :]
        ),
        path.read_text(),
        flags=re.M,
    )
    if n != 1:
        raise ToolchainError(f"{path.name}: expected one clock constraint, found {n}")
    path.write_text(text)


def _pnr_args(board: BoardProfile, platform: Any) -> list[str]:
    """nextpnr's arguments: the run's own, then the family's device, constraint and output
    arguments (:attr:`~nnlcc.ir.family.Toolchain.pnr_args`)."""
    name = SELFTEST_NAME
    common = [
        "--quiet",
        "--log", f"{name}.tim",
        "--report", f"{name}_report.json",
        "--freq", f"{pnr_target_mhz(board):g}",
        "--timing-allow-fail",
        "--json", f"{name}.json",
    ]  # fmt: skip
    return [*common, *_fill(board.family.toolchain.pnr_args, pnr_fields(platform, name))]


def board_build(
    board: str | BoardProfile,
    net: LoweredNetwork,
    outdir: Path,
    *,
    x_int: npt.ArrayLike | None = None,
    run_pnr: bool = False,
    synth: bool = False,
    cost: NetworkCost | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Estimate ``net`` on ``board`` and, where asked and possible, build its self-test.

    Returns the report's ``resources`` dict (also written to ``outdir/board/resources.json``).
    The figures come from the calibrated cost model (:mod:`nnlcc.ir.cost`, ``cost`` when the
    caller has it for the board's family) unless a tool refines them: ``synth`` runs yosys on
    the network alone (its figures become the resources, the model's stay in
    ``model_estimate``), ``run_pnr`` builds the self-test top (iCE40/ECP5: yosys, nextpnr and
    the packer; ``estimate`` is then False and the network-alone yosys figures are in
    ``network_estimate``; xc7: the yosys estimate, with a note).  A design the model or yosys
    finds too big for the device gets ``fit_advice`` (:func:`~nnlcc.boards.fit.fit_advice`);
    with ``run_pnr`` it raises :class:`DesignTooLargeError` with that one line instead, before
    any tool runs.  :class:`ToolchainError` when a tool is missing or fails.  A top without a
    board self-test (its strategy's :attr:`~nnlcc.hdl.top.TopStrategy.selftest_refusal`, e.g.
    a pixel-streaming CNN) gets the network estimate alone, with the strategy's note; asking
    it for a bitstream raises :class:`~nnlcc.errors.BadInputError` with the refusal.
    """
    prof = get_board(board)
    top = top_for(net)
    if top.selftest_refusal is not None:  # no self-test top: the network estimate alone
        if run_pnr:
            raise BadInputError(top.selftest_refusal)
        return _network_estimate_only(prof, top, Path(outdir), synth, cost, progress)
    outdir = Path(outdir)
    bdir = outdir / "board"
    bdir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    pnr = run_pnr and prof.open_pnr

    t0 = time.monotonic()
    fam = prof.family
    tools = fam.toolchain
    say(f"board {prof.name}: cost-model estimate ({fam})")
    cost = network_cost(net, prof.family, cost)
    model = model_resources(net, prof.family, cost)
    timings["model_s"] = time.monotonic() - t0
    advice = fit_advice(prof, net, model, MODEL_SOURCE, cost)
    if run_pnr and advice is not None:  # before minutes of synthesis and place-and-route
        raise DesignTooLargeError(advice["message"])
    # Fail before minutes of synthesis when a tool is missing.
    if synth or run_pnr:
        find_tool("yosys")
    if pnr:
        for tool in _open_flow(fam):
            find_tool(tool)

    t0 = time.monotonic()
    say(f"board {prof.name}: writing network Verilog")
    top.emit(bdir / "network.v", NETWORK_MODULE)
    timings["verilog_s"] = time.monotonic() - t0

    vendor = tools.vendor_tree
    x = None
    if pnr or vendor is not None:  # as many test inputs as the block RAM holds beside it
        in_luts = roms_in_luts(prof, pnr_target_mhz(prof))
        x = fitting_inputs(net, prof, _vectors(net, x_int), model["bram"], in_luts)
    extra: dict[str, Any] = {}
    if vendor is not None:  # Vivado, the one vendor flow nnlcc writes
        assert x is not None
        t0 = time.monotonic()
        say(f"board {prof.name}: writing the Vivado build tree (board/{vendor})")
        _write_vivado_tree(prof, net, x, bdir / vendor)
        timings[f"{vendor}_tree_s"] = time.monotonic() - t0
        extra[vendor] = {
            "tree": f"board/{vendor}",
            "script": f"board/{vendor}/build.sh",
            "note": tools.vendor_note,
        }

    model_facts = _model_facts(prof)
    if not (synth or run_pnr):
        counts: dict[str, Any] = dict(model)
        result: dict[str, Any] = {
            "estimate": True,
            **model_facts,
            "design": top.estimate_design,
            "fmax_mhz": None,
            **counts,
        }
    elif not pnr:
        say(f"board {prof.name}: yosys {tools.synth_pass} estimate of the network")
        est, timings["estimate_s"] = synth_network(fam, bdir, progress=progress)
        counts = dict(est)
        result = {
            "estimate": True,
            "tool": f"yosys {tools.synth_pass} (estimate)",
            "design": top.estimate_design,
            "fmax_mhz": None,
            **counts,
            "model_estimate": {**model_facts, **model},
        }
        advice = fit_advice(prof, net, counts, "yosys", cost)
    else:
        assert x is not None
        result, est = _pnr_flow(prof, net, x, bdir, timings, say, progress, cost)
        counts = {k: result[k] for k in ("luts", "ffs", "bram", "dsp")}
        result["network_estimate"] = {**est, "tool": f"yosys {tools.synth_pass}"}
        result["model_estimate"] = {**model_facts, **model}
        advice = None  # it fits: _pnr_flow raises otherwise

    resources = {
        "board": prof.name,
        "device": prof.device,
        "family": fam.name,
        "clock_mhz": prof.clock_mhz,
        **result,
        "device_luts": prof.luts,
        "device_ffs": prof.ffs,
        "fits": fits(prof, counts),
        "utilization_pct": round(100.0 * (counts.get("luts") or 0) / prof.luts, 2),
        **({"fit_advice": advice} if advice is not None else {}),
        "verdict": fit_verdict(prof, net, model, cost),
        **extra,
        "timings_s": {k.removesuffix("_s"): round(v, 2) for k, v in timings.items()},
    }
    if run_pnr and not prof.open_pnr:
        resources["note"] = f"no open place-and-route for {fam}; figures are estimates"
    return _finish(resources, outdir, bdir)


def _model_facts(prof: BoardProfile) -> dict[str, Any]:
    """How the cost-model figures were made: the tool, its calibration and measured error."""
    return {
        "tool": f"nnlcc cost model ({prof.family}, calibrated estimate)",
        "calibration": prof.family.cost.calibration,
        "model_error": prof.family.cost.error,
    }


def _network_estimate_only(
    prof: BoardProfile,
    top: TopStrategy,
    outdir: Path,
    synth: bool,
    cost: NetworkCost | None,
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    """The board figures of a top without a self-test: the estimate of the network alone
    (the cost model's, or yosys's with ``synth``), with the strategy's design and note (no
    bitstream, no Vivado tree)."""
    bdir = outdir / "board"
    bdir.mkdir(parents=True, exist_ok=True)
    top.emit(bdir / "network.v", NETWORK_MODULE)
    facts: dict[str, Any] = {"board": prof.name, "device": prof.device, "family": prof.family.name}
    note = {"note": top.estimate_note} if top.estimate_note is not None else {}
    t0 = time.monotonic()
    cost = network_cost(top.net, prof.family, cost)
    model = model_resources(top.net, prof.family, cost)
    seconds = time.monotonic() - t0
    counts: dict[str, Any] = dict(model)
    how: dict[str, Any] = _model_facts(prof)
    source = MODEL_SOURCE
    if synth:
        find_tool("yosys")
        if progress is not None:
            progress(f"board {prof.name}: yosys estimate of the {top.kind} network alone")
        counts, seconds = synth_network(prof.family, bdir, progress=progress)
        how = {"tool": "yosys", "model_estimate": {**how, **model}}
        source = "yosys"
    advice = fit_advice(prof, top.net, counts, source, cost)
    return {
        **facts,
        "estimate": True,
        **{k: v for k, v in how.items() if k != "model_estimate"},
        "design": top.estimate_design,
        "fmax_mhz": None,
        **counts,
        **({"model_estimate": how["model_estimate"]} if "model_estimate" in how else {}),
        "device_luts": prof.luts,
        "device_ffs": prof.ffs,
        "fits": fits(prof, counts),
        "utilization_pct": round(100.0 * (counts.get("luts") or 0) / prof.luts, 2),
        **({"fit_advice": advice} if advice is not None else {}),
        "verdict": fit_verdict(prof, top.net, model, cost, wrapper=False),
        "timings_s": {"estimate": round(seconds, 2)},
        **note,
    }


def _finish(resources: dict[str, Any], outdir: Path, bdir: Path) -> dict[str, Any]:
    """List the files written (relative to ``outdir``) and save ``resources.json``."""
    written = sorted(str(p.relative_to(outdir)) for p in bdir.rglob("*") if p.is_file())
    resources["files"] = [
        *(f for f in written if f != "board/resources.json"),
        "board/resources.json",
    ]
    (bdir / "resources.json").write_text(json.dumps(resources, indent=2) + "\n")
    return resources


def _pnr_flow(
    prof: BoardProfile,
    net: LoweredNetwork,
    x: npt.NDArray[np.int64],
    bdir: Path,
    timings: dict[str, float],
    say: Callable[[str], None],
    progress: Callable[[str], None] | None,
    cost: NetworkCost,
) -> tuple[dict[str, Any], dict[str, int | None]]:
    """Self-test top through yosys, a fit check (yosys's figures), nextpnr and the packer."""
    sdir = bdir / "selftest"
    name = SELFTEST_NAME
    pnr_tool, pack_tool = _open_flow(prof.family)
    t0 = time.monotonic()
    say(f"board {prof.name}: elaborating the self-test top ({len(x)} inputs)")
    plan, top = _selftest_plan(
        prof,
        net,
        x,
        script_after_read=KEEP_COPIES,
        script_after_synth=f"tee -q -o {name}_stat.json stat -json",
        nextpnr_opts=f"--report {name}_report.json --timing-allow-fail",
    )
    plan.extract(str(sdir))
    _retarget_clock(sdir, prof.family, name, pnr_target_mhz(prof))
    timings["selftest_tree_s"] = time.monotonic() - t0
    platform_cls = prof.platform()

    # The network estimate and the self-test synthesis are independent: run them side by side.
    say(f"board {prof.name}: yosys synthesis of the self-test top (and the network estimate)")
    with ThreadPoolExecutor(max_workers=2) as pool:
        est_future = pool.submit(synth_network, prof.family, bdir, progress=progress)
        syn = run_tool(
            "yosys",
            ["-q", "-l", f"{name}.rpt", f"{name}.ys"],
            cwd=sdir,
            step="synth",
            progress=progress,
        )
        est, timings["estimate_s"] = est_future.result()
    timings["synth_s"] = syn.seconds
    syn_counts = count_cells(prof.family, read_yosys_stat(sdir / f"{name}_stat.json"))
    advice = fit_advice(prof, net, syn_counts, "yosys, before place-and-route", cost)
    if advice is not None:
        raise DesignTooLargeError(advice["message"])

    say(f"board {prof.name}: nextpnr place and route for {pnr_target_mhz(prof):g} MHz")
    pnr = run_tool(
        pnr_tool, _pnr_args(prof, platform_cls), cwd=sdir, step="pnr", check=False,
        progress=progress,
    )  # fmt: skip
    timings["pnr_s"] = pnr.seconds
    log_path = sdir / f"{name}.tim"
    log = log_path.read_text(errors="replace") if log_path.is_file() else pnr.output
    report_path = sdir / f"{name}_report.json"
    report = (
        json.loads(report_path.read_text())
        if report_path.is_file() and pnr.returncode == 0
        else None
    )
    parsed = parse_nextpnr(log, report)
    if pnr.returncode != 0:
        over = {c: u for c, u in parsed.utilization.items() if u[0] > u[1]}
        if over:
            detail = ", ".join(
                f"{c} {u:,}/{a:,} ({100.0 * u / a:.0f}%)" for c, (u, a) in over.items()
            )
            raise DesignTooLargeError(
                f"design does not fit {prof.device} ({prof.name}): {detail} [nextpnr]"
            )
        raise ToolchainError(
            f"nextpnr failed for {prof.name}: {first_error(log + chr(10) + pnr.output)}"
        )

    say(f"board {prof.name}: packing the bitstream")
    pack = run_tool(
        pack_tool,
        _fill(prof.family.toolchain.pack_args, {"name": name}),
        cwd=sdir,
        step="pack",
        progress=progress,
    )
    timings["pack_s"] = pack.seconds

    fam = prof.family
    result: dict[str, Any] = {
        "estimate": False,
        "tool": pnr_tool,
        "design": f"self-test top: network + ROMs of {_inputs_text(top.selftest, len(x))}"
        " + checker",
        "luts": parsed.used(fam, "luts")
        if parsed.used(fam, "luts") is not None
        else syn_counts["luts"],
        "ffs": parsed.used(fam, "ffs")
        if parsed.used(fam, "ffs") is not None
        else syn_counts["ffs"],
        "carry": syn_counts["carry"],
        "bram": parsed.used(fam, "bram")
        if parsed.used(fam, "bram") is not None
        else syn_counts["bram"],
        "dsp": parsed.used(fam, "dsp")
        if parsed.used(fam, "dsp") is not None
        else syn_counts["dsp"],
        "fmax_mhz": round(parsed.fmax, 2) if parsed.fmax is not None else None,
        "pnr_target_mhz": pnr_target_mhz(prof),
        # the bitstream runs at the board clock: that is the clock it has to meet
        "timing_met": None if parsed.fmax is None else parsed.fmax >= prof.clock_mhz,
        "utilization": {
            c: {"used": u, "available": a} for c, (u, a) in parsed.utilization.items() if u
        },
        "bitstream": f"board/selftest/{fam.toolchain.bitstream.format(name=name)}",
        "selftest": {
            **(
                {"images": len(x), "outputs": top.selftest.n}
                if isinstance(top.selftest, StreamSelfTest)
                else {"vectors": len(x)}
            ),
            "latency": top.selftest.latency,
            "cycles": top.selftest.cycles,
            "leds": {role: f"{res}{num}" for role, (res, num) in prof.leds.items()},
        },
    }
    if result["timing_met"] is False:
        assert parsed.fmax is not None
        say(
            f"board {prof.name}: timing NOT met: Fmax {parsed.fmax:.1f} MHz < {prof.clock_mhz:g} MHz "
            "board clock; the self-test may fail on hardware"
        )
    return result, est
