"""The top-level strategy: how a lowered network becomes one hardware top, and everything that
follows from that choice.

There are two tops. A network with a vector input gets :class:`VectorStrategy`
(:class:`~nnlcc.hdl.network.NetworkTop`: one input vector per clock); a network with an image
input ``(C, H, W)`` gets :class:`StreamStrategy` (:class:`~nnlcc.hdl.stream.StreamTop`: one
pixel per clock, all channels in parallel). :func:`top_class` / :func:`top_for` are the only
place that tells the two apart; the driver, the simulation and the board flow ask the strategy
what to do and never look at the network's shape themselves.

What a strategy answers:

* :meth:`TopStrategy.emit`: the Verilog and its port metadata (``meta.json``);
* :meth:`TopStrategy.stimuli`: the arrays of ``vectors.npz`` (input words in the order the
  testbench drives them, one per clock, and every layer's golden outputs in the order the layer
  emits them), :attr:`~TopStrategy.testbench` the cocotb module that drives and checks them, and
  :attr:`~TopStrategy.summary_facts` what the verification report takes from its summary;
* :attr:`~TopStrategy.selftest_refusal`: ``None`` when a board self-test exists, else the one
  line that explains why not; :attr:`~TopStrategy.estimate_design` and
  :attr:`~TopStrategy.estimate_note`: what the resource estimate synthesizes and says;
* :meth:`TopStrategy.layer_facts`, :attr:`~TopStrategy.throughput`,
  :meth:`TopStrategy.measured_latency`: report facts.

The strategy carries data (module names, arrays, flags, notes) only: :mod:`nnlcc.hdl` does not
import the simulation or the boards, they take the strategy's answers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from amaranth.back import verilog
from amaranth.lib import wiring

from nnlcc.errors import BadInputError
from nnlcc.ir.cell import LoweredRecurrent
from nnlcc.ir.lowered import LoweredNetwork

from .network import NetworkTop
from .recurrent import SequenceTop
from .stream import StreamPlan, StreamTop

__all__ = [
    "SequenceStrategy",
    "StreamStrategy",
    "TopStrategy",
    "VectorStrategy",
    "emit_verilog",
    "top_class",
    "top_for",
]

IntArray = npt.NDArray[np.int64]
Top = NetworkTop | StreamTop | SequenceTop
"""The Amaranth tops a strategy builds."""


def _write(top: wiring.Component, path: Path | str, name: str) -> None:
    text = verilog.convert(top, name=name, emit_src=False)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


class TopStrategy(ABC):
    """One way of turning a :class:`LoweredNetwork` into a top, with everything that depends on
    it (see the module docstring)."""

    kind: ClassVar[str]
    """``"vector"`` or ``"stream"``, for messages and tests."""
    testbench: ClassVar[str]
    """The cocotb module (``nnlcc.sim.tb_*``) that drives :meth:`stimuli` and checks them."""
    input_key: ClassVar[str]
    """The ``vectors.npz`` array the testbench drives, one row per clock."""
    summary_facts: ClassVar[tuple[str, ...]]
    """Keys of the testbench summary that the verification report repeats."""
    selftest_refusal: ClassVar[str | None]
    """``None`` when a board self-test (ROMs, network, checker) exists for this top; else why
    not, as the one line a ``--build`` request is refused with."""
    estimate_design: ClassVar[str]
    """What the yosys resource estimate synthesizes, as the report says it."""
    estimate_note: ClassVar[str | None]
    """A note the resource estimate carries (``None``: none)."""
    _inputs: ClassVar[str]  # what the inputs are called in messages

    def __init__(self, net: LoweredNetwork) -> None:
        self.net = net

    # ---- hardware ------------------------------------------------------------------------
    @abstractmethod
    def component(self, checks: bool = False) -> Top:
        """The Amaranth top (``x``/``valid_in`` in, ``y``/``valid_out`` out, debug ports);
        ``checks``: with the top's simulation assertions (a streaming top's FIFOs never over-
        or underflow), for the simulators, not for synthesis."""

    def emit(
        self, path: Path | str, name: str = "nnlcc_top", *, checks: bool = False
    ) -> dict[str, Any]:
        """Write the top as one Verilog module ``name`` to ``path``; return its port metadata
        (with the testbench that checks it and the ``vectors.npz`` array it drives).
        ``checks``: with the simulation assertions (:meth:`component`), as immediate
        SystemVerilog ``assert`` statements."""
        top = self.component(checks)
        _write(top, path, name)
        return {**top.port_metadata(name), **self.testbench_meta(), **self._meta(top)}

    def testbench_meta(self) -> dict[str, str]:
        """What ``meta.json`` tells the simulation: the testbench module and the array of
        ``vectors.npz`` it drives (for Verilog written by another writer, too)."""
        return {"testbench": self.testbench, "inputs": self.input_key}

    def _meta(self, top: Top) -> dict[str, Any]:
        """Port metadata beyond the component's own."""
        return {}

    # ---- simulation ----------------------------------------------------------------------
    def check_inputs(self, x_int: npt.ArrayLike) -> IntArray:
        """``x_int`` as ``(n, n_inputs)`` int64 rows (ONNX order), or :class:`BadInputError`."""
        net, what = self.net, self._inputs
        x = np.asarray(x_int)
        if x.ndim != 2 or x.shape[1] != net.n_inputs:
            raise BadInputError(f"expected {what} of shape (n, {net.n_inputs}), got {x.shape}")
        if x.shape[0] == 0:
            raise BadInputError(f"no {what} to verify with")
        if not np.issubdtype(x.dtype, np.integer):
            raise BadInputError(f"{what} must be integers, got {x.dtype}")
        fmt = net.input_fmt
        if x.min() < fmt.lo or x.max() > fmt.hi:
            raise BadInputError(f"{what} outside the input format {fmt} [{fmt.lo}, {fmt.hi}]")
        return x.astype(np.int64)

    def stimuli(self, x_int: npt.ArrayLike) -> dict[str, IntArray]:
        """The arrays of ``vectors.npz`` for the inputs ``x_int`` (integers in the input
        format, one flat ONNX-order row per input): :attr:`input_key`, the words driven one per
        clock, and ``layer<i>``, every layer's golden outputs one row per valid output."""
        x = self.check_inputs(x_int)
        arrays = {self.input_key: self.drive_order(x)}
        for i, out in enumerate(self.net.evaluate_layers(x)):
            # outputs are clamped to formats of at most 62 bits, so int64 holds them
            a = np.asarray(out).astype(np.int64)
            arrays[f"layer{i}"] = a.reshape(-1, a.shape[-1])
        return arrays

    def count(self, stimuli: dict[str, IntArray]) -> int:
        """How many network inputs (vectors or images) ``stimuli`` holds."""
        return len(stimuli[self.input_key])

    @abstractmethod
    def drive_order(self, x: IntArray) -> IntArray:
        """The input words the testbench drives, one row per clock."""

    def measured_latency(self, summary: dict[str, Any]) -> int | None:
        """End-to-end latency the simulation measured, where the graphs' sum is not it."""
        return None

    # ---- report --------------------------------------------------------------------------
    @property
    def throughput(self) -> str | None:
        """The top's rate in words, where the report states one."""
        return None

    @property
    def step_clocks(self) -> int | None:
        """Clocks per time step of a recurrent top (the report's steps per second); ``None``
        for the others."""
        return None

    def layer_facts(self) -> dict[str, dict[str, Any]]:
        """Report facts of the hardware per layer (window geometry, line buffers)."""
        return {}


