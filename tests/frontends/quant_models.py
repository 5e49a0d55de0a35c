"""Small quantized models built with onnx.helper: QONNX (``Quant``, ``BipolarQuant``) and ONNX
QDQ/QCDQ (``QuantizeLinear``, ``Clip``, ``DequantizeLinear``), and the check every test of
them makes: the golden model equals the model's own arithmetic (onnxruntime; qonnx for QONNX)
bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nnlcc.frontends import load_model, onnx_reference
from nnlcc.ir.family import ECP5
from nnlcc.ir.lower import lower_network
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import MatrixGraph
from nnlcc.passes import resolve_pipeline, run_passes

QONNX = "qonnx.custom_op.general"


def const(name: str, a: Any, dtype: Any = np.float32) -> TensorProto:
    return numpy_helper.from_array(np.asarray(a, dtype=dtype), name)


def quant(
    x: str, out: str, scale: str, zp: str, bits: str, *, signed: int = 1, narrow: int = 0,
    rounding: str = "ROUND", name: str = "",
) -> onnx.NodeProto:  # fmt: skip
    return helper.make_node(
        "Quant",
        [x, scale, zp, bits],
        [out],
        name=name or f"Quant_{out}",
        domain=QONNX,
        signed=signed,
        narrow=narrow,
        rounding_mode=rounding,
    )


def model(
    nodes: list[onnx.NodeProto],
    inits: list[TensorProto],
    n_in: int,
    n_out: int,
    *,
    opset: int = 19,
    qonnx: bool = False,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])],
        inits,
    )
    ops = [helper.make_opsetid("", opset)]
    if qonnx:
        ops.append(helper.make_opsetid(QONNX, 1))
    m = helper.make_model(graph, opset_imports=ops)
    m.ir_version = 9
    return m


def save(m: onnx.ModelProto, path: Path) -> Path:
    onnx.save(m, str(path))
    return path


def qonnx_mlp(
    sizes: tuple[int, int, int] = (8, 6, 4),
    *,
    seed: int = 0,
    w_bits: int = 4,
    act_bits: int = 4,
    act_rounding: str = "ROUND",
    act_scale: float = 2.0**-3,
    w2_scale: Any = None,
    in_zp: int = 0,
    act_zp: int = 0,
) -> onnx.ModelProto:
    """x -> Quant(s8, 2^-4) -> Gemm(Quant(W) per-channel 2^-k, Quant(b)) -> Relu ->
    Quant(u act_bits) -> MatMul(Quant(W2)) -> Add(Quant(b2)) -> y (float); ``in_zp`` and
    ``act_zp`` are the zero points of the input and activation quantizers."""
    rng = np.random.default_rng(seed)
    n0, n1, n2 = sizes
    s_in = 2.0**-4
    s_w = 2.0 ** -(2 + np.arange(n1) % 3)
    w2s = np.asarray(2.0**-3 if w2_scale is None else w2_scale, dtype=np.float32)
    inits = [
        const("s_in", s_in),
        const("z", 0.0),
        const("z_in", in_zp),
        const("z_a", act_zp),
        const("b8", 8),
        const("bw", w_bits),
        const("ba", act_bits),
        const("b16", 16),
        const("W1", rng.normal(size=(n1, n0)) * 0.5),
        const("s_w", s_w.reshape(n1, 1)),
        const("B1", rng.normal(size=n1) * 0.3),
        const("s_b1", s_in * s_w),
        const("s_a", act_scale),
        const("W2", rng.normal(size=(n1, n2)) * 0.5),
        const("s_w2", w2s),
        const("B2", rng.normal(size=n2) * 0.3),
        const("s_b2", np.float32(act_scale) * w2s),
    ]
    nodes = [
        quant("x", "xq", "s_in", "z_in", "b8", name="in_quant"),
        quant("W1", "W1q", "s_w", "z", "bw", narrow=1, name="w1_quant"),
        quant("B1", "B1q", "s_b1", "z", "b16", name="b1_quant"),
        helper.make_node("Gemm", ["xq", "W1q", "B1q"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu1"),
        quant("r", "rq", "s_a", "z_a", "ba", signed=0, rounding=act_rounding, name="act_quant"),
        quant("W2", "W2q", "s_w2", "z", "bw", narrow=1, name="w2_quant"),
        helper.make_node("MatMul", ["rq", "W2q"], ["m"], name="fc2"),
        quant("B2", "B2q", "s_b2", "z", "b16", name="b2_quant"),
        helper.make_node("Add", ["m", "B2q"], ["y"], name="fc2_bias"),
    ]
    return model(nodes, inits, n0, n2, qonnx=True)


def qdq_mlp(
    sizes: tuple[int, int, int] = (8, 6, 4),
    *,
    seed: int = 0,
    s_in: float = 2.0**-4,
    s_act: float = 2.0**-3,
    s_out: float = 2.0**-2,
    act_clip: int | None = None,
    s_w: Any = None,
) -> onnx.ModelProto:
    """x -> Q/DQ(uint8, zero point 128) -> Gemm(DQ(int8 W, per-channel), DQ(int32 b)) -> Relu
    -> Q[/Clip]/DQ(uint8) -> MatMul(DQ(int8 W2, per-column)) -> Add(DQ(b2)) -> Q/DQ(int8,
    zero point 3) -> y.  ``act_clip``: QCDQ's Clip to ``[0, act_clip]``."""
    rng = np.random.default_rng(seed)
    n0, n1, n2 = sizes
    sw = np.asarray(2.0 ** -(3 + np.arange(n1) % 2) if s_w is None else s_w, np.float32)
    sw2 = (2.0 ** -(3 + np.arange(n2) % 3)).astype(np.float32)
    w1 = rng.integers(-127, 128, size=(n1, n0))
    w2 = rng.integers(-127, 128, size=(n1, n2))
    sb1 = np.float32(s_in) * sw
    sb2 = np.float32(s_act) * sw2
    inits = [
        const("s_in", s_in),
        const("zp_in", 128, np.uint8),
        const("W1", w1, np.int8),
        const("s_w1", sw),
        const("B1", rng.integers(-2000, 2000, size=n1), np.int32),
        const("s_b1", sb1),
        const("s_a", s_act),
        const("zp_a", 0, np.uint8),
        const("W2", w2, np.int8),
        const("s_w2", sw2),
        const("B2", rng.integers(-2000, 2000, size=n2), np.int32),
        const("s_b2", sb2),
        const("s_out", s_out),
        const("zp_out", 3, np.int8),
    ]
    act_q = "aq"
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s_in", "zp_in"], ["xq"], name="in_q"),
        helper.make_node("DequantizeLinear", ["xq", "s_in", "zp_in"], ["xd"], name="in_dq"),
        helper.make_node("DequantizeLinear", ["W1", "s_w1"], ["W1d"], name="w1_dq", axis=0),
        helper.make_node("DequantizeLinear", ["B1", "s_b1"], ["B1d"], name="b1_dq", axis=0),
        helper.make_node("Gemm", ["xd", "W1d", "B1d"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu1"),
        helper.make_node("QuantizeLinear", ["r", "s_a", "zp_a"], [act_q], name="act_q"),
    ]
    if act_clip is not None:
        inits += [const("c_lo", 0, np.uint8), const("c_hi", act_clip, np.uint8)]
        nodes.append(helper.make_node("Clip", [act_q, "c_lo", "c_hi"], ["ac"], name="act_clip"))
        act_q = "ac"
    nodes += [
        helper.make_node("DequantizeLinear", [act_q, "s_a", "zp_a"], ["ad"], name="act_dq"),
        helper.make_node("DequantizeLinear", ["W2", "s_w2"], ["W2d"], name="w2_dq", axis=1),
        helper.make_node("MatMul", ["ad", "W2d"], ["m"], name="fc2"),
        helper.make_node("DequantizeLinear", ["B2", "s_b2"], ["B2d"], name="b2_dq", axis=0),
        helper.make_node("Add", ["m", "B2d"], ["o"], name="fc2_bias"),
        helper.make_node("QuantizeLinear", ["o", "s_out", "zp_out"], ["oq"], name="out_q"),
        helper.make_node("DequantizeLinear", ["oq", "s_out", "zp_out"], ["y"], name="out_dq"),
    ]
    return model(nodes, inits, n0, n2)


def dyadic_inputs(n: int, cols: int, seed: int = 1, step: float = 2.0**-6) -> np.ndarray:
    """Inputs on a fine power-of-two grid (ties of every rounding occur often), some beyond
    the input quantizer's range (saturation)."""
    rng = np.random.default_rng(seed)
    return rng.integers(-600, 600, size=(n, cols)) * step


def golden(
    path: Path, x: np.ndarray, passes: str = "quantize,auto"
) -> tuple[np.ndarray, LoweredNetwork, MatrixGraph]:
    """The golden model's real outputs of ``path`` (compiled by ``passes``) on ``x``."""
    graph = load_model(path)
    run_passes(graph, resolve_pipeline(passes), x[:64], ECP5)
    net = lower_network(graph)
    return net.output_real(net.evaluate(net.quantize_input(x))), net, graph


def assert_bit_exact(path: Path, x: np.ndarray, passes: str = "quantize,auto") -> MatrixGraph:
    y, _, graph = golden(path, x, passes)
    ref = onnx_reference(path, x)
    diff = np.nonzero(y != ref)
    assert diff[0].size == 0, (
        f"{diff[0].size} outputs differ, first {y[diff][:3]} vs {ref[diff][:3]}"
    )
    return graph
