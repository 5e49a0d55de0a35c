"""A network lowered to adder graphs: the executable golden model that hardware must match.

Every lowered layer is one :class:`~nnlcc.ir.adder_graph.AdderGraph` (requantization included)
applied to a vector:

* ``dense``: the layer input vector;
* ``conv`` and ``pool``: the window vector of every output pixel (order and padding in
  :mod:`nnlcc.ir.window`; padding reads 0, or the input format's minimum for max pools), so the
  output pixel ``(oy, ox)`` is ``graph(window(oy, ox))`` — what a line buffer feeding the
  graph's pipeline computes;
* ``add``: the concatenation ``[a; b]`` of the two input pixels (or vectors);
* ``flatten``: the whole image in stream order, through an identity graph.

Images are stored channels-last ``(batch, H, W, C)``; the network input and output at the
boundary are flat ONNX-order rows (see :mod:`nnlcc.ir.matrix`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.cost import Cost, estimate
from nnlcc.ir.family import Family
from nnlcc.ir.fixed_point import FixedFormat, IntArray
from nnlcc.ir.imported import ActQuant
from nnlcc.ir.matrix import Term
from nnlcc.ir.window import Window

Shape = tuple[int, ...]

# Values per call of an adder graph: its evaluation keeps every node's column alive, so
# rows per call = this / nodes (about 256 MB of int64 at most).
_CHUNK_VALUES = 1 << 25


@dataclass(frozen=True)
class Accumulators:
    """Where a matrix layer's products are in its graph, before requantization: output row
    ``r`` is ``±(v[terms[r].node] + comp[r]) * 2**terms[r].exp`` in units of the input LSB
    (:class:`~nnlcc.ir.matrix.Term`; ``comp``: the truncation's mean-error compensation,
    which the requantization constant adds).  Without truncation it is exactly the matrix
    the code implements times the input; with it, the design's own integer map."""

    terms: tuple[Term, ...]
    comp: tuple[int, ...]

    def values(self, graph: AdderGraph, x: IntArray) -> npt.NDArray[np.float64]:
        """The accumulated products ``(batch, rows)`` of graph inputs ``x``, in input LSBs."""
        nodes = [t.node for t in self.terms if t.node is not None]
        got = graph.evaluate(x, nodes).astype(np.float64) if nodes else None
        out = np.zeros((len(x), len(self.terms)))
        k = 0
        for r, (t, c) in enumerate(zip(self.terms, self.comp, strict=True)):
            if t.node is None:
                continue
            assert got is not None
            out[:, r] = (-1.0 if t.neg else 1.0) * (got[:, k] + c) * 2.0**t.exp
            k += 1
        return out


