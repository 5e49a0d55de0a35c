"""Recurrent layers: ONNX ``LSTM`` and ``GRU`` become a
:class:`~nnlcc.ir.recurrent.RecurrentLayer` (its two gate matrices and its cell).

What nnlcc builds: one direction (``forward``), the gates' ``sigmoid`` and the cell's ``tanh``
(ONNX's defaults), a zero initial state, no peepholes, every sequence of the model's fixed
length, and the last hidden state ``Y_h`` as the layer's output (through ``Gather`` or
``Squeeze`` of its direction axis, or ``Y``'s last step).  A GRU must have
``linear_before_reset=1`` (what torch exports).  The sequence comes from the model input
``(batch, T, I)``: directly with ``layout=1``, or through the ``Transpose`` (perm ``1, 0, 2``)
torch writes before a ``layout=0`` node.  Anything else stops the import with one line naming
the node and what is supported.

Tensors whose ONNX shape has axes before the batch axis (the time-major sequence, ``Y_h``'s
direction axis) carry them as :attr:`Value.lead <nnlcc.frontends.onnx.values.Value.lead>`; only
the ops of this module accept them.
"""

from __future__ import annotations

import numpy as np
import onnx

from nnlcc.errors import UnsupportedModelError
from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.nodes import attr, check_finite, unsupported
from nnlcc.frontends.onnx.read import fmt_shape
from nnlcc.frontends.onnx.registry import onnx_handler
from nnlcc.frontends.onnx.values import Step, Value
from nnlcc.ir.matrix import DenseLayer
from nnlcc.ir.notes import LayerNotes, OnnxNodes
from nnlcc.ir.recurrent import RecurrentLayer, gate_count

_ATTRS = {
    "LSTM": {"hidden_size", "direction", "layout", "activations", "input_forget", "clip"},
    "GRU": {"hidden_size", "direction", "layout", "activations", "linear_before_reset", "clip"},
}
_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
_SUPPORTED = (
    "nnlcc compiles unidirectional LSTM/GRU layers with sigmoid gates and tanh, a zero initial"
    " state, no peepholes and sequences of the model's fixed length"
)


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _producer(imp: Importer, name: str) -> onnx.NodeProto | None:
    return next((n for n in imp.graph.node if name in n.output), None)


def _zero_state(imp: Importer, node: onnx.NodeProto, label: str, pos: int, what: str) -> None:
    """Input ``pos`` (an initial state) is absent or zero: constant zeros, or the
    ``ConstantOfShape`` of zeros torch writes for a batch-sized zero state."""
    if len(node.input) <= pos or not node.input[pos]:
        return
    name = node.input[pos]
    if name in imp.consts:
        if not np.all(np.asarray(imp.consts[name]) == 0):
            raise unsupported(
                label, node.op_type, f"stateful: {what} '{name}' is not zero; {_SUPPORTED}"
            )
        return
    src = _producer(imp, name)
    if src is not None and src.op_type == "ConstantOfShape":
        value = attr(src, "value")
        if value is None or np.all(onnx.numpy_helper.to_array(value) == 0):
            return
    raise unsupported(
        label, node.op_type, f"stateful: {what} '{name}' is not a constant zero; {_SUPPORTED}"
    )


def _sequence(v: Value, layout: int, label: str, op: str) -> tuple[int, int]:
    """``(T, I)`` of the node's input sequence, as the layout reads it."""
    if layout == 0 and len(v.lead) == 1 and len(v.features) == 1:
        return v.lead[0], v.features[0]
    if layout == 1 and not v.lead and len(v.features) == 2:
        return v.features[0], v.features[1]
    dims = [*v.lead, "batch", *v.features]
    raise unsupported(
        label,
        op,
        f"input of shape ({', '.join(map(str, dims))}) is not a sequence for layout={layout};"
        " nnlcc reads the model input (batch, T, I), transposed to (T, batch, I) for layout=0",
    )


def _check_attrs(node: onnx.NodeProto, label: str) -> int:
    """Refuse what nnlcc cannot build; returns ``layout``."""
    op = node.op_type
    for a in node.attribute:
        if a.name not in _ATTRS[op]:
            raise unsupported(label, op, f"attribute {a.name} is not supported; {_SUPPORTED}")
    direction = _text(attr(node, "direction", b"forward"))
    if direction != "forward":
        raise unsupported(label, op, f"direction={direction} is not supported; {_SUPPORTED}")
    acts = [_text(a) for a in attr(node, "activations", [])] or _DEFAULT_ACTS[op]
    if [a.lower() for a in acts] != [a.lower() for a in _DEFAULT_ACTS[op]]:
        raise unsupported(
            label,
            op,
            f"activations {acts} are not supported: only {_DEFAULT_ACTS[op]} (sigmoid gates, tanh)",
        )
    if attr(node, "clip") is not None:
        raise unsupported(label, op, f"clip is not supported; {_SUPPORTED}")
    if attr(node, "input_forget", 0):
        raise unsupported(label, op, f"input_forget=1 is not supported; {_SUPPORTED}")
    if op == "GRU" and not attr(node, "linear_before_reset", 0):
        raise unsupported(
            label,
            op,
            "linear_before_reset=0 is not supported: nnlcc builds the GRU torch exports"
            " (linear_before_reset=1)",
        )
    layout = int(attr(node, "layout", 0))
    if layout not in (0, 1):
        raise unsupported(label, op, f"layout={layout} is not supported")
    return layout


