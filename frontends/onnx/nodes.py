"""Reading one node: its label and attributes, checks on its constants, and the one-line
refusal every op module raises (it names the node, so ``inspect`` can mark that row)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import onnx

from nnlcc.errors import UnsupportedModelError
from nnlcc.frontends.onnx.read import fmt_shape, one_line
from nnlcc.ir.matrix import FloatArray
from nnlcc.ir.window import Window

__all__ = [
    "attr",
    "bias_vector",
    "channel_vector",
    "check_finite",
    "layer_name",
    "node_label",
    "node_window",
    "pair",
    "unsupported",
]


def node_label(node: onnx.NodeProto, index: int) -> str:
    """The node's name, or ``Op_index`` for the unnamed nodes older exporters write."""
    return node.name or f"{node.op_type}_{index}"


def unsupported(label: str, op: str, what: str) -> UnsupportedModelError:
    """An error whose single line names the node; ``node`` lets ``inspect_onnx`` mark the row."""
    err = UnsupportedModelError(f"node '{label}' ({op}): {one_line(what)}")
    err.node = label  # type: ignore[attr-defined]
    return err


def attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def layer_name(label: str, op: str, taken: set[str], index: int, kind: str = "dense") -> str:
    """A Verilog/Python-safe, unique layer name derived from the ONNX node name.

    Torch names nodes ``/fc1/Gemm`` (module path, then op): the module path is the useful part.
    """
    parts = [p for p in label.split("/") if p]
    if len(parts) > 1 and parts[-1].startswith(op):
        parts = parts[:-1]
    name = re.sub(r"[^0-9A-Za-z_]+", "_", "_".join(parts)).strip("_") or f"{kind}{index}"
    if name[0].isdigit():
        name = f"l{name}"
    base, k = name, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def check_finite(label: str, op: str, what: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        raise unsupported(label, op, f"{what} contains NaN or Inf values")


def bias_vector(label: str, op: str, c: np.ndarray, rows: int) -> FloatArray:
    """A bias broadcastable to (1, rows), as a vector; per-batch-row biases are not a layer."""
    c = np.asarray(c, dtype=np.float64)
    try:
        ok = c.ndim <= 2 and np.broadcast_shapes(c.shape, (1, rows)) == (1, rows)
    except ValueError:
        ok = False
    if not ok:
        raise unsupported(
            label, op, f"bias of shape {fmt_shape(list(c.shape))} does not broadcast to ({rows},)"
        )
    return np.array(np.broadcast_to(c, (1, rows))[0], dtype=np.float64)


def channel_vector(label: str, op: str, c: np.ndarray, channels: int) -> FloatArray:
    """A per-channel constant of an image (shape ``(C, 1, 1)``, ``(1, C, 1, 1)``, scalar...)."""
    c = np.asarray(c, dtype=np.float64)
    try:
        ok = c.ndim <= 4 and np.broadcast_shapes(c.shape, (1, channels, 1, 1)) == (
            1,
            channels,
            1,
            1,
        )
    except ValueError:
        ok = False
    if not ok:
        raise unsupported(
            label,
            op,
            f"constant of shape {fmt_shape(list(c.shape))} is not per channel"
            f" ({channels} channels)",
        )
    return np.array(np.broadcast_to(c, (1, channels, 1, 1)).reshape(channels), np.float64)


def pair(label: str, op: str, name: str, v: Any, default: int, n: int = 2) -> tuple[int, ...]:
    vals = tuple(int(a) for a in v) if v is not None else (default,) * n
    if len(vals) != n:
        raise unsupported(label, op, f"{name}={list(vals)} needs {n} values for 2-D images")
    return vals


def node_window(
    node: onnx.NodeProto,
    label: str,
    kernel: tuple[int, int],
    hw: tuple[int, int],
    allowed: set[str],
) -> Window:
    """Kernel, strides and pads of a Conv or pool node; refuses what nnlcc cannot build."""
    op = node.op_type
    for a in node.attribute:
        if a.name not in allowed:
            raise unsupported(label, op, f"attribute {a.name} is not supported")
    dil = pair(label, op, "dilations", attr(node, "dilations"), 1)
    if dil != (1, 1):
        raise unsupported(label, op, f"dilations={list(dil)} is not supported (only 1)")
    strides = pair(label, op, "strides", attr(node, "strides"), 1)
    auto_pad = attr(node, "auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad == "NOTSET":
        pads = pair(label, op, "pads", attr(node, "pads"), 0, 4)
        pads = (pads[0], pads[1], pads[2], pads[3])  # ONNX: begins (t, l), then ends (b, r)
    elif auto_pad == "VALID":
        pads = (0, 0, 0, 0)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        total = [
            max((-(-hw[a] // strides[a]) - 1) * strides[a] + kernel[a] - hw[a], 0) for a in (0, 1)
        ]
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        if auto_pad == "SAME_UPPER":
            pads = (small[0], small[1], big[0], big[1])
        else:
            pads = (big[0], big[1], small[0], small[1])
    else:
        raise unsupported(label, op, f"auto_pad={auto_pad} is not supported")
    if min(pads) < 0 or min(strides) < 1:
        raise unsupported(label, op, f"pads={list(pads)} strides={list(strides)} invalid")
    try:
        win = Window(kernel, (strides[0], strides[1]), pads)
        ho, wo = win.out_hw(*hw)
    except ValueError as e:
        raise unsupported(label, op, str(e)) from e
    if attr(node, "ceil_mode", 0):
        ceil = tuple(
            -(-(hw[a] + pads[a] + pads[a + 2] - kernel[a]) // strides[a]) + 1 for a in (0, 1)
        )
        if ceil != (ho, wo):
            raise unsupported(label, op, "ceil_mode=1 is not supported (changes the size)")
    return win