class VectorStrategy(TopStrategy):
    """An MLP: :class:`NetworkTop`, one input vector per clock, fixed latency."""

    kind = "vector"
    testbench = "nnlcc.sim.tb_network"
    input_key = "x"
    summary_facts = ()
    selftest_refusal = None
    estimate_design = "network alone (no I/O, no self-test)"
    estimate_note = None
    _inputs = "input vectors"

    def component(self, checks: bool = False) -> NetworkTop:
        return NetworkTop(self.net)  # no FIFOs: nothing to assert

    def drive_order(self, x: IntArray) -> IntArray:
        return x


class StreamStrategy(TopStrategy):
    """A CNN: :class:`StreamTop`, one pixel (all channels) per clock in raster order, frames
    back to back; its latency is measured in simulation (line buffers wait for rows)."""

    kind = "stream"
    testbench = "nnlcc.sim.tb_cnn"
    input_key = "pixels"
    summary_facts = ("pixels", "clocks_to_last_output")
    selftest_refusal = None  # nnlcc.boards.stream_selftest: test images streamed from a ROM
    estimate_design = "streaming network alone (no I/O, no self-test)"
    estimate_note = None
    _inputs = "input images"

    def component(self, checks: bool = False) -> StreamTop:
        return StreamTop(self.net, assertions=checks)

    def _meta(self, top: Top) -> dict[str, Any]:
        assert isinstance(top, StreamTop)
        return {
            "line_buffer_bits": top.plan.line_buffer_bits(),
            "frame_pixels": self.frame_pixels,
        }

    @property
    def frame_pixels(self) -> int:
        _, h, w = self.net.input_shape
        return h * w

    def drive_order(self, x: IntArray) -> IntArray:
        # storage layout (batch, H, W, C) row-major is exactly the pixel stream
        c = self.net.input_shape[0]
        pixels: IntArray = np.asarray(self.net._stored_input(x), dtype=np.int64).reshape(-1, c)
        return pixels

    def count(self, stimuli: dict[str, IntArray]) -> int:
        return len(stimuli[self.input_key]) // self.frame_pixels

    def measured_latency(self, summary: dict[str, Any]) -> int | None:
        if "clocks_to_last_output" not in summary:  # not simulated
            return None
        return int(summary["clocks_to_last_output"]) - int(summary["pixels"])

    @property
    def throughput(self) -> str:
        c, h, w = self.net.input_shape
        return f"one pixel per clock ({h * w} clocks per {c}x{h}x{w} image)"

    def layer_facts(self) -> dict[str, dict[str, Any]]:
        """Per window layer: ``kernel``, ``stride``, ``line_buffer_bits`` (the delay line
        actually built, see :meth:`StreamPlan.line_buffer_bits`) and ``window_delay`` (ticks
        from a frame's first pixel to its first window)."""
        plan = StreamPlan(self.net)
        bits = plan.line_buffer_bits()
        rams = plan.line_rams()
        facts: dict[str, dict[str, Any]] = {}
        for i, geom in plan.windows.items():
            name = self.net.layers[i].name
            facts[name] = {
                "kernel": list(geom.window.kernel),
                "stride": list(geom.window.stride),
                "line_buffer_bits": bits[name],
                "window_delay": geom.delay,
            }
            if name in rams:  # the part of the delay line in memories (line_rams)
                facts[name]["line_buffer_ram"] = [list(r) for r in rams[name]]
        return facts


