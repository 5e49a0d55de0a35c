"""Recurrent layers of the matrix IR: an LSTM or GRU as its two gate matrices and its cell.

A :class:`RecurrentLayer` reads a sequence ``x_1 .. x_T`` (shape ``(T, I)``, stored
``(batch, T, I)``) and outputs the last hidden state ``h_T`` (shape ``(H,)``).  Its arithmetic
is split the way the hardware is built:

* ``w``, the *input* gate matrix (``G*H x I``, ``G = 4`` gates for an LSTM, 3 for a GRU): a
  :class:`~nnlcc.ir.matrix.DenseLayer` applied to every ``x_t`` (``wx_t = W x_t + b``), outside
  the recurrence, so hardware may compute it ahead;
* ``r``, the *recurrent* gate matrix (``G*H x H``): a dense layer applied to ``h_{t-1}``
  (``rh_t = R h_{t-1} + b_R``), inside the recurrence;
* the element-wise cell (:mod:`nnlcc.ir.cell`): gate activations (the tables of
  :mod:`nnlcc.ir.activation`), the products and the new state.

Both gate matrices are ordinary matrix layers: :meth:`MatrixGraph.matrix_layers
<nnlcc.ir.matrix.MatrixGraph.matrix_layers>` lists them (named ``<layer>_W`` and ``<layer>_R``),
so every matrix pass (csd, lcc, alkaid, auto, circulant, share) codes them as it codes a dense
layer, and each lowers to its own adder graph with its own formats (``w.in_fmt`` is the
layer's input format, ``r.in_fmt`` its output format, the hidden state's).

Gate order and biases follow ONNX: LSTM rows ``i, o, f, c`` (input, output, forget, cell
candidate), GRU rows ``z, r, h`` (update, reset, candidate).  ``w.bias`` holds ONNX's ``Wb +
Rb`` except for the GRU candidate, whose recurrent bias ``Rb_h`` is inside the reset product
(``linear_before_reset=1``): it is ``r.bias`` there, and ``r.bias`` is zero elsewhere::

    LSTM: i, o, f = sigmoid(wx + rh)[gate]; g = tanh(wx + rh)[c]
          c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t)
    GRU:  z, r = sigmoid(wx + rh)[gate]; n = tanh(wx_h + r * rh_h)
          h_t = (1 - z) * n + z * h_{t-1}

The initial state is zero.  ``cell_fmt`` is the format of an LSTM's cell state ``c``,
``table_bits`` the size of the activation tables (:func:`nnlcc.ir.activation.default_table`);
:func:`choose_formats` sets every format from calibration data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from nnlcc.ir.fixed_point import FixedFormat, choose_format
from nnlcc.ir.matrix import DenseLayer, FloatArray, MatrixLayer, Shape
from nnlcc.ir.notes import LayerNotes

__all__ = [
    "CELLS",
    "INNER_BITS",
    "Cell",
    "RecurrentLayer",
    "Trace",
    "choose_formats",
    "gate_count",
]

Cell = Literal["lstm", "gru"]
CELLS: tuple[Cell, ...] = ("lstm", "gru")

#: Bits the inner values (``wx``, ``rh``, the cell state) get beyond the activations' ``act_bits``:
#: they are sums the gates read through steep tables, so they keep 4 more bits.
INNER_BITS = 4


def gate_count(cell: str) -> int:
    return 4 if cell == "lstm" else 3


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)), dtype=np.float64)


@dataclass
class Trace:
    """Every value of a float run over the sequences: ``wx``, ``rh`` ``(batch, T, G*H)``, the
    hidden and cell states after each step ``h``, ``c`` ``(batch, T, H)`` (``c`` zeros for a
    GRU)."""

    wx: FloatArray
    rh: FloatArray
    h: FloatArray
    c: FloatArray


@dataclass
class RecurrentLayer:
    """An LSTM or GRU over ``steps`` time steps (the module docstring)."""

    name: str
    cell: Cell
    steps: int
    w: DenseLayer
    r: DenseLayer
    kind: str = "lstm"
    in_fmt: FixedFormat | None = None
    out_fmt: FixedFormat | None = None
    cell_fmt: FixedFormat | None = None
    table_bits: int = 8
    notes: LayerNotes = field(default_factory=LayerNotes)
    inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.kind = self.cell

    @property
    def gates(self) -> int:
        return gate_count(self.cell)

    @property
    def hidden(self) -> int:
        return self.r.shape[1]

    @property
    def input_size(self) -> int:
        return self.w.shape[1]

    @property
    def in_shape(self) -> Shape:
        return (self.steps, self.input_size)

    @property
    def out_shape(self) -> Shape:
        return (self.hidden,)

    def matrices(self) -> list[MatrixLayer]:
        """The gate matrices, input then recurrent: what matrix passes code."""
        return [self.w, self.r]

    # ---- float execution ------------------------------------------------------------------
    def trace(self, x: FloatArray, implemented: bool = False) -> Trace:
        """Run the float cell over stored-layout sequences ``(batch, T, I)``; ``implemented``
        uses the matrices the gate matrices' codes implement."""
        w, r = (
            (m.code.implemented() if implemented and m.code is not None else m.weight)
            for m in (self.w, self.r)
        )
        b, t_len, _ = x.shape
        hd = self.hidden
        wx = x.reshape(b * t_len, -1) @ w.T + self.w.bias
        wx = wx.reshape(b, t_len, -1)
        h = np.zeros((b, hd))
        c = np.zeros((b, hd))
        rhs, hs, cs = [], [], []
        for t in range(t_len):
            rh = h @ r.T + self.r.bias
            g = wx[:, t]
            if self.cell == "lstm":
                pre = g + rh
                i, o, f = (_sigmoid(pre[:, k * hd : (k + 1) * hd]) for k in range(3))
                c = f * c + i * np.tanh(pre[:, 3 * hd :])
                h = o * np.tanh(c)
            else:
                z, rr = (
                    _sigmoid(g[:, k * hd : (k + 1) * hd] + rh[:, k * hd : (k + 1) * hd])
                    for k in range(2)
                )
                n = np.tanh(g[:, 2 * hd :] + rr * rh[:, 2 * hd :])
                h = (1.0 - z) * n + z * h
            rhs.append(rh)
            hs.append(h)
            cs.append(c)
        return Trace(wx, np.stack(rhs, 1), np.stack(hs, 1), np.stack(cs, 1))

    def forward_float(self, x: FloatArray) -> FloatArray:
        return self.trace(x).h[:, -1]

    def forward_implemented(self, x: FloatArray) -> FloatArray:
        return self.trace(x, implemented=True).h[:, -1]


