"""Reading quantizer nodes: QONNX ``Quant`` and ``BipolarQuant``, ONNX ``QuantizeLinear`` and
``DequantizeLinear``, and the ``Clip`` Brevitas writes between them below 8 bits (QCDQ).

On constants (weights, biases) they are folded here, in numpy, as qonnx and onnxruntime
compute them (``x / scale`` in the input's float type, the node's rounding, saturation), and
:func:`trace` recovers the exact integers and scales behind a weight, through the cheap ops
exporters write between a quantizer and its layer (Identity, Transpose, Squeeze, ...).
The data-path handlers are in :mod:`.quant`.  Every refusal is one line naming the node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx

from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.nodes import attr, node_label, unsupported
from nnlcc.frontends.onnx.registry import lookup, onnx_folder
from nnlcc.ir.imported import MAX_BITS

__all__ = [
    "QUANTIZERS",
    "QuantConst",
    "check_weight",
    "const_arg",
    "int_range",
    "quant_args",
    "trace",
]

#: Ops that quantize (the tracer's sources) and the reorderings it follows back from a layer.
QUANTIZERS = frozenset({"Quant", "BipolarQuant", "DequantizeLinear"})
_REORDER = frozenset({"Identity", "Transpose", "Squeeze", "Unsqueeze", "Cast"})

#: Widest bias quantizer folded (biases are constants of the requantization, not data).
MAX_BIAS_BITS = 32

_INT_TYPES: dict[int, tuple[int, int]] = {
    onnx.TensorProto.INT8: (-128, 127),
    onnx.TensorProto.UINT8: (0, 255),
    onnx.TensorProto.INT16: (-(2**15), 2**15 - 1),
    onnx.TensorProto.UINT16: (0, 2**16 - 1),
    onnx.TensorProto.INT4: (-8, 7),
    onnx.TensorProto.UINT4: (0, 15),
    onnx.TensorProto.INT32: (-(2**31), 2**31 - 1),
}


def const_arg(imp: Importer, node: onnx.NodeProto, label: str, pos: int, role: str) -> Any:
    """Input ``pos`` of a quantizer, which must be a constant (static quantization)."""
    name = node.input[pos] if pos < len(node.input) else ""
    if not name:
        return None
    if name in imp.consts:
        return imp.consts[name]
    raise unsupported(
        label,
        node.op_type,
        f"{role} '{name}' is computed, not a constant; nnlcc maps only static quantizers"
        " (constant scale, zero point and bit width)",
    )


def int_range(label: str, op: str, a: np.ndarray) -> tuple[int, int]:
    """The integer range of an ONNX integer tensor's element type (int8, uint8, int4, ...)."""
    try:
        t = onnx.helper.np_dtype_to_tensor_dtype(a.dtype)
    except (KeyError, ValueError, TypeError):
        t = None
    if t not in _INT_TYPES:
        raise unsupported(label, op, f"element type {a.dtype} is not an integer type nnlcc maps")
    return _INT_TYPES[t]


def _positive_scale(label: str, op: str, s: np.ndarray) -> np.ndarray:
    s = np.asarray(s)
    if s.size == 0 or not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise unsupported(label, op, "scale must be positive and finite")
    return s


def _integral(label: str, op: str, what: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
        bad = a[~(np.isfinite(a) & (a == np.round(a)))].ravel()[:1]
        raise unsupported(label, op, f"{what} {bad[0]:g} is not an integer")
    return a.astype(np.int64)


@dataclass(frozen=True)
class QuantArgs:
    """A QONNX ``Quant``'s settings: clamp ``[qmin, qmax]`` after adding the zero point."""

    scale: np.ndarray
    zero_point: np.ndarray  # integers
    bits: int
    signed: bool
    narrow: bool
    rounding: str
    bipolar: bool

    @property
    def qmin(self) -> int:
        if self.bipolar:
            return -1
        if not self.signed:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.narrow else 0)

    @property
    def qmax(self) -> int:
        if self.bipolar:
            return 1
        if not self.signed:
            return 2**self.bits - 1 - (1 if self.narrow else 0)
        return 2 ** (self.bits - 1) - 1


