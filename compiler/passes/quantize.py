"""The ``quantize`` pass: choose every activation's fixed-point format from calibration data,
except where an imported quantized model fixes it (:mod:`nnlcc.ir.imported`): a quantizer's
format is kept, and an imported layer without one keeps its exact output format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nnlcc.errors import PassOptionError
from nnlcc.ir.fixed_point import FixedFormat, choose_format
from nnlcc.ir.imported import ImportedQuant, imported_ints
from nnlcc.ir.matrix import (
    AddLayer,
    FlattenLayer,
    FloatArray,
    Layer,
    MatrixGraph,
    MatrixLayer,
    PoolLayer,
)
from nnlcc.ir.recurrent import RecurrentLayer, choose_formats
from nnlcc.ir.rescale import exact_format
from nnlcc.ir.truncate import InputPower
from nnlcc.passes.base import Pass, PassContext, PassKind
from nnlcc.passes.runner import layer_pass

#: Accepted ``headroom`` range: beyond it every value saturates or the formats are absurd.
HEADROOM = (2.0**-16, 2.0**16)


@dataclass(frozen=True)
class Quantize(Pass):
    """Input and activation formats: ``input_bits`` for the network input, ``act_bits`` for
    each layer's output; the integer bits cover the largest calibration magnitude times
    ``headroom`` (saturation handles the rest)."""

    name: ClassVar[str] = "quantize"
    kind: ClassVar[PassKind] = PassKind.FORMAT
    per_layer: ClassVar[bool] = True
    global_options: ClassVar[frozenset[str]] = frozenset({"input_bits"})
    input_bits: int = 8
    act_bits: int = 8
    headroom: float = 1.0

    def __post_init__(self) -> None:
        for key in ("input_bits", "act_bits"):
            if not 2 <= getattr(self, key) <= 32:
                raise PassOptionError(f"quantize: {key} must be in 2..32")
        if not HEADROOM[0] <= self.headroom <= HEADROOM[1]:  # NaN fails too
            raise PassOptionError(
                f"quantize: headroom must be in [2^-16, 2^16] (1.0: the calibration peak),"
                f" not {self.headroom}"
            )

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        x_min, x_peak, peaks, squares = graph.activation_stats(ctx.calibration)
        square_of = {graph.input_name: squares[0]}
        square_of.update({la.name: sq for la, sq in zip(graph.layers, squares[1:], strict=True)})
        graph.input_fmt = choose_format(x_peak * self.headroom, self.input_bits, x_min < 0)
        facts = [la.notes.get(ImportedQuant) for la in graph.layers]
        quantized_input = next((f.input for f in facts if f and f.input), None)
        if quantized_input is not None:
            graph.input_fmt = quantized_input.fmt
        fmts: dict[str, FixedFormat] = {graph.input_name: graph.input_fmt}
        tensors = _recurrent_inputs(graph, ctx.calibration)
        for i, (layer, peak) in enumerate(zip(graph.layers, peaks, strict=True)):
            ins = [fmts[t] for t in graph.inputs_of(i)]
            layer.in_fmt = ins[0]
            if isinstance(layer, RecurrentLayer):  # its gate matrices' and cell's formats too
                q = layer_pass(self, layer) or self
                powers = choose_formats(
                    layer, tensors[graph.inputs_of(i)[0]], q.act_bits, q.headroom
                )
                for m in layer.matrices():
                    m.notes.put(InputPower(float(f"{powers[m.name]:.6g}")))
                assert layer.out_fmt is not None
                fmts[layer.name] = layer.out_fmt
                continue
            if isinstance(layer, MatrixLayer):  # the truncation budget's input power
                power = float(f"{square_of[graph.inputs_of(i)[0]]:.6g}")
                layer.notes.put(InputPower(power))
            if isinstance(layer, FlattenLayer) or (
                isinstance(layer, PoolLayer) and layer.op == "max"
            ):
                layer.out_fmt = ins[0]  # no arithmetic: max and reshape keep the format
            else:
                if isinstance(layer, AddLayer):
                    layer.in_fmt_b = ins[1]
                signed = not layer.relu and (not isinstance(layer, PoolLayer) or ins[0].signed)
                q = layer_pass(self, layer) or self  # per-layer act_bits/headroom (config)
                layer.out_fmt = imported_format(layer, ins[0]) or choose_format(
                    peak * q.headroom, q.act_bits, signed
                )
            fmts[layer.name] = layer.out_fmt


def imported_format(layer: Layer, in_fmt: FixedFormat) -> FixedFormat | None:
    """The output format an imported model fixes: its quantizer's, or (imported integer
    weights, no quantizer) the exact format of the layer's output; None: calibrate."""
    facts = layer.notes.get(ImportedQuant)
    if facts is None:
        return None
    if facts.output is not None:
        return facts.output.fmt
    ints = imported_ints(layer) if isinstance(layer, MatrixLayer) else None
    if ints is None or not isinstance(layer, MatrixLayer):
        return None
    return exact_format(ints[0], ints[1], layer.bias, in_fmt, facts.gain, layer.relu)


def _recurrent_inputs(graph: MatrixGraph, x: FloatArray) -> dict[str, FloatArray]:
    """The calibration tensors (stored layout) recurrent layers read, by name: what their
    internal formats are chosen from (empty without recurrent layers)."""
    wanted = {
        graph.inputs_of(i)[0]
        for i, layer in enumerate(graph.layers)
        if isinstance(layer, RecurrentLayer)
    }
    if not wanted:
        return {}
    acts = graph.activations_float(x)
    names = [graph.input_name, *(layer.name for layer in graph.layers)]
    return {n: a for n, a in zip(names, acts, strict=True) if n in wanted}
