"""What the walk knows about a computed ONNX tensor (:class:`Value`) and what a handler gets
for one data-path node (:class:`Step`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import onnx

from nnlcc.ir.matrix import Layer, Shape

__all__ = ["BATCH_DIM", "Step", "Value"]

# What Shape reports for a symbolic batch axis.  Negative, so no real dim can collide with it;
# arithmetic on it (batch * k) gives a value Reshape rejects, as it should.
BATCH_DIM = -(2**40)


@dataclass
class Value:
    """What a computed ONNX tensor is in the IR.

    ``ir`` names the IR tensor (a layer name or the graph input), ``features`` are the ONNX
    non-batch dims.  ``layer`` produced it; ``open`` says a bias Add or a BatchNormalization
    may still fold into that (matrix) layer, ``relu_ok`` that a Relu may still join it — both
    only while this ONNX tensor is the sole reader of the layer's output.  ``stream_image`` is
    set on a flattened image: its elements are in stream order (see FlattenLayer).  ``lead``
    are the ONNX dims *before* the batch axis (a time-major sequence, a recurrent layer's
    direction axis): only the ops of :mod:`nnlcc.frontends.onnx.recurrent` take such a tensor.
    ``time_axis`` is the position (in ``(*lead, batch, *features)``) of the time axis of a
    recurrent layer's every-step output, -1 for other tensors.
    """

    ir: str
    features: tuple[int, ...]
    batch: int | None
    layer: Layer | None = None
    open: bool = False
    relu_ok: bool = False
    stream_image: Shape | None = None
    lead: tuple[int, ...] = ()
    time_axis: int = -1

    @property
    def flat(self) -> bool:
        return len(self.features) == 1

    @property
    def size(self) -> int:
        return math.prod(self.features)


@dataclass(frozen=True)
class Step:
    """One data-path node as its handler sees it: ``live`` names the computed tensors it
    reads (in input order) and ``inputs`` are their values."""

    node: onnx.NodeProto
    label: str
    live: tuple[str, ...]
    inputs: tuple[Value, ...]

    @property
    def value(self) -> Value:
        """The (first) computed input."""
        return self.inputs[0]