def quant_args(
    node: onnx.NodeProto, label: str, args: list[Any], max_bits: int = MAX_BIAS_BITS
) -> QuantArgs:
    """The settings of a ``Quant`` or ``BipolarQuant`` from its (constant) inputs ``args``."""
    op = node.op_type
    scale = _positive_scale(label, op, args[1])
    if op == "BipolarQuant":
        return QuantArgs(scale, np.zeros(1, np.int64), 1, True, False, "ROUND", True)
    if len(args) < 4 or args[2] is None or args[3] is None:
        raise unsupported(label, op, "needs scale, zero point and bit width inputs")
    zp = _integral(label, op, "zero point", args[2])
    bw = np.asarray(args[3], dtype=np.float64)
    if bw.size != 1:
        raise unsupported(label, op, "bit width must be a scalar")
    bits = int(_integral(label, op, "bit width", bw.reshape(()))[()])
    if not 1 <= bits <= max_bits:
        raise unsupported(label, op, f"bit width {bits} is outside 1..{max_bits}")
    signed = bool(attr(node, "signed", 1))
    narrow = bool(attr(node, "narrow", 0))
    mode = attr(node, "rounding_mode", b"ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    # qonnx: a 1-bit signed Quant is bipolar
    return QuantArgs(scale, zp, bits, signed, narrow, mode.upper(), bits == 1 and signed)


_ROUND: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ROUND": np.round,
    "HALF_EVEN": np.round,
    "FLOOR": np.floor,
    "CEIL": np.ceil,
    "DOWN": np.fix,
    "UP": lambda y: np.sign(y) * np.ceil(np.abs(y)),
    "HALF_UP": lambda y: np.sign(y) * np.floor(np.abs(y) + 0.5),
    "HALF_DOWN": lambda y: np.sign(y) * np.ceil(np.abs(y) - 0.5),
}


def quant_ints(node: onnx.NodeProto, label: str, x: np.ndarray, q: QuantArgs) -> np.ndarray:
    """The centered integers ``q - zero_point`` a Quant gives on constant ``x`` (qonnx's
    arithmetic: ``x / scale + zero_point`` in x's float type, clamp, round)."""
    if q.bipolar:
        return np.where(np.asarray(x) >= 0, 1, -1).astype(np.int64)
    fn = _ROUND.get(q.rounding)
    if fn is None:
        raise unsupported(label, node.op_type, f"rounding_mode {q.rounding} is unknown")
    xa = np.asarray(x)
    if not np.issubdtype(xa.dtype, np.floating):
        xa = xa.astype(np.float32)
    y = xa / q.scale.astype(xa.dtype) + q.zero_point.astype(xa.dtype)
    y = np.clip(y, q.qmin, q.qmax)
    return fn(y).astype(np.int64) - q.zero_point


def _axis_shape(scale: np.ndarray, axis: int, rank: int) -> np.ndarray:
    """A per-axis QDQ scale or zero point reshaped to broadcast along ``axis``."""
    a = np.asarray(scale)
    if a.ndim == 0 or rank == 0:
        return a
    if a.ndim != 1:
        return a
    ax = axis + rank if axis < 0 else axis
    shape = [1] * rank
    shape[ax] = a.shape[0]
    return a.reshape(shape)


