"""Bit-exact verification of a streaming CNN's hardware against its golden model.

The golden outputs are :meth:`LoweredNetwork.evaluate_layers` (every layer's adder graph run on
numpy over the window vectors), the hardware :func:`nnlcc.hdl.stream.emit_stream_verilog`, the
simulation :mod:`nnlcc.sim.tb_cnn` through :func:`nnlcc.sim.runner.run_cocotb`.

Files written to ``outdir``: ``<name>.v``, ``meta.json`` (ports, layers, ``line_buffer_bits``),
``vectors.npz`` (``pixels`` and ``layer<i>`` in stream order), then ``summary.json``, results
XML and logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError
from nnlcc.hdl.stream import emit_stream_verilog
from nnlcc.ir.lowered import LoweredNetwork

from .runner import SimResult, simulate_design
from .tb_network import SIM_DIR_ENV

__all__ = ["TESTBENCH_MODULE", "verify_stream_network", "write_stream_vectors"]

TESTBENCH_MODULE = "nnlcc.sim.tb_cnn"


def write_stream_vectors(net: LoweredNetwork, x_int: npt.ArrayLike, outdir: Path) -> int:
    """Write ``vectors.npz``: input pixels and every layer's golden outputs, one pixel (or one
    vector per image) a row in stream order; returns the number of images."""
    x = np.asarray(x_int)
    if x.ndim != 2 or x.shape[1] != net.n_inputs:
        raise BadInputError(f"expected images of shape (n, {net.n_inputs}), got {x.shape}")
    if x.shape[0] == 0:
        raise BadInputError("no images to verify with")
    if not np.issubdtype(x.dtype, np.integer):
        raise BadInputError(f"input images must be integers, got {x.dtype}")
    fmt = net.input_fmt
    if x.min() < fmt.lo or x.max() > fmt.hi:
        raise BadInputError(f"input images outside the input format {fmt} [{fmt.lo}, {fmt.hi}]")
    x = x.astype(np.int64)
    c = net.input_shape[0]
    golden = net.evaluate_layers(x)
    # storage layout (batch, H, W, C) row-major is exactly the pixel stream
    arrays = {"pixels": net._stored_input(x).reshape(-1, c)}
    for i, out in enumerate(golden):
        a = np.asarray(out).astype(np.int64)
        arrays[f"layer{i}"] = a.reshape(-1, a.shape[-1])
    np.savez(Path(outdir) / "vectors.npz", **arrays)  # type: ignore[arg-type]
    return int(x.shape[0])


def verify_stream_network(
    net: LoweredNetwork,
    x_int: npt.ArrayLike,
    outdir: Path,
    simulator: str | None = None,
    *,
    name: str = "nnlcc_top",
    verbose: bool = False,
) -> SimResult:
    """Simulate the streaming top of ``net`` on the images ``x_int`` (flat ONNX-order integer
    rows in ``net.input_fmt``) and compare every layer bit-exact with the golden model.

    Raises :class:`~nnlcc.errors.VerificationError` naming the image, pixel and layer of the
    first difference, :class:`~nnlcc.errors.ToolchainError` when no simulator is usable.
    """

    def prepare(out: Path, verilog: Path) -> dict[str, Any]:
        write_stream_vectors(net, x_int, out)
        return emit_stream_verilog(net, verilog, name=name)

    return simulate_design(
        outdir, name, TESTBENCH_MODULE, prepare, SIM_DIR_ENV, simulator=simulator, verbose=verbose
    )