def _peak(a: FloatArray) -> float:
    return float(np.max(np.abs(a))) if a.size else 0.0


def choose_formats(
    layer: RecurrentLayer, x: FloatArray, act_bits: int, headroom: float
) -> dict[str, float]:
    """Every format of ``layer`` from its calibration inputs ``x`` (stored layout): the hidden
    state (the layer's output) at ``act_bits`` bits, ``wx``, ``rh`` and the cell state at
    ``act_bits + INNER_BITS``, the tables at ``act_bits`` (``in_fmt`` is set by the caller).
    Returns the mean square of each gate matrix's input by its name (the truncation budget's
    input power)."""
    tr = layer.trace(x)
    inner = act_bits + INNER_BITS
    layer.out_fmt = choose_format(_peak(tr.h) * headroom, act_bits, True)
    layer.w.in_fmt = layer.in_fmt
    layer.w.out_fmt = choose_format(_peak(tr.wx) * headroom, inner, True)
    layer.r.in_fmt = layer.out_fmt
    layer.r.out_fmt = choose_format(_peak(tr.rh) * headroom, inner, True)
    layer.cell_fmt = (
        choose_format(_peak(tr.c) * headroom, inner, True) if layer.cell == "lstm" else None
    )
    layer.table_bits = act_bits
    # h_{t-1} feeds R: the zero initial state and every state but the last
    h_in = np.concatenate([np.zeros_like(tr.h[:, :1]), tr.h[:, :-1]], axis=1)
    return {
        layer.w.name: float(np.mean(x * x)) if x.size else 0.0,
        layer.r.name: float(np.mean(h_in * h_in)) if h_in.size else 0.0,
    }


def sequence_check(steps: int) -> None:
    """A recurrent layer needs at least one step."""
    if steps < 1 or not math.isfinite(steps):
        raise ValueError(f"a recurrent layer needs at least one time step, not {steps}")
