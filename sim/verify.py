"""Bit-exact verification of a lowered network's hardware against its golden model.

The golden outputs come from :meth:`LoweredNetwork.evaluate_layers` (the adder graphs executed
on numpy), the hardware from :func:`nnlcc.hdl.emit_verilog`; a cocotb testbench
(:mod:`nnlcc.sim.tb_network`) simulates the Verilog and compares every layer's output, so a
difference is reported at the first vector and the first layer where it appears.

Files written to ``outdir``: ``<name>.v``, ``meta.json`` (ports), ``vectors.npz`` (``x`` and
``layer<i>`` golden outputs), and after the run ``summary.json``, results XML and logs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError
from nnlcc.hdl import emit_verilog
from nnlcc.hdl.stream import is_streaming
from nnlcc.ir.lowered import LoweredNetwork

from .runner import SimResult, run_cocotb, simulate_design
from .tb_network import SIM_DIR_ENV
from .verify_cnn import verify_stream_network

__all__ = ["TESTBENCH_MODULE", "rerun", "verify_network", "write_vectors"]

TESTBENCH_MODULE = "nnlcc.sim.tb_network"


def write_vectors(net: LoweredNetwork, x_int: npt.ArrayLike, outdir: Path) -> int:
    """Write ``vectors.npz`` (inputs and every layer's golden outputs); returns the count."""
    x = np.asarray(x_int)
    if x.ndim != 2 or x.shape[1] != net.n_inputs:
        raise BadInputError(f"expected input vectors of shape (n, {net.n_inputs}), got {x.shape}")
    if x.shape[0] == 0:
        raise BadInputError("no input vectors to verify with")
    if not np.issubdtype(x.dtype, np.integer):
        raise BadInputError(f"input vectors must be integers, got {x.dtype}")
    fmt = net.input_fmt
    if x.min() < fmt.lo or x.max() > fmt.hi:
        raise BadInputError(f"input vectors outside the input format {fmt} [{fmt.lo}, {fmt.hi}]")
    golden = net.evaluate_layers(x.astype(np.int64))
    arrays = {"x": x.astype(np.int64)}
    for i, out in enumerate(golden):
        # outputs are clamped to formats of at most 62 bits, so int64 holds them
        arrays[f"layer{i}"] = np.asarray(out).astype(np.int64)
    np.savez(Path(outdir) / "vectors.npz", **arrays)  # type: ignore[arg-type]
    return int(x.shape[0])


def verify_network(
    net: LoweredNetwork,
    x_int: npt.ArrayLike,
    outdir: Path,
    simulator: str | None = None,
    *,
    name: str = "nnlcc_top",
    verbose: bool = False,
) -> SimResult:
    """Simulate ``net``'s Verilog on ``x_int`` (integers in ``net.input_fmt``) and compare
    every layer bit-exact with the golden model.

    ``simulator`` is ``"verilator"``, ``"icarus"`` or ``None`` (Verilator, else Icarus).
    A CNN (image input) is checked on its pixel-streaming top by
    :func:`~nnlcc.sim.verify_cnn.verify_stream_network` (image, pixel and layer of a
    difference).
    Returns the :class:`SimResult` when hardware matches; raises
    :class:`~nnlcc.errors.VerificationError` naming the first differing vector and layer, or
    :class:`~nnlcc.errors.ToolchainError` when no simulator is usable.
    """
    if is_streaming(net):  # an image input: the pixel-streaming top and its testbench
        return verify_stream_network(net, x_int, outdir, simulator, name=name, verbose=verbose)

    def prepare(out: Path, verilog: Path) -> dict[str, Any]:
        write_vectors(net, x_int, out)
        return emit_verilog(net, verilog, name=name)

    return simulate_design(
        outdir, name, TESTBENCH_MODULE, prepare, SIM_DIR_ENV, simulator=simulator, verbose=verbose
    )


def rerun(outdir: Path, simulator: str | None = None, *, verbose: bool = False) -> SimResult:
    """Repeat the bit-exact check in a directory :func:`verify_network` (``nnlcc compile``)
    wrote, with its Verilog, ``meta.json`` and ``vectors.npz``; an unchanged design reuses its
    simulator build."""
    outdir = Path(outdir).resolve()
    meta_path = outdir / "meta.json"
    missing = [f for f in ("meta.json", "vectors.npz") if not (outdir / f).is_file()]
    if missing:
        raise BadInputError(
            f"{outdir} has no {' or '.join(missing)}: not a directory written by nnlcc compile"
        )
    meta = json.loads(meta_path.read_text())
    name = str(meta["toplevel"])
    verilog = outdir / f"{name}.v"
    if not verilog.is_file():
        raise BadInputError(f"{outdir} has no {verilog.name}")
    return run_cocotb(
        verilog,
        name,
        str(meta.get("testbench", TESTBENCH_MODULE)),
        outdir,
        simulator=simulator,
        extra_env={SIM_DIR_ENV: str(outdir)},
        verbose=verbose,
    )