def _qdq_parts(
    node: onnx.NodeProto, label: str, args: list[Any], rank: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Scale, zero point (broadcastable) and integer range of a QuantizeLinear or
    DequantizeLinear (the range from the zero point's type; uint8 without one)."""
    op = node.op_type
    if attr(node, "block_size", 0):
        raise unsupported(label, op, "blocked quantization (block_size) is not supported")
    scale = _positive_scale(label, op, np.asarray(args[1]))
    zp = args[2] if len(args) > 2 else None
    if zp is None:
        out_t = int(attr(node, "output_dtype", 0) or onnx.TensorProto.UINT8)
        if op == "DequantizeLinear":
            rng = int_range(label, op, np.asarray(args[0]))
        elif out_t in _INT_TYPES:
            rng = _INT_TYPES[out_t]
        else:
            raise unsupported(label, op, f"output type {out_t} is not an integer type nnlcc maps")
        zp_a = np.zeros(1, dtype=np.int64)
    else:
        rng = int_range(label, op, np.asarray(zp))
        zp_a = np.asarray(zp).astype(np.int64)
    axis = int(attr(node, "axis", 1))
    return _axis_shape(scale, axis, rank), _axis_shape(zp_a, axis, rank), rng


def quantize_linear_ints(
    node: onnx.NodeProto, label: str, args: list[Any]
) -> tuple[np.ndarray, tuple[int, int]]:
    """QuantizeLinear on constants: ``saturate(round_half_even(x / scale) + zp)``."""
    x = np.asarray(args[0])
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    scale, zp, (lo, hi) = _qdq_parts(node, label, args, x.ndim)
    q = np.round(x / scale.astype(x.dtype)).astype(np.int64) + zp
    return np.clip(q, lo, hi), (lo, hi)


@onnx_folder("Quant", "BipolarQuant")
def fold_quant(node: onnx.NodeProto, label: str, args: list[Any]) -> np.ndarray:
    q = quant_args(node, label, args)
    return quant_ints(node, label, args[0], q) * q.scale.astype(np.float64)


@onnx_folder("QuantizeLinear")
def fold_quantize_linear(node: onnx.NodeProto, label: str, args: list[Any]) -> np.ndarray:
    q, _ = quantize_linear_ints(node, label, args)
    return q


@onnx_folder("DequantizeLinear")
def fold_dequantize_linear(node: onnx.NodeProto, label: str, args: list[Any]) -> np.ndarray:
    x = np.asarray(args[0])
    scale, zp, _ = _qdq_parts(node, label, args, x.ndim)
    return (x.astype(np.int64) - zp) * scale.astype(np.float64)


@onnx_folder("Clip")
def fold_clip(node: onnx.NodeProto, label: str, args: list[Any]) -> np.ndarray:
    lo = args[1] if len(args) > 1 else attr(node, "min")
    hi = args[2] if len(args) > 2 else attr(node, "max")
    out = np.asarray(args[0])
    if lo is not None:
        out = np.maximum(out, np.asarray(lo, dtype=out.dtype))
    if hi is not None:
        out = np.minimum(out, np.asarray(hi, dtype=out.dtype))
    return out


# --------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class QuantConst:
    """A constant behind a quantizer: its centered integers and its per-element scale (both
    the tensor's shape), the quantizer's bit width, and the nodes it came through."""

    ints: npt.NDArray[np.int64]
    scale: npt.NDArray[np.float64]
    bits: int
    signed: bool
    narrow: bool
    nodes: tuple[str, ...]
    op: str = "Quant"  # the quantizer's op type

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> QuantConst:
        """The same reordering as the layer's weight: ``fn`` on integers and scales alike."""
        return replace(self, ints=np.asarray(fn(self.ints)), scale=np.asarray(fn(self.scale)))


def _producers(imp: Importer) -> dict[str, tuple[int, onnx.NodeProto]]:
    got = imp.state.get("producers")
    if got is None:
        got = {o: (i, n) for i, n in enumerate(imp.graph.node) for o in n.output if o}
        imp.state["producers"] = got
    return got


def _args(imp: Importer, node: onnx.NodeProto) -> list[Any]:
    return [imp.consts.get(n) if n else None for n in node.input]


def _source(imp: Importer, node: onnx.NodeProto, label: str) -> QuantConst:
    """The integers and scales of a quantizer node on a constant."""
    op = node.op_type
    args = _args(imp, node)
    x = np.asarray(args[0])
    if op in ("Quant", "BipolarQuant"):
        q = quant_args(node, label, args)
        ints = quant_ints(node, label, x, q)
        scale = np.broadcast_to(q.scale.astype(np.float64), x.shape)
        bits = 2 if q.bipolar else q.bits
        return QuantConst(ints, np.array(scale), bits, q.signed, q.narrow, (label,), op)
    # DequantizeLinear of integers: from an initializer, a Clip (QCDQ) or a QuantizeLinear
    scale, zp, (lo, hi) = _qdq_parts(node, label, args, x.ndim)
    nodes: tuple[str, ...] = (label,)
    inner = _producers(imp).get(node.input[0])
    if inner is not None and inner[1].op_type in ("Clip", "QuantizeLinear"):
        index, prev = inner
        prev_label = node_label(prev, index)
        nodes = (prev_label, *nodes)
        prev_args = _args(imp, prev)
        if prev.op_type == "Clip":
            clip_lo = prev_args[1] if len(prev_args) > 1 else None
            clip_hi = prev_args[2] if len(prev_args) > 2 else None
            lo = max(lo, int(np.min(clip_lo))) if clip_lo is not None else lo
            hi = min(hi, int(np.max(clip_hi))) if clip_hi is not None else hi
            grand = _producers(imp).get(prev.input[0])
            if grand is not None and grand[1].op_type == "QuantizeLinear":
                nodes = (node_label(grand[1], grand[0]), *nodes)
    ints = x.astype(np.int64) - zp
    bits, signed, narrow = _width(lo, hi)
    full = np.broadcast_to(scale.astype(np.float64), x.shape)
    return QuantConst(ints, np.array(full), bits, signed, narrow, nodes, op)


def _width(lo: int, hi: int) -> tuple[int, bool, bool]:
    """Bit width, signedness and narrowness of the integer range ``[lo, hi]`` (before the
    zero point), as a QONNX quantizer would name it."""
    signed = lo < 0
    if signed:
        bits = max((-lo - 1).bit_length(), hi.bit_length()) + 1
        narrow = lo == -hi
    else:
        bits = max(hi.bit_length(), 1)
        narrow = False
    return bits, signed, narrow


def trace(imp: Importer, name: str) -> QuantConst | None:
    """The integers behind constant tensor ``name`` when a quantizer made it (None: a plain
    float constant).  A quantized constant reaching ``name`` through an op whose effect on
    the integers nnlcc cannot follow is refused, naming that op."""
    memo: dict[str, QuantConst | None] = imp.state.setdefault("traced", {})
    if name not in memo:
        memo[name] = _trace(imp, name)
    return memo[name]


def _trace(imp: Importer, name: str) -> QuantConst | None:
    got = _producers(imp).get(name)
    if got is None:
        return None
    index, node = got
    label = node_label(node, index)
    op = node.op_type
    if op in QUANTIZERS:
        return _source(imp, node, label)
    if op not in _REORDER:
        if any(n and _quantized(imp, n) for n in node.input):
            raise unsupported(
                label,
                op,
                "a quantized weight passes through this op; nnlcc cannot keep its integers"
                " (fold it into the quantizer when exporting)",
            )
        return None
    inner = trace(imp, node.input[0])
    if inner is None:
        return None
    if op == "Cast":
        return replace(inner, nodes=(*inner.nodes, label))
    entry = lookup(op)
    assert entry is not None and entry.folder is not None
    folder = entry.folder
    rest = [r for r in _args(imp, node)[1:] if r is not None]
    mapped = inner.map(lambda a: folder(node, label, [a, *rest]))
    return replace(mapped, nodes=(*mapped.nodes, label))


def _quantized(imp: Importer, name: str) -> bool:
    """Whether a quantizer feeds constant ``name`` (through any ops)."""
    seen: set[str] = set()
    todo = [name]
    producers = _producers(imp)
    while todo:
        t = todo.pop()
        if t in seen or t not in producers:
            continue
        seen.add(t)
        node = producers[t][1]
        if node.op_type in QUANTIZERS or node.op_type == "QuantizeLinear":
            return True
        todo.extend(n for n in node.input if n)
    return False


def check_weight(q: QuantConst) -> None:
    """A weight quantizer nnlcc maps: at most :data:`MAX_BITS` bits (named by its node)."""
    if q.bits > MAX_BITS:
        raise unsupported(
            q.nodes[0], q.op, f"bit width {q.bits} of a weight is above {MAX_BITS}; not supported"
        )