def _weights(
    imp: Importer, node: onnx.NodeProto, label: str, gates: int, n_in: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``W (G*H x I)``, ``R (G*H x H)``, ``B (2*G*H)`` of the one direction, and ``H``."""
    op = node.op_type
    w = np.asarray(imp.const_input(node, label, 1, "weight W"), dtype=np.float64)
    r = np.asarray(imp.const_input(node, label, 2, "recurrence weight R"), dtype=np.float64)
    if w.ndim != 3 or w.shape[0] != 1 or r.ndim != 3 or r.shape[0] != 1:
        raise unsupported(
            label,
            op,
            f"weights of shapes {fmt_shape(list(w.shape))}, {fmt_shape(list(r.shape))}: one"
            f" direction expected; {_SUPPORTED}",
        )
    w, r = w[0], r[0]
    hd = r.shape[1]
    size = attr(node, "hidden_size")
    if (
        (size is not None and int(size) != hd)
        or w.shape != (gates * hd, n_in)
        or r.shape != (gates * hd, hd)
    ):
        raise unsupported(
            label,
            op,
            f"W {fmt_shape(list(w.shape))} and R {fmt_shape(list(r.shape))} do not fit"
            f" {gates} gates of hidden size {size if size is not None else hd} over {n_in} inputs",
        )
    if len(node.input) > 3 and node.input[3]:
        b = np.asarray(imp.const_input(node, label, 3, "bias B"), dtype=np.float64)
        if b.shape != (1, 2 * gates * hd):
            raise unsupported(label, op, f"bias B has shape {fmt_shape(list(b.shape))}")
        b = b[0]
    else:
        b = np.zeros(2 * gates * hd)
    for what, a in (("W", w), ("R", r), ("B", b)):
        check_finite(label, op, what, a)
    return w, r, b, hd


@onnx_handler("LSTM", "GRU", weights=True, sequences=True)
def recurrent(imp: Importer, step: Step) -> Value:
    v, node, label = step.value, step.node, step.label
    op = node.op_type
    layout = _check_attrs(node, label)
    steps, n_in = _sequence(v, layout, label, op)
    if v.layer is not None:
        raise unsupported(
            label, op, f"reads '{node.input[0]}', a layer's output; nnlcc reads the model input"
        )
    if len(node.input) > 4 and node.input[4]:  # sequence_lens
        lens = np.asarray(imp.const_input(node, label, 4, "sequence_lens")).reshape(-1)
        if lens.size == 0 or np.any(lens != steps):
            raise unsupported(
                label,
                op,
                f"sequence_lens {lens.tolist()} does not match the sequence length {steps};"
                f" {_SUPPORTED}",
            )
    _zero_state(imp, node, label, 5, "initial_h")
    if op == "LSTM":
        _zero_state(imp, node, label, 6, "initial_c")
        if len(node.input) > 7 and node.input[7]:
            raise unsupported(label, op, f"peepholes (input P) are not supported; {_SUPPORTED}")
    gates = gate_count(op.lower())
    w, r, b, hd = _weights(imp, node, label, gates, n_in)
    wb, rb = b[: gates * hd], b[gates * hd :]
    if op == "LSTM":
        w_bias, r_bias = wb + rb, np.zeros(gates * hd)
    else:  # the candidate's recurrent bias sits inside the reset product
        w_bias = np.concatenate([wb[: 2 * hd] + rb[: 2 * hd], wb[2 * hd :]])
        r_bias = np.concatenate([np.zeros(2 * hd), rb[2 * hd :]])
    name = imp.new_name(label, op, op.lower())
    mats = []
    for tag, m, bias in (("W", w, w_bias), ("R", r, r_bias)):
        sub = imp.new_name(f"{name}_{tag}", "", "dense")
        mats.append(
            DenseLayer(
                name=sub,
                weight=np.ascontiguousarray(m),
                bias=np.asarray(bias, dtype=np.float64),
                notes=LayerNotes(OnnxNodes([label])),
            )
        )
    layer = RecurrentLayer(
        name=name,
        cell="lstm" if op == "LSTM" else "gru",
        steps=steps,
        w=mats[0],
        r=mats[1],
        notes=LayerNotes(OnnxNodes([label])),
        inputs=(v.ir,),
    )
    imp.add_layer(layer, label)
    used = [o for o in node.output[2:] if o and (imp.consumers.get(o, 0) or _is_out(imp, o))]
    if used:
        raise unsupported(label, op, f"the cell state output Y_c '{used[0]}' is used; {_SUPPORTED}")
    # Y_h: (1, batch, H) for layout 0, (batch, 1, H) for layout 1
    last = (
        Value(name, (hd,), v.batch, layer, lead=(1,))
        if layout == 0
        else Value(name, (1, hd), v.batch, layer)
    )
    if len(node.output) > 1 and node.output[1]:
        imp.values[node.output[1]] = last
    # Y: every step's output; only its last step is the layer's (see gather)
    every = (
        Value(name, (hd,), v.batch, layer, lead=(steps, 1), time_axis=0)
        if layout == 0
        else Value(name, (steps, 1, hd), v.batch, layer, time_axis=1)
    )
    return every


def _is_out(imp: Importer, name: str) -> bool:
    return name == imp.graph.output[0].name


def _axis(node: onnx.NodeProto, label: str, rank: int, value: object) -> int:
    a = int(np.asarray(value).reshape(-1)[0]) if value is not None else 0
    if not -rank <= a < rank:
        raise unsupported(label, node.op_type, f"axis {a} out of range")
    return a + rank if a < 0 else a


def _dims(v: Value) -> list[int | None]:
    return [*v.lead, None, *v.features]


def _without(v: Value, axes: list[int]) -> Value:
    """``v`` without the ONNX ``axes`` (positions in :func:`_dims`), its time axis followed."""
    dims = [d for i, d in enumerate(_dims(v)) if i not in axes]
    at = dims.index(None)
    lead = tuple(int(d) for d in dims[:at] if d is not None)
    feats = tuple(int(d) for d in dims[at + 1 :] if d is not None)
    t = v.time_axis
    if t >= 0:
        t = -1 if t in axes else t - sum(a < t for a in axes)
    return Value(v.ir, feats, v.batch, v.layer, lead=lead, time_axis=t)


def _refuse(node: onnx.NodeProto, label: str, v: Value, what: str) -> UnsupportedModelError:
    dims = ", ".join("batch" if d is None else str(d) for d in _dims(v))
    return unsupported(label, node.op_type, f"{what} of a sequence tensor ({dims})")


@onnx_handler("Squeeze", sequences=True)
def squeeze(imp: Importer, step: Step) -> Value:
    """Drop size-1 axes (the direction axis of ``Y_h`` or ``Y``)."""
    v, node, label = step.value, step.node, step.label
    rank = len(_dims(v))
    axes = attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = imp.const_input(node, label, 1, "axes input")
    if axes is None:
        raise _refuse(node, label, v, "Squeeze without axes")
    picked = sorted(_axis(node, label, rank, a) for a in np.asarray(axes).reshape(-1))
    for a in picked:
        if _dims(v)[a] != 1:
            raise _refuse(node, label, v, f"squeezing axis {a} of size {_dims(v)[a]}")
    return _without(v, picked)


@onnx_handler("Gather", sequences=True)
def gather(imp: Importer, step: Step) -> Value:
    """One index of an axis before the batch axis: the direction of ``Y_h``, or the last step
    of ``Y`` (index ``-1`` or ``T - 1``), which is ``Y_h``."""
    v, node, label = step.value, step.node, step.label
    dims = _dims(v)
    axis = _axis(node, label, len(dims), attr(node, "axis", 0))
    idx = np.asarray(imp.const_input(node, label, 1, "indices"))
    size = dims[axis]
    if idx.size != 1 or idx.ndim != 0 or size is None:
        raise _refuse(node, label, v, "Gather other than one index of an axis before the batch")
    k = int(idx) + size if int(idx) < 0 else int(idx)
    if axis == v.time_axis and k != size - 1:
        raise unsupported(
            label,
            node.op_type,
            f"reads step {k} of {size} of the LSTM/GRU output; nnlcc compiles the last hidden"
            " state (the last step)",
        )
    if axis != v.time_axis and (k != 0 or size != 1):
        raise _refuse(node, label, v, f"index {k} of an axis of size {size}")
    return _without(v, [axis])


@onnx_handler("Transpose", sequences=True)
def transpose(imp: Importer, step: Step) -> Value:
    """The model input ``(batch, T, I)`` to ``(T, batch, I)`` (perm ``1, 0, 2``), as torch
    writes it before a ``layout=0`` LSTM or GRU."""
    v, node, label = step.value, step.node, step.label
    perm = [int(p) for p in attr(node, "perm", [])]
    if perm == [1, 0, 2] and not v.lead and len(v.features) == 2 and v.layer is None:
        return Value(v.ir, (v.features[1],), v.batch, None, lead=(v.features[0],))
    dims = ", ".join("batch" if d is None else str(d) for d in _dims(v))
    raise unsupported(
        label,
        "Transpose",
        f"perm={perm} of ({dims}) is not supported; nnlcc transposes only the model input"
        " (batch, T, I) to (T, batch, I) for an LSTM or GRU",
    )