@dataclass
class LoweredLayer:
    """One layer's adder graph: inputs are integers of format ``in_fmt`` (``in_fmt_b`` for the
    second half of an ``add``), outputs this layer's requantized integers (format
    ``out_fmt``, clamped).  ``inputs`` names the tensors read (empty: the previous layer),
    ``window``/``image`` the geometry of conv and pool layers (input image ``(C, H, W)``; for an
    image ``add`` its shape), ``op`` is ``max`` or ``avg`` for pools."""

    name: str
    graph: AdderGraph
    in_fmt: FixedFormat
    out_fmt: FixedFormat
    kind: str = "dense"
    inputs: tuple[str, ...] = ()
    window: Window | None = None
    image: Shape = ()
    in_fmt_b: FixedFormat | None = None
    op: str = ""
    #: the truncation a matrix layer's partial sums got (``lsb``, ``sqnr_db``, ``target_db``)
    truncation: dict[str, float] | None = None
    #: a matrix layer's products before requantization (None: not a matrix layer)
    accumulators: Accumulators | None = None

    @property
    def out_shape(self) -> Shape:
        if self.window is not None:
            ho, wo = self.window.out_hw(self.image[1], self.image[2])
            return (len(self.graph.outputs), ho, wo)
        if self.kind == "add" and self.image:
            return self.image
        return (len(self.graph.outputs),)

    def costs(self, family: Family) -> dict[str, Cost]:
        """The cost model's estimate of the layer's hardware on ``family``, by the name of each
        part (one part, the layer's graph; a recurrent layer has three, see
        :class:`nnlcc.ir.cell.LoweredRecurrent`)."""
        return {self.name: estimate(self.graph, family)}

    @property
    def pad_value(self) -> int:
        """The integer padding reads (max pools: the format's minimum; otherwise zero)."""
        return self.in_fmt.lo if self.op == "max" else 0

    def graph_inputs(self, x: IntArray) -> IntArray:
        """The rows a dense or window layer's graph reads for layer input ``x`` (storage
        layout): the input vectors, or every output pixel's window vector."""
        if self.window is None:
            return x.reshape(len(x), -1)
        win = self.window.windows(x, fill=self.pad_value)
        return cast(IntArray, win.reshape(-1, self.graph.n_inputs))

    def evaluate(self, *xs: IntArray) -> IntArray:
        """Integer outputs in storage layout for integer inputs in storage layout."""
        g = self.graph
        if self.window is not None:
            x = xs[0]
            b = len(x)
            ho, wo = self.window.out_hw(x.shape[1], x.shape[2])
            rows = max(1, _CHUNK_VALUES // max(len(g.nodes), 1))
            parts = []
            for s in range(b):  # one image's windows at a time, in chunks of rows
                win = self.graph_inputs(x[s : s + 1])
                parts += [g.evaluate(win[r : r + rows]) for r in range(0, len(win), rows)]
            y = np.concatenate(parts) if parts else np.zeros((0, len(g.outputs)), np.int64)
            out = cast(IntArray, y.reshape(b, ho, wo, len(g.outputs)))
            return out
        if self.kind == "add":
            a, bb = xs
            c = a.shape[-1]
            y = g.evaluate(np.concatenate([a.reshape(-1, c), bb.reshape(-1, c)], axis=1))
            return y.reshape(a.shape)
        x = xs[0].reshape(len(xs[0]), -1)
        return g.evaluate(x)


@dataclass
class LoweredNetwork:
    """Layers in topological order; a chain of dense layers consumes one input vector per
    clock.  ``input_shape`` is the network input's shape (``(n,)`` or ``(C, H, W)``).

    An imported quantized model fixes the boundary: ``input_quant`` quantizes the inputs as
    the model does (its rounding, zero point and float32 arithmetic), and ``output_gain`` is
    the non-power-of-two part of its output quantizer's scale (see :mod:`nnlcc.ir.imported`)."""

    name: str
    input_fmt: FixedFormat
    layers: list[LoweredLayer]
    input_shape: Shape = ()
    input_name: str = "input"
    input_quant: ActQuant | None = None
    output_gain: float = 1.0

    @property
    def n_inputs(self) -> int:
        if self.input_shape:
            return math.prod(self.input_shape)
        return self.layers[0].graph.n_inputs

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].out_shape

    @property
    def n_outputs(self) -> int:
        return math.prod(self.output_shape)

    @property
    def output_fmt(self) -> FixedFormat:
        return self.layers[-1].out_fmt

    @property
    def latency(self) -> int:
        """Clock cycles from an input vector to its output vector (a chain of dense layers)."""
        return sum(layer.graph.latency for layer in self.layers)

    def inputs_of(self, index: int) -> tuple[str, ...]:
        layer = self.layers[index]
        if layer.inputs:
            return layer.inputs
        return (self.layers[index - 1].name if index else self.input_name,)

    def _stored_input(self, x_int: npt.ArrayLike) -> IntArray:
        x: IntArray = np.asarray(x_int, dtype=np.int64)
        if len(self.input_shape) == 3:
            c, h, w = self.input_shape
            x = cast(
                IntArray, np.ascontiguousarray(x.reshape(len(x), c, h, w).transpose(0, 2, 3, 1))
            )
        return x

    def _external_output(self, y: IntArray) -> IntArray:
        last = self.layers[-1]
        shape = last.image if last.kind == "flatten" else last.out_shape
        if len(shape) == 3:
            c, h, w = shape
            y = cast(IntArray, y.reshape(len(y), h, w, c).transpose(0, 3, 1, 2))
        out = cast(IntArray, np.ascontiguousarray(y).reshape(len(y), -1))
        return out

    def _run(self, x_int: npt.ArrayLike, keep: bool) -> list[IntArray]:
        env: dict[str, IntArray] = {self.input_name: self._stored_input(x_int)}
        last: dict[str, int] = {}
        for i in range(len(self.layers)):
            for t in self.inputs_of(i):
                last[t] = i
        outs: list[IntArray] = []
        for i, layer in enumerate(self.layers):
            names = self.inputs_of(i)
            h = layer.evaluate(*(env[t] for t in names))
            env[layer.name] = h
            if keep:
                outs.append(h)
            else:
                for t in set(names):
                    if last.get(t) == i:
                        del env[t]
                outs = [h]
        return outs

    def layer_inputs(self, x_int: npt.ArrayLike) -> list[IntArray]:
        """The (first) input of every layer, in storage layout, for flat network inputs."""
        outs = self._run(x_int, keep=True)
        env = {self.input_name: self._stored_input(x_int)}
        env.update((layer.name, h) for layer, h in zip(self.layers, outs, strict=True))
        return [env[self.inputs_of(i)[0]] for i in range(len(self.layers))]

    def evaluate_layers(self, x_int: npt.ArrayLike) -> list[IntArray]:
        """Integer outputs of every layer (storage layout) for flat integer inputs
        ``(batch, n_inputs)`` in ONNX order."""
        return self._run(x_int, keep=True)

    def evaluate(self, x_int: npt.ArrayLike) -> IntArray:
        """The golden model: flat ONNX-order network output integers for integer inputs."""
        return self._external_output(self._run(x_int, keep=False)[-1])

    def quantize_input(self, x: npt.ArrayLike) -> npt.NDArray[np.int64]:
        xa = np.asarray(x, dtype=np.float64)
        if self.input_quant is not None:
            return self.input_quant.quantize(xa.reshape(len(xa), -1))
        return self.input_fmt.quantize(xa.reshape(len(xa), -1))

    def output_real(self, q: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The real values of the golden model's output integers."""
        return self.output_fmt.to_real(q) * self.output_gain
