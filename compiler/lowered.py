"""A network lowered to adder graphs: the executable golden model that hardware must match."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nnlcc.adder_graph import AdderGraph
from nnlcc.fixed_point import FixedFormat, IntArray


@dataclass
class LoweredLayer:
    """One layer's adder graph: inputs are the previous layer's integers (format ``in_fmt``),
    outputs are this layer's requantized integers (format ``out_fmt``, clamped)."""

    name: str
    graph: AdderGraph
    in_fmt: FixedFormat
    out_fmt: FixedFormat


@dataclass
class LoweredNetwork:
    """Layers chained in order; the whole network consumes one input vector per clock."""

    name: str
    input_fmt: FixedFormat
    layers: list[LoweredLayer]

    @property
    def n_inputs(self) -> int:
        return self.layers[0].graph.n_inputs

    @property
    def n_outputs(self) -> int:
        return len(self.layers[-1].graph.outputs)

    @property
    def output_fmt(self) -> FixedFormat:
        return self.layers[-1].out_fmt

    @property
    def latency(self) -> int:
        """Clock cycles from an input vector to its output vector."""
        return sum(layer.graph.latency for layer in self.layers)

    def evaluate_layers(self, x_int: npt.ArrayLike) -> list[IntArray]:
        """Integer outputs of every layer for integer inputs of shape (batch, n_inputs)."""
        h: IntArray = np.asarray(x_int, dtype=np.int64)
        outs: list[IntArray] = []
        for layer in self.layers:
            h = layer.graph.evaluate(h)
            outs.append(h)
        return outs

    def evaluate(self, x_int: npt.ArrayLike) -> IntArray:
        """The golden model: network output integers for integer inputs."""
        return self.evaluate_layers(x_int)[-1]

    def quantize_input(self, x: npt.ArrayLike) -> npt.NDArray[np.int64]:
        return self.input_fmt.quantize(np.asarray(x, dtype=np.float64).reshape(len(x), -1))
