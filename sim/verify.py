"""Bit-exact verification of a lowered network's hardware against its golden model.

The top-level strategy (:func:`nnlcc.hdl.top.top_for`) says everything that differs between a
vector top and a pixel-streaming top: the Verilog, the stimuli (input words one per clock and
every layer's golden outputs from :meth:`LoweredNetwork.evaluate_layers`, the adder graphs run
on numpy) and the cocotb testbench (:mod:`nnlcc.sim.tb_network` or :mod:`nnlcc.sim.tb_cnn`,
both on the driver core :mod:`nnlcc.sim.tb_core`) that simulates the Verilog and compares
every layer's output, so a difference is reported at the first vector (image, pixel) and the
first layer where it appears.

Files written to ``outdir``: ``<name>.v``, ``meta.json`` (ports, testbench), ``vectors.npz``
(the input words and ``layer<i>`` golden outputs), and after the run ``summary.json``, results
XML and logs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError
from nnlcc.hdl.top import VectorStrategy, top_for
from nnlcc.ir.lowered import LoweredNetwork

from .runner import SIM_DIR_ENV, SimResult, run_cocotb, simulate_design

__all__ = ["rerun", "verify_network", "write_vectors"]


def write_vectors(net: LoweredNetwork, x_int: npt.ArrayLike, outdir: Path) -> int:
    """Write ``vectors.npz`` (the stimuli of ``net``'s top for the inputs ``x_int``: input
    words and every layer's golden outputs); returns the number of inputs (vectors or images)."""
    top = top_for(net)
    arrays = top.stimuli(x_int)
    np.savez(Path(outdir) / "vectors.npz", **arrays)  # type: ignore[arg-type]
    return top.count(arrays)


def verify_network(
    net: LoweredNetwork,
    x_int: npt.ArrayLike,
    outdir: Path,
    simulator: str | None = None,
    *,
    name: str = "nnlcc_top",
    verbose: bool = False,
) -> SimResult:
    """Simulate ``net``'s Verilog on ``x_int`` (flat ONNX-order integer rows in
    ``net.input_fmt``: vectors, or images for a CNN's pixel-streaming top) and compare every
    layer bit-exact with the golden model.

    ``simulator`` is ``"verilator"``, ``"icarus"`` or ``None`` (Verilator, else Icarus).
    Returns the :class:`SimResult` when hardware matches; raises
    :class:`~nnlcc.errors.VerificationError` naming the first differing vector (image and
    pixel) and layer, or :class:`~nnlcc.errors.ToolchainError` when no simulator is usable.
    """
    top = top_for(net)

    def prepare(out: Path, verilog: Path) -> dict[str, Any]:
        write_vectors(net, x_int, out)
        return top.emit(verilog, name, checks=True)

    return simulate_design(
        outdir, name, top.testbench, prepare, SIM_DIR_ENV, simulator=simulator, verbose=verbose
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
        # meta.json names its testbench; directories written before it did held vector tops
        str(meta.get("testbench", VectorStrategy.testbench)),
        outdir,
        simulator=simulator,
        extra_env={SIM_DIR_ENV: str(outdir)},
        verbose=verbose,
    )