class SequenceStrategy(TopStrategy):
    """A recurrent network: :class:`SequenceTop`, one time step in flight per accepted word
    (ready/valid), every step's state checked; its rate is a step per
    :attr:`~nnlcc.hdl.recurrent.RecurrentCore.step_clocks` clocks."""

    kind = "sequence"
    testbench = "nnlcc.sim.tb_sequence"
    input_key = "steps"
    summary_facts = ("steps", "clocks_to_last_output", "step_clocks_measured", "sequence_latency")
    selftest_refusal = (
        "nnlcc has no board self-test for a recurrent network yet: compile without --build"
        " (the design is verified in simulation, and --synth estimates its resources)"
    )
    estimate_design = "sequence network alone (no I/O, no self-test)"
    estimate_note = None
    _inputs = "input sequences"

    def component(self, checks: bool = False) -> SequenceTop:
        return SequenceTop(self.net)  # no FIFOs: nothing for ``checks`` to assert

    @property
    def steps(self) -> int:
        return int(self.net.input_shape[0])

    def drive_order(self, x: IntArray) -> IntArray:
        return x.reshape(-1, self.net.input_shape[1])

    def stimuli(self, x_int: npt.ArrayLike) -> dict[str, IntArray]:
        """The steps, then the golden rows of the top's checked ports: the recurrent layer's
        state after every step (``h``, an LSTM's ``c``), then each later layer's outputs."""
        x = self.check_inputs(x_int)
        first = self.net.layers[0]
        assert isinstance(first, LoweredRecurrent)
        _, h, c = first.run(x)
        rows: list[IntArray] = [np.asarray(h, dtype=np.int64).reshape(-1, h.shape[-1])]
        if first.plan is not None and first.plan.cell == "lstm":
            rows.append(np.asarray(c, dtype=np.int64).reshape(-1, c.shape[-1]))
        rows += [np.asarray(y, dtype=np.int64) for y in self.net.evaluate_layers(x)[1:]]
        arrays = {self.input_key: self.drive_order(x)}
        arrays.update({f"layer{i}": r.reshape(len(r), -1) for i, r in enumerate(rows)})
        return arrays

    def count(self, stimuli: dict[str, IntArray]) -> int:
        return len(stimuli[self.input_key]) // self.steps

    @property
    def step_clocks(self) -> int:
        first = self.net.layers[0]
        assert isinstance(first, LoweredRecurrent)
        return first.step_latency + 2

    def measured_latency(self, summary: dict[str, Any]) -> int | None:
        lat = summary.get("sequence_latency")
        return None if lat is None else int(lat)

    @property
    def throughput(self) -> str:
        p, t = self.step_clocks, self.steps
        return (
            f"one time step per {p} clocks (the registered recurrent path h -> R h -> cell"
            f" -> h), one {t}-step sequence per {p * t} clocks"
        )


def top_class(input_shape: tuple[int, ...]) -> type[TopStrategy]:
    """The strategy for a network whose input has ``input_shape`` (``(n,)``, a sequence
    ``(T, n)`` or an image ``(C, H, W)``): usable before lowering, e.g. to refuse a ``--build``
    before minutes of compiling."""
    if len(input_shape) == 2:
        return SequenceStrategy
    return StreamStrategy if len(input_shape) == 3 else VectorStrategy


def top_for(net: LoweredNetwork) -> TopStrategy:
    """The top-level strategy of ``net``: the one place the vector/stream choice is made."""
    return top_class(tuple(net.input_shape))(net)


def emit_verilog(net: LoweredNetwork, path: Path | str, name: str = "nnlcc_top") -> dict[str, Any]:
    """Write ``net``'s top (:func:`top_for`) as one Verilog module ``name`` to ``path``; return
    its port metadata.

    Ports: ``clk``, ``rst`` (synchronous, active high; only the valid chain is reset),
    ``x``/``valid_in``, ``y``/``valid_out`` and per layer ``l<i>_y``/``l<i>_valid``.
    """
    return top_for(net).emit(path, name)
