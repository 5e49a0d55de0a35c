"""The matrix IR: a network as a list of layers with their fixed-point formats.

A frontend produces a :class:`MatrixGraph` of real-valued layers; passes fill in formats
(:mod:`nnlcc.passes.quantize`) and a :class:`MatrixCode` per *matrix* layer (CSD, LCC, ...);
lowering turns each matrix layer into an :class:`~nnlcc.ir.adder_graph.AdderGraph` that includes
requantization.

Layer kinds
-----------
============  ======================  =====================================================
kind          class                   computes
============  ======================  =====================================================
``dense``     :class:`DenseLayer`     ``act(W @ x + b)`` on a vector
``conv``      :class:`ConvLayer`      the same matrix product on every window vector
``pool``      :class:`PoolLayer`      max or average over every window, per channel
``add``       :class:`AddLayer`       ``act(a + b)`` of two tensors of one shape (residual)
``flatten``   :class:`FlattenLayer`   an image ``(C, H, W)`` as a vector (no arithmetic)
``lstm``,     ``RecurrentLayer``      an LSTM or GRU over a sequence ``(T, I)``: two gate
``gru``                               matrices and a cell (:mod:`nnlcc.ir.recurrent`)
============  ======================  =====================================================

*Matrix layers* are the dense and conv layers (``isinstance(layer, MatrixLayer)``, see
:meth:`MatrixGraph.matrix_layers`): they have ``weight`` (rows = outputs, cols = inputs),
``bias`` and ``code``, and matrix passes treat them alike.  A recurrent layer holds two dense
layers, its gate matrices, which :meth:`MatrixGraph.matrix_layers` lists in its place.  Pool,
add and flatten layers carry no matrix; passes skip them.

Tensors and the DAG
-------------------
Every layer's output tensor is named by the layer's ``name``; the network input tensor by
:attr:`MatrixGraph.input_name`.  ``layer.inputs`` names the tensors a layer reads; an empty
``inputs`` means "the previous layer's output" (the graph input for the first layer), so an
MLP stays a plain chain of :class:`DenseLayer` s.  ``layers`` is in topological order and the
last layer's output is the network output.

Shapes are ``(n,)`` for vectors, ``(T, n)`` for sequences and ``(C, H, W)`` for images.  Images are *stored*
channels-last (numpy ``(batch, H, W, C)``, a stream of pixels with all channels in parallel):
see :mod:`nnlcc.ir.window` for the window-vector order.  The network input and output at the
graph boundary are flat vectors in ONNX order (``(batch, C*H*W)``, channel-major), so data
files and onnxruntime outputs compare directly; :meth:`MatrixGraph.forward_float` converts.

Fixed point: ``in_fmt`` is the format of a layer's (first) input, ``out_fmt`` of its output;
an :class:`AddLayer` has ``in_fmt_b`` for its second input.  Max pools and flattens keep their
input format; every other layer's ``out_fmt`` is chosen by the quantize pass from calibration
data, and the arithmetic rules are in :mod:`nnlcc.ir.fixed_point`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, Union, cast

import numpy as np
import numpy.typing as npt

from nnlcc.ir.adder_graph import AdderGraph
from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.notes import LayerNotes
from nnlcc.ir.window import Window

if TYPE_CHECKING:
    from nnlcc.ir.code_text import CodeWriter
    from nnlcc.ir.recurrent import RecurrentLayer

FloatArray = npt.NDArray[np.float64]
Shape = tuple[int, ...]

__all__ = [
    "AddLayer",
    "ConvLayer",
    "DenseLayer",
    "FlattenLayer",
    "FloatArray",
    "Layer",
    "MatrixCode",
    "MatrixGraph",
    "MatrixLayer",
    "PoolLayer",
    "Shape",
    "Term",
    "Window",
    "conv_matrix",
    "from_external",
    "to_external",
]


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
    """What a matrix pass (CSD, LCC, ...) attaches to a layer.  The pass's room registers the
    parser of its text (:mod:`nnlcc.passes.registry`); the code prints itself."""

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

    def text_lines(self, ind: str, out: CodeWriter) -> list[str]:
        """This code as IR text: a ``code KIND ...`` line at indent ``ind`` and its body
        below (see :mod:`nnlcc.ir.code_text`); its parser reads it back."""
        ...


def _act(y: FloatArray, relu: bool) -> FloatArray:
    return np.maximum(y, 0.0) if relu else y


@dataclass
class MatrixLayer:
    """What dense and conv layers share: ``y = act(W @ x + b)`` with ``W`` of shape
    (rows=outputs, cols=inputs) applied to one vector (dense) or every window (conv)."""

    name: str
    weight: FloatArray
    bias: FloatArray
    relu: bool = False
    kind: str = "dense"
    in_fmt: FixedFormat | None = None
    out_fmt: FixedFormat | None = None
    code: MatrixCode | None = None
    notes: LayerNotes = field(default_factory=LayerNotes)
    inputs: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        """The matrix shape (rows, cols)."""
        r, c = self.weight.shape
        return int(r), int(c)

    @property
    def in_shape(self) -> Shape:
        return (self.shape[1],)

    @property
    def out_shape(self) -> Shape:
        return (self.shape[0],)

    def forward_float(self, x: FloatArray) -> FloatArray:
        return _act(x @ self.weight.T + self.bias, self.relu)

    def forward_implemented(self, x: FloatArray) -> FloatArray:
        """Float forward pass with the matrix the code implements (no activation rounding)."""
        w = self.code.implemented() if self.code is not None else self.weight
        return _act(x @ w.T + self.bias, self.relu)


@dataclass
class DenseLayer(MatrixLayer):
    """A fully connected layer: ``y = act(W @ x + b)`` on a vector."""

    kind: str = "dense"


def conv_matrix(w4: npt.ArrayLike) -> FloatArray:
    """An ONNX/torch conv weight ``(Cout, Cin, kh, kw)`` as the IR's ``Cout x (kh*kw*Cin)``
    matrix: column ``(i * kw + j) * Cin + c`` holds tap ``(i, j)`` of input channel ``c``."""
    w = np.asarray(w4, dtype=np.float64)
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1))


@dataclass
class ConvLayer(MatrixLayer):
    """A convolution as a matrix layer: ``weight`` is ``Cout x (kh*kw*Cin)`` in window order
    (see :func:`conv_matrix` and :mod:`nnlcc.ir.window`), applied to the zero-padded window
    vector of every output pixel, then ``+ bias`` and the activation.

    ``image`` is the input shape ``(Cin, H, W)``; ``window`` the kernel, stride and pads
    (dilation 1, one group).  A BatchNormalization after the conv is already folded into
    ``weight`` and ``bias`` by the frontend.  Output shape ``(Cout, Ho, Wo)``.
    """

    kind: str = "conv"
    image: Shape = (1, 1, 1)
    window: Window = field(default_factory=lambda: Window((1, 1)))

    @property
    def in_shape(self) -> Shape:
        return self.image

    @property
    def out_shape(self) -> Shape:
        ho, wo = self.window.out_hw(self.image[1], self.image[2])
        return (self.shape[0], ho, wo)

    def line_buffer_bits(self, bits: int) -> int:
        """Storage of the streaming line buffer for ``bits``-bit input elements:
        ``((kh - 1) * W + kw - 1) * Cin * bits`` (``kh - 1`` buffered rows plus the ``kw - 1``
        older pixels of the newest window row; see :meth:`Window.line_buffer_pixels`)."""
        return self.window.line_buffer_pixels(self.image[2]) * self.image[0] * bits

    def _apply(self, x: FloatArray, w: FloatArray) -> FloatArray:
        win = cast(FloatArray, self.window.windows(x))
        # one 2-D product (a 4-D @ would run one small matmul per image row)
        y = win.reshape(-1, win.shape[-1]) @ w.T + self.bias
        return _act(y.reshape(*win.shape[:3], w.shape[0]), self.relu)

    def forward_float(self, x: FloatArray) -> FloatArray:
        return self._apply(x, self.weight)

    def forward_implemented(self, x: FloatArray) -> FloatArray:
        return self._apply(x, self.code.implemented() if self.code is not None else self.weight)


@dataclass
class PoolLayer:
    """Per-channel ``max`` or ``avg`` over every window of an image ``(C, H, W)``.

    Average pools divide by ``kh * kw`` always (padding counts as zeros, torch's default
    ``count_include_pad=True``); the integer division rule is
    :func:`nnlcc.ir.fixed_point.avg_pool_plan`.  Max pools ignore padding (the hardware may pad
    with the input format's minimum, which gives the same result) and keep the input format.
    A global average pool is an ``avg`` pool whose kernel is the whole image.  ``relu`` clamps
    the result at zero (a Relu after the pool; it commutes with max).
    """

    name: str
    op: Literal["max", "avg"]
    image: Shape
    window: Window
    relu: bool = False
    kind: str = "pool"
    in_fmt: FixedFormat | None = None
    out_fmt: FixedFormat | None = None
    notes: LayerNotes = field(default_factory=LayerNotes)
    inputs: tuple[str, ...] = ()

    @property
    def in_shape(self) -> Shape:
        return self.image

    @property
    def out_shape(self) -> Shape:
        ho, wo = self.window.out_hw(self.image[1], self.image[2])
        return (self.image[0], ho, wo)

    def line_buffer_bits(self, bits: int) -> int:
        """As :meth:`ConvLayer.line_buffer_bits`."""
        return self.window.line_buffer_pixels(self.image[2]) * self.image[0] * bits

    def forward_float(self, x: FloatArray) -> FloatArray:
        c = x.shape[3]
        fill = -np.inf if self.op == "max" else 0.0
        win = self.window.windows(x, fill=fill)
        win = win.reshape(*win.shape[:3], self.window.taps, c)
        y = win.max(axis=3) if self.op == "max" else win.sum(axis=3) / self.window.taps
        return _act(y, self.relu)


@dataclass
class AddLayer:
    """``act(a + b)`` elementwise for the two tensors named in ``inputs`` (same ``shape``,
    vector or image): a residual connection.  ``in_fmt`` is ``a``'s format, ``in_fmt_b``
    ``b``'s; the alignment and requantization rule is :func:`nnlcc.ir.fixed_point.add_plan`."""

    name: str
    inputs: tuple[str, ...]
    shape: Shape
    relu: bool = False
    kind: str = "add"
    in_fmt: FixedFormat | None = None
    in_fmt_b: FixedFormat | None = None
    out_fmt: FixedFormat | None = None
    notes: LayerNotes = field(default_factory=LayerNotes)

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape

    def forward_float(self, a: FloatArray, b: FloatArray) -> FloatArray:
        return _act(a + b, self.relu)


@dataclass
class FlattenLayer:
    """An image ``(C, H, W)`` as a vector of ``C*H*W`` elements in *stream* order
    (``(y * W + x) * C + c``: pixels in raster order, channels fastest), so hardware only
    collects the pixels.  The frontend permutes the columns of the dense layer reading it
    (ONNX flattens channel-major).  No arithmetic: the output format is the input format."""

    name: str
    image: Shape
    kind: str = "flatten"
    in_fmt: FixedFormat | None = None
    out_fmt: FixedFormat | None = None
    notes: LayerNotes = field(default_factory=LayerNotes)
    inputs: tuple[str, ...] = ()

    @property
    def in_shape(self) -> Shape:
        return self.image

    @property
    def out_shape(self) -> Shape:
        return (math.prod(self.image),)

    def forward_float(self, x: FloatArray) -> FloatArray:
        return x.reshape(len(x), -1)


Layer = Union[MatrixLayer, PoolLayer, AddLayer, FlattenLayer, "RecurrentLayer"]
"""Any layer (dense and conv layers are :class:`MatrixLayer` s; the recurrent layer kind lives
in :mod:`nnlcc.ir.recurrent`, which builds on this module)."""


def from_external(x: npt.ArrayLike, shape: Shape) -> FloatArray:
    """Flat ONNX-order data ``(batch, prod(shape))`` in the IR's storage layout."""
    a = np.asarray(x, dtype=np.float64)
    a = a.reshape(len(a), *shape)
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if len(shape) == 3 else a


def to_external(a: npt.NDArray[Any], shape: Shape) -> npt.NDArray[Any]:
    """Inverse of :func:`from_external`: stored tensors as flat ONNX-order rows."""
    if len(shape) == 3:
        a = a.reshape(len(a), shape[1], shape[2], shape[0]).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(a).reshape(len(a), -1)


@dataclass
class MatrixGraph:
    """A feed-forward network: ``layers`` in topological order from the input tensor
    ``input_name`` (shape ``input_shape``, default ``(input_size,)``) to the last layer."""

    name: str
    input_name: str
    input_size: int
    output_name: str
    layers: list[Layer]
    input_fmt: FixedFormat | None = None
    source: str = ""
    input_shape: Shape = ()

    def __post_init__(self) -> None:
        if not self.input_shape:
            self.input_shape = (self.input_size,)

    # ---- structure ------------------------------------------------------------------------
    def matrix_layers(self) -> list[MatrixLayer]:
        """The layers matrix passes code: dense and conv, and a recurrent layer's gate
        matrices in its place."""
        out: list[MatrixLayer] = []
        for layer in self.layers:
            if isinstance(layer, MatrixLayer):
                out.append(layer)
            elif not isinstance(layer, PoolLayer | AddLayer | FlattenLayer):
                out += layer.matrices()
        return out

    def inputs_of(self, index: int) -> tuple[str, ...]:
        """Tensor names layer ``index`` reads (its ``inputs``, or the previous tensor)."""
        layer = self.layers[index]
        if layer.inputs:
            return layer.inputs
        return (self.layers[index - 1].name if index else self.input_name,)

    def tensor_shapes(self) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {self.input_name: self.input_shape}
        for layer in self.layers:
            shapes[layer.name] = layer.out_shape
        return shapes

    def last_uses(self) -> dict[str, int]:
        """Index of the last layer reading each tensor (to free activations early)."""
        last: dict[str, int] = {}
        for i in range(len(self.layers)):
            for t in self.inputs_of(i):
                last[t] = i
        return last

    @property
    def is_chain(self) -> bool:
        return all(len(self.inputs_of(i)) == 1 for i in range(len(self.layers))) and all(
            self.inputs_of(i)[0] == (self.layers[i - 1].name if i else self.input_name)
            for i in range(len(self.layers))
        )

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].out_shape if self.layers else self.input_shape

    @property
    def output_size(self) -> int:
        return math.prod(self.output_shape)

    # ---- float execution ------------------------------------------------------------------
    def _run(
        self, x: FloatArray, visit: Any = None, keep: bool = False, implemented: bool = False
    ) -> FloatArray:
        """Run the DAG on stored-layout input; ``visit(i, out)`` sees every layer output;
        ``implemented``: matrix layers use the matrices their codes implement."""
        env: dict[str, FloatArray] = {self.input_name: x}
        last = self.last_uses()
        out = x
        for i, layer in enumerate(self.layers):
            names = self.inputs_of(i)
            args = [env[t] for t in names]
            if implemented and not isinstance(layer, PoolLayer | AddLayer | FlattenLayer):
                out = layer.forward_implemented(args[0])
            else:
                out = layer.forward_float(*args)  # type: ignore[arg-type]
            if visit is not None:
                visit(i, out)
            env[layer.name] = out
            if not keep:
                for t in set(names):
                    if last.get(t) == i:
                        del env[t]
        return out

    def _external_out(self, y: FloatArray) -> FloatArray:
        last = self.layers[-1] if self.layers else None
        if isinstance(last, FlattenLayer):  # stream order back to ONNX's channel-major order
            return to_external(y, last.image)
        return to_external(y, self.output_shape)

    def forward_float(self, x: FloatArray, batch: int = 0, implemented: bool = False) -> FloatArray:
        """Reference float inference on flat ONNX-order inputs ``(batch, input_size)``;
        returns ``(batch, output_size)`` in ONNX order.  ``batch`` > 0 runs in chunks;
        ``implemented`` uses the matrices the layers' codes implement."""
        xs = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        step = batch if batch > 0 else max(len(xs), 1)
        outs = [
            self._external_out(
                self._run(
                    from_external(xs[s : s + step], self.input_shape), None, False, implemented
                )
            )
            for s in range(0, len(xs), step)
        ]
        return np.concatenate(outs) if outs else np.zeros((0, self.output_size))

    def activations_float(self, x: FloatArray) -> list[FloatArray]:
        """Inputs of the network followed by every layer's output (stored layout).  Keeps all
        activations: for big images use :meth:`activation_peaks`."""
        acts = [
            from_external(np.asarray(x, dtype=np.float64).reshape(len(x), -1), self.input_shape)
        ]
        self._run(acts[0], visit=lambda i, out: acts.append(out))
        return acts

    def activation_peaks(self, x: FloatArray, batch: int = 8) -> tuple[float, float, list[float]]:
        """``(input min, input max-abs, per-layer output max-abs)`` over the inputs ``x``,
        ``batch`` samples at a time with activations freed after their last use."""
        lo, peak, peaks, _ = self.activation_stats(x, batch)
        return lo, peak, peaks

    def activation_stats(
        self, x: FloatArray, batch: int = 8
    ) -> tuple[float, float, list[float], list[float]]:
        """:meth:`activation_peaks` and the mean square of every tensor (the input first, then
        each layer's output), in one streaming run."""
        xs = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        peaks = [0.0] * len(self.layers)
        sums = [float(np.sum(xs * xs))] + [0.0] * len(self.layers)
        counts = [xs.size] + [0] * len(self.layers)

        def visit(i: int, out: FloatArray) -> None:
            if out.size:
                peaks[i] = max(peaks[i], float(np.max(np.abs(out))))
                sums[i + 1] += float(np.sum(out * out))
                counts[i + 1] += out.size

        for s in range(0, len(xs), max(batch, 1)):
            self._run(from_external(xs[s : s + batch], self.input_shape), visit=visit)
        lo = float(np.min(xs)) if xs.size else 0.0
        squares = [t / c if c else 0.0 for t, c in zip(sums, counts, strict=True)]
        return lo, float(np.max(np.abs(xs))) if xs.size else 0.0, peaks, squares

    # ---- checks and text ------------------------------------------------------------------
    def verify(self) -> None:
        """Check names, shapes and weights (raises AssertionError on an IR bug)."""
        shapes: dict[str, Shape] = {self.input_name: self.input_shape}
        assert math.prod(self.input_shape) == self.input_size, "input_shape vs input_size"
        for i, layer in enumerate(self.layers):
            assert layer.name not in shapes, f"{layer.name}: duplicate tensor name"
            names = self.inputs_of(i)
            for t in names:
                assert t in shapes, f"{layer.name}: reads '{t}' before it is computed"
            got = [shapes[t] for t in names]
            if isinstance(layer, AddLayer):
                assert len(names) == 2, f"{layer.name}: add needs two inputs"
                assert got == [layer.shape, layer.shape], f"{layer.name}: adds shapes {got}"
            else:
                assert len(names) == 1, f"{layer.name}: reads {len(names)} tensors"
                n = math.prod(got[0])
                if not isinstance(layer, MatrixLayer | PoolLayer | FlattenLayer):
                    self._verify_recurrent(layer, got[0])
                    shapes[layer.name] = layer.out_shape
                    continue
                if isinstance(layer, ConvLayer | PoolLayer | FlattenLayer):
                    assert got[0] == layer.in_shape, (
                        f"{layer.name}: expects {layer.in_shape}, gets {got[0]}"
                    )
                else:
                    assert len(got[0]) == 1, f"{layer.name}: dense layer reads image {got[0]}"
            if isinstance(layer, MatrixLayer):
                rows, cols = layer.shape
                if isinstance(layer, ConvLayer):
                    assert cols == layer.window.taps * layer.image[0], (
                        f"{layer.name}: {cols} columns for a {layer.window.kernel} window"
                        f" of {layer.image[0]} channels"
                    )
                else:
                    assert cols == n, f"{layer.name}: expects {cols} inputs, gets {n}"
                assert layer.bias.shape == (rows,), f"{layer.name}: bias shape {layer.bias.shape}"
                assert np.all(np.isfinite(layer.weight)), f"{layer.name}: non-finite weights"
            shapes[layer.name] = layer.out_shape

    def _verify_recurrent(self, layer: RecurrentLayer, got: Shape) -> None:
        assert got == layer.in_shape, f"{layer.name}: expects {layer.in_shape}, gets {got}"
        g, hd, cols = layer.gates, layer.hidden, layer.input_size
        assert layer.w.shape == (g * hd, cols), f"{layer.name}: W is {layer.w.shape}"
        assert layer.r.shape == (g * hd, hd), f"{layer.name}: R is {layer.r.shape}"
        for m in layer.matrices():
            assert m.bias.shape == (g * hd,), f"{m.name}: bias shape {m.bias.shape}"
            assert np.all(np.isfinite(m.weight)), f"{m.name}: non-finite weights"
            assert not m.relu, f"{m.name}: a gate matrix has no ReLU"
        sub = {m.name for m in layer.matrices()}
        assert len(sub) == 2 and not sub & {x.name for x in self.layers}, (
            f"{layer.name}: its gate matrices need names of their own, not {sorted(sub)}"
        )
