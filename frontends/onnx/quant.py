"""Quantizers on the data path, and the facts they leave on the layers (:mod:`nnlcc.ir.imported`).

* ``Quant`` / ``BipolarQuant`` (QONNX), or ``QuantizeLinear`` [-> ``Clip``] ->
  ``DequantizeLinear`` (ONNX QDQ; QCDQ below 8 bits), on the graph input: the input's
  quantizer; on the output of a Gemm, MatMul or Conv (after its bias and Relu): the layer's
  output quantizer, which fixes the format the ``quantize`` pass would otherwise calibrate.
* A weight behind a quantizer (:func:`~.quant_spec.trace`) becomes the layer's exact integer
  matrix; per-output-channel scales fold into it (their powers of two) and into the layer's
  gains (the rest), and so do the input's scale and a BatchNormalization after the layer.

What nnlcc cannot map exactly is refused with one line naming the node: a computed scale, a
non-integer zero point, a rounding mode without a rule, more than 24 bits, a per-channel
activation scale, two quantizers in a row, a quantizer after a pool or add.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import onnx

from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.nodes import attr, unsupported
from nnlcc.frontends.onnx.quant_spec import (
    QuantConst,
    check_weight,
    const_arg,
    int_range,
    quant_args,
    trace,
)
from nnlcc.frontends.onnx.registry import onnx_handler
from nnlcc.frontends.onnx.values import Step, Value
from nnlcc.ir.imported import (
    MAX_BITS,
    ActQuant,
    ImportedQuant,
    Rounding,
    WeightQuant,
    split_scale,
)
from nnlcc.ir.matrix import MatrixLayer

__all__ = ["add_bias", "attach_matrix", "fold_batchnorm"]

#: Largest spread of per-channel weight scales (octaves) folded into one integer matrix.
MAX_SCALE_SPREAD = 24


@dataclass
class _State:
    """Quantizers seen so far in one import."""

    input: ActQuant | None = None  # the graph input's quantizer, until a layer takes it
    input_taken: bool = False
    act: dict[str, ActQuant] = field(default_factory=dict)  # IR tensor -> its quantizer
    pending: dict[str, tuple[ActQuant, tuple[str, ...]]] = field(default_factory=dict)


def _state(imp: Importer) -> _State:
    st = imp.state.get("quant")
    if st is None:
        st = imp.state["quant"] = _State()
        imp.on_finish.append(lambda: _finish(imp, st))
    assert isinstance(st, _State)
    return st


def _finish(imp: Importer, st: _State) -> None:
    for tensor, (_, nodes) in st.pending.items():
        raise unsupported(
            nodes[-1], "QuantizeLinear", f"'{tensor}' is not dequantized by a DequantizeLinear"
        )
    if st.input is not None and not st.input_taken:
        raise unsupported(
            st.input.nodes[0],
            "Quant",
            "the quantized input must be read by a Gemm, MatMul or Conv (here it is not)",
        )
    for i, layer in enumerate(imp.layers):
        if isinstance(layer, MatrixLayer):
            continue
        for t in layer.inputs or ((imp.layers[i - 1].name,) if i else (imp.input_name,)):
            q = st.act.get(t)
            if q is not None and q.gain != 1.0:
                raise unsupported(
                    q.nodes[-1],
                    "Quant",
                    f"its scale {q.scale:g} is not a power of two and the tensor is read by"
                    f" {layer.kind} layer {layer.name}; only a Gemm, MatMul or Conv can fold it",
                )


def _facts(layer: MatrixLayer) -> ImportedQuant:
    facts = layer.notes.get(ImportedQuant)
    if facts is None:
        facts = ImportedQuant()
        layer.notes.put(facts)
    return facts


def _per_tensor(label: str, op: str, what: str, a: np.ndarray) -> float:
    vals = np.unique(np.asarray(a, dtype=np.float64))
    if vals.size != 1:
        raise unsupported(
            label, op, f"per-channel activation {what}s are not supported (only per tensor)"
        )
    return float(vals[0])


# --------------------------------------------------------------------------- the data path


def _act_from_quant(imp: Importer, node: onnx.NodeProto, label: str) -> ActQuant:
    op = node.op_type
    roles = ("scale",) if op == "BipolarQuant" else ("scale", "zero point", "bit width")
    args = [None, *(const_arg(imp, node, label, k + 1, r) for k, r in enumerate(roles))]
    q = quant_args(node, label, args, max_bits=MAX_BITS)
    scale = _per_tensor(label, op, "scale", q.scale)
    zp = int(_per_tensor(label, op, "zero point", q.zero_point))
    if q.bipolar:
        rounding = Rounding.BIPOLAR
    else:
        parsed = Rounding.parse(q.rounding)
        if parsed is None:
            raise unsupported(
                label,
                op,
                f"rounding_mode {q.rounding} is not supported on activations"
                " (ROUND/HALF_EVEN, FLOOR and CEIL are)",
            )
        rounding = parsed
    return ActQuant(scale, zp, q.qmin, q.qmax, rounding, (label,), zp_in_rounding=True)


def _act_from_qdq(imp: Importer, node: onnx.NodeProto, label: str) -> ActQuant:
    op = node.op_type
    if attr(node, "block_size", 0):
        raise unsupported(label, op, "blocked quantization (block_size) is not supported")
    scale = const_arg(imp, node, label, 1, "scale")
    zp = const_arg(imp, node, label, 2, "zero point")
    s = _per_tensor(label, op, "scale", scale)
    if not (np.isfinite(s) and s > 0):
        raise unsupported(label, op, "scale must be positive and finite")
    if zp is None:
        out_t = int(attr(node, "output_dtype", 0) or onnx.TensorProto.UINT8)
        probe = np.zeros(1, dtype=onnx.helper.tensor_dtype_to_np_dtype(out_t))
        lo, hi = int_range(label, op, probe)
        z = 0
    else:
        lo, hi = int_range(label, op, np.asarray(zp))
        z = int(_per_tensor(label, op, "zero point", np.asarray(zp).astype(np.int64)))
    if (hi - lo).bit_length() > MAX_BITS:
        raise unsupported(label, op, f"more than {MAX_BITS} bits are not supported")
    return ActQuant(s, z, lo, hi, Rounding.ROUND, (label,))


def _readers(imp: Importer, tensor: str) -> list[onnx.NodeProto]:
    return [n for n in imp.graph.node if tensor in n.input]


@onnx_handler("Quant", "BipolarQuant")
def quant(imp: Importer, step: Step) -> Value:
    return _attach(imp, step, _act_from_quant(imp, step.node, step.label))


@onnx_handler("QuantizeLinear")
def quantize_linear(imp: Importer, step: Step) -> Value:
    """Holds the quantizer until its DequantizeLinear (through QCDQ's Clip)."""
    node, label = step.node, step.label
    q = _act_from_qdq(imp, node, label)
    readers = _readers(imp, node.output[0])
    if len(readers) != 1 or readers[0].op_type not in ("Clip", "DequantizeLinear"):
        raise unsupported(
            label,
            "QuantizeLinear",
            "its integers must go to one DequantizeLinear (or Clip, then DequantizeLinear)",
        )
    _state(imp).pending[node.output[0]] = (q, (label,))
    return step.value


@onnx_handler("Clip")
def clip(imp: Importer, step: Step) -> Value:
    """QCDQ's Clip narrows the integers of a QuantizeLinear (fewer than 8 bits)."""
    node, label = step.node, step.label
    st = _state(imp)
    held = st.pending.pop(node.input[0], None)
    if held is None:
        raise unsupported(
            label,
            "Clip",
            "Clip of a float tensor is not supported (only QuantizeLinear -> Clip ->"
            " DequantizeLinear)",
        )
    q, nodes = held
    lo = const_arg(imp, node, label, 1, "min") if len(node.input) > 1 else attr(node, "min")
    hi = const_arg(imp, node, label, 2, "max") if len(node.input) > 2 else attr(node, "max")
    qmin = max(q.qmin, int(np.min(lo))) if lo is not None else q.qmin
    qmax = min(q.qmax, int(np.max(hi))) if hi is not None else q.qmax
    if qmin > qmax:
        raise unsupported(label, "Clip", f"clips to an empty range [{qmin}, {qmax}]")
    st.pending[node.output[0]] = (dataclasses.replace(q, qmin=qmin, qmax=qmax), (*nodes, label))
    return step.value


@onnx_handler("DequantizeLinear")
def dequantize_linear(imp: Importer, step: Step) -> Value:
    node, label = step.node, step.label
    held = _state(imp).pending.pop(node.input[0], None)
    if held is None:
        raise unsupported(
            label,
            "DequantizeLinear",
            "dequantizes a tensor no QuantizeLinear made (nnlcc takes float inputs)",
        )
    q, nodes = held
    mine = _act_from_qdq(imp, node, label)
    if (mine.scale, mine.zero_point) != (q.scale, q.zero_point):
        raise unsupported(
            label,
            "DequantizeLinear",
            f"scale {mine.scale:g} and zero point {mine.zero_point} differ from its"
            f" QuantizeLinear's ({q.scale:g}, {q.zero_point})",
        )
    return _attach(imp, step, dataclasses.replace(q, nodes=(*nodes, label)))


def _attach(imp: Importer, step: Step, q: ActQuant) -> Value:
    """The quantizer ``q`` on the graph input or on a matrix layer's output."""
    v, node, label = step.value, step.node, step.label
    st = _state(imp)
    if v.layer is None:
        if st.input is not None or not imp.sole_reader(imp.input_name):
            raise unsupported(
                label, node.op_type, "the input must be read by this one quantizer only"
            )
        st.input = q
        st.act[v.ir] = q
        return v
    layer = v.layer
    if not isinstance(layer, MatrixLayer) or v.ir != layer.name:
        raise unsupported(
            label,
            node.op_type,
            f"a quantizer after a {layer.kind} layer is not supported (only on the input and"
            " after Gemm, MatMul or Conv, their bias and Relu)",
        )
    if not imp.sole_reader(node.input[0]):
        raise unsupported(
            label, node.op_type, f"'{node.input[0]}' is also read before this quantizer"
        )
    facts = _facts(layer)
    if facts.output is not None:
        raise unsupported(
            label,
            node.op_type,
            f"layer {layer.name} already has the quantizer '{facts.output.nodes[0]}'; two"
            " quantizers in a row are not supported",
        )
    facts.output = q
    facts.fold(*q.nodes)
    st.act[v.ir] = q
    return dataclasses.replace(v, open=False, relu_ok=True)


# --------------------------------------------------------------------------- layer hooks


def attach_matrix(
    imp: Importer,
    layer: MatrixLayer,
    v: Value,
    weight: QuantConst | None,
    bias_tensor: str | None,
) -> None:
    """Facts of a new Gemm, MatMul or Conv layer reading ``v``: the input's quantizer, the
    imported integers of ``weight`` (already arranged like ``layer.weight``, rows = outputs),
    the nodes behind its bias; nothing for a float layer of a float model."""
    st = imp.state.get("quant")
    q_in = st.act.get(v.ir) if isinstance(st, _State) else None
    if weight is None and q_in is None:
        if bias_tensor:
            _bias_nodes(imp, layer, bias_tensor, None)
        return
    facts = _facts(layer)
    if isinstance(st, _State) and v.ir == imp.input_name and st.input is not None:
        facts.input = st.input
        facts.fold(*st.input.nodes)
        st.input_taken = True
    h = q_in.gain if q_in is not None else 1.0
    if weight is None:
        layer.weight = layer.weight * h  # float weights take the input's gain
        if bias_tensor:
            _bias_nodes(imp, layer, bias_tensor, facts)
        return
    check_weight(weight)
    scale = np.asarray(weight.scale, dtype=np.float64)
    if scale.ndim != 2 or not np.all(scale == scale[:, :1]):
        raise unsupported(
            weight.nodes[0],
            weight.op,
            "weight scales vary along the input axis; only per-tensor or per-output-channel"
            " scales fold into a layer",
        )
    rows = scale[:, 0]
    parts = [split_scale(float(s)) for s in rows]
    fracs = np.array([f for _, f in parts], dtype=np.int64)
    top = int(fracs.max())
    if top - int(fracs.min()) > MAX_SCALE_SPREAD:
        raise unsupported(
            weight.nodes[0],
            weight.op,
            f"per-channel weight scales span more than 2^{MAX_SCALE_SPREAD}",
        )
    ints = np.asarray(weight.ints, dtype=np.int64) << (top - fracs)[:, None]
    gains = np.array([g for g, _ in parts]) * h
    bias_true = layer.bias
    layer.weight = np.ldexp(ints.astype(np.float64), -top)
    if np.any(gains != 1.0):
        facts.gain = tuple(float(g) for g in gains)
        layer.bias = bias_true / gains
    per_tensor = bool(np.all(rows == rows[0]))
    facts.weight = WeightQuant(
        bits=weight.bits,
        signed=weight.signed,
        narrow=weight.narrow,
        frac=top,
        scales=(float(rows[0]),) if per_tensor else tuple(float(s) for s in rows),
        nodes=weight.nodes,
    )
    facts.fold(*weight.nodes)
    if bias_tensor:
        _bias_nodes(imp, layer, bias_tensor, facts)


def _bias_nodes(
    imp: Importer, layer: MatrixLayer, tensor: str, facts: ImportedQuant | None
) -> None:
    """Record the quantizer behind a bias (its nodes fold into the layer), or note a float
    bias of an imported layer (the model adds it in float32: not integer-exact)."""
    got = trace(imp, tensor)
    if got is not None:
        _facts(layer).fold(*got.nodes)
    elif facts is not None and np.any(layer.bias != 0):
        note = f"float bias '{tensor}'"
        if note not in facts.caveats:
            facts.caveats.append(note)


def add_bias(imp: Importer, layer: MatrixLayer, b: np.ndarray, tensor: str) -> np.ndarray:
    """What a constant bias Add after ``layer`` adds to its IR bias (the bias divided by the
    layer's gains), recording the quantizer behind it."""
    facts = layer.notes.get(ImportedQuant)
    if facts is None:
        return b
    out = b / np.asarray(facts.gain) if facts.gain else b
    got = trace(imp, tensor)
    if got is not None:
        facts.fold(*got.nodes)
    elif np.any(b != 0):
        facts.caveats.append(f"float bias '{tensor}'")
    return out


def fold_batchnorm(layer: MatrixLayer, s: np.ndarray, shift: np.ndarray, label: str) -> bool:
    """Fold a BatchNormalization (``y * s + shift``) into an imported layer's gains and bias,
    keeping its integers; False for other layers (their weights take ``s``)."""
    facts = layer.notes.get(ImportedQuant)
    if facts is None or facts.weight is None:
        return False
    gains = np.asarray(facts.gain) if facts.gain else np.ones(layer.shape[0])
    sign = np.where(s < 0, -1.0, 1.0)
    layer.weight = layer.weight * sign[:, None]  # exact: a sign flip of the integers
    new = gains * np.abs(s)
    layer.bias = sign * layer.bias + shift / new
    facts.gain = tuple(float(g) for g in new) if np.any(new != 1.0) else ()
    facts.fold(label)
    facts.caveats.append(f"BatchNormalization '{label}' folded into the scales")
    return True
