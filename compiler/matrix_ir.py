"""The matrix IR: a network as a sequence of matrix layers with their fixed-point formats.

A frontend produces a :class:`MatrixGraph` of real-valued layers; passes fill in formats
(:mod:`nnlcc.quantize`) and a :class:`MatrixCode` per layer (CSD, LCC, ...); lowering turns
each layer into an :class:`~nnlcc.adder_graph.AdderGraph` that includes requantization.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from nnlcc.adder_graph import AdderGraph
from nnlcc.fixed_point import FixedFormat

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Term:
    """One output row of a lowered matrix: ``(-1 if neg else 1) * v[node] * 2**exp``.

    ``node`` is ``None`` for a row that is identically zero.  ``exp`` is relative to the
    integer inputs of the graph (so it excludes the input format's fractional bits).
    """

    node: int | None
    exp: int
    neg: bool = False


class MatrixCode(Protocol):
    """What a matrix pass (CSD, LCC, ...) attaches to a layer."""

    name: str

    def implemented(self) -> FloatArray:
        """The real matrix this code computes exactly (same shape as the layer's weight)."""
        ...

    def lower(self, graph: AdderGraph, inputs: list[int]) -> list[Term]:
        """Append this code's adders to ``graph`` reading the input nodes ``inputs``."""
        ...

    def summary(self) -> dict[str, Any]:
        """Pass-specific facts for the report (e.g. reached SQNR, factors)."""
        ...


@dataclass
class DenseLayer:
    """``y = act(W @ x + b)`` with ``W`` of shape (rows=outputs, cols=inputs)."""

    name: str
    weight: FloatArray
    bias: FloatArray
    relu: bool = False
    kind: str = "dense"
    in_fmt: FixedFormat | None = None
    out_fmt: FixedFormat | None = None
    code: MatrixCode | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        r, c = self.weight.shape
        return int(r), int(c)

    def forward_float(self, x: FloatArray) -> FloatArray:
        y = x @ self.weight.T + self.bias
        return np.maximum(y, 0.0) if self.relu else y

    def forward_implemented(self, x: FloatArray) -> FloatArray:
        """Float forward pass with the matrix the code implements (no activation rounding)."""
        w = self.code.implemented() if self.code is not None else self.weight
        y = x @ w.T + self.bias
        return np.maximum(y, 0.0) if self.relu else y


@dataclass
class MatrixGraph:
    """A feed-forward network: ``layers`` applied in order to a flat input vector."""

    name: str
    input_name: str
    input_size: int
    output_name: str
    layers: list[DenseLayer]
    input_fmt: FixedFormat | None = None
    source: str = ""

    def forward_float(self, x: FloatArray) -> FloatArray:
        """Reference float inference, batch-first: (batch, input_size) -> (batch, outputs)."""
        h = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        for layer in self.layers:
            h = layer.forward_float(h)
        return h

    def activations_float(self, x: FloatArray) -> list[FloatArray]:
        """Inputs of every layer followed by the network output."""
        acts = [np.asarray(x, dtype=np.float64).reshape(len(x), -1)]
        for layer in self.layers:
            acts.append(layer.forward_float(acts[-1]))
        return acts

    @property
    def output_size(self) -> int:
        return self.layers[-1].shape[0] if self.layers else self.input_size

    def verify(self) -> None:
        """Check shapes chain and weights are finite (raises AssertionError on an IR bug)."""
        n = self.input_size
        for layer in self.layers:
            rows, cols = layer.shape
            assert cols == n, f"{layer.name}: expects {cols} inputs, previous layer gives {n}"
            assert layer.bias.shape == (rows,), f"{layer.name}: bias shape {layer.bias.shape}"
            assert np.all(np.isfinite(layer.weight)), f"{layer.name}: non-finite weights"
            n = rows

    def to_text(self) -> str:
        """Printable summary of the IR (used by golden tests)."""
        lines = [
            f"matrix_graph {self.name} input={self.input_name}[{self.input_size}]"
            f" fmt={self.input_fmt}"
        ]
        for layer in self.layers:
            rows, cols = layer.shape
            code = layer.code.name if layer.code is not None else "-"
            lines.append(
                f"  {layer.kind} {layer.name} {rows}x{cols} relu={int(layer.relu)}"
                f" in={layer.in_fmt} out={layer.out_fmt} code={code}"
            )
        lines.append(f"  output {self.output_name}[{self.output_size}]")
        return "\n".join(lines) + "\n"
