"""Quantizers nnlcc cannot map exactly are refused with one line naming the node and the
reason (never a silent float fallback); ``inspect`` marks the same node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from quant_models import QONNX, const, model, qdq_mlp, quant, save

from nnlcc.errors import UnsupportedModelError
from nnlcc.frontends import inspect_onnx, load_onnx

W = np.random.default_rng(0).normal(size=(4, 6))


def _base(
    act: onnx.NodeProto | None = None, extra: list[onnx.TensorProto] | None = None
) -> onnx.ModelProto:
    """x -> Quant(in) -> Gemm(Quant(W)) -> [act quantizer on 'h' giving 'y'] (else y = h)."""
    inits = [
        const("s", 2.0**-3),
        const("z", 0.0),
        const("b8", 8),
        const("W", W),
        *(extra or []),
    ]
    nodes = [
        quant("x", "xq", "s", "z", "b8", name="in_q"),
        quant("W", "Wq", "s", "z", "b8", narrow=1, name="w_q"),
        helper.make_node("Gemm", ["xq", "Wq"], ["h" if act else "y"], name="fc", transB=1),
    ]
    if act is not None:
        nodes.append(act)
    return model(nodes, inits, 6, 4, qonnx=True)


def _act(**kw: object) -> onnx.NodeProto:
    return quant("h", "y", "s_a", "z_a", "b_a", name="act_q", **kw)  # type: ignore[arg-type]


def computed_scale() -> onnx.ModelProto:
    m = _base(_act(), [const("z_a", 0.0), const("b_a", 4), const("one", 1.0), const("k", 8.0)])
    m.graph.node.insert(0, helper.make_node("Div", ["one", "k"], ["s_a"], name="div"))
    return m


def float_zero_point() -> onnx.ModelProto:
    return _base(_act(), [const("s_a", 0.25), const("z_a", 0.5), const("b_a", 4)])


def rounding_up() -> onnx.ModelProto:
    return _base(_act(rounding="UP"), [const("s_a", 0.25), const("z_a", 0.0), const("b_a", 4)])


def act_25_bits() -> onnx.ModelProto:
    return _base(_act(), [const("s_a", 0.25), const("z_a", 0.0), const("b_a", 25)])


def weight_28_bits() -> onnx.ModelProto:
    m = _base(None, [const("b28", 28)])
    m.graph.node[1].input[3] = "b28"
    return m


def per_channel_act() -> onnx.ModelProto:
    return _base(
        _act(), [const("s_a", [0.25, 0.5, 0.25, 0.25]), const("z_a", 0.0), const("b_a", 4)]
    )


def negative_scale() -> onnx.ModelProto:
    return _base(_act(), [const("s_a", -0.25), const("z_a", 0.0), const("b_a", 4)])


def two_in_a_row() -> onnx.ModelProto:
    m = _base(_act(), [const("s_a", 0.25), const("z_a", 0.0), const("b_a", 4)])
    m.graph.node[-1].output[0] = "h2"
    m.graph.node.append(quant("h2", "y", "s_a", "z_a", "b_a", name="act_q2"))
    return m


def scale_along_inputs() -> onnx.ModelProto:
    m = _base(None, [const("s_cols", 2.0 ** -np.arange(3, 9).reshape(1, 6))])
    m.graph.node[1].input[1] = "s_cols"
    return m


def quantizer_after_add() -> onnx.ModelProto:
    inits = [const("s", 2.0**-3), const("z", 0.0), const("b8", 8), const("W", W), const("V", W)]
    nodes = [
        helper.make_node("Gemm", ["x", "W"], ["a"], name="fa", transB=1),
        helper.make_node("Gemm", ["x", "V"], ["b"], name="fb", transB=1),
        helper.make_node("Add", ["a", "b"], ["c"], name="add"),
        quant("c", "y", "s", "z", "b8", name="after_add"),
    ]
    return model(nodes, inits, 6, 4, qonnx=True)


def gain_into_add() -> onnx.ModelProto:
    inits = [const("s", 0.3), const("z", 0.0), const("b8", 8), const("W", W), const("V", W)]
    nodes = [
        helper.make_node("Gemm", ["x", "W"], ["a"], name="fa", transB=1),
        quant("a", "aq", "s", "z", "b8", name="qa"),
        helper.make_node("Gemm", ["x", "V"], ["b"], name="fb", transB=1),
        quant("b", "bq", "s", "z", "b8", name="qb"),
        helper.make_node("Add", ["aq", "bq"], ["y"], name="add"),
    ]
    return model(nodes, inits, 6, 4, qonnx=True)


def weight_through_concat() -> onnx.ModelProto:
    inits = [const("s", 2.0**-3), const("z", 0.0), const("b8", 8), const("Wa", W[:2]),
             const("Wb", W[2:])]  # fmt: skip
    nodes = [
        quant("Wa", "Waq", "s", "z", "b8", name="qa"),
        quant("Wb", "Wbq", "s", "z", "b8", name="qb"),
        helper.make_node("Concat", ["Waq", "Wbq"], ["Wq"], name="cat", axis=0),
        helper.make_node("Gemm", ["x", "Wq"], ["y"], name="fc", transB=1),
    ]
    return model(nodes, inits, 6, 4, qonnx=True)


def float_clip() -> onnx.ModelProto:
    inits = [const("W", W), const("lo", 0.0), const("hi", 6.0)]
    nodes = [
        helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
        helper.make_node("Clip", ["h", "lo", "hi"], ["y"], name="relu6"),
    ]
    return model(nodes, inits, 6, 4)


def _qdq_edit(edit: Callable[[onnx.ModelProto], None]) -> Callable[[], onnx.ModelProto]:
    def make() -> onnx.ModelProto:
        m = qdq_mlp()
        edit(m)
        return m

    return make


def _dq_scale_differs(m: onnx.ModelProto) -> None:
    m.graph.initializer.append(const("s_other", 2.0**-5))
    next(n for n in m.graph.node if n.name == "act_dq").input[1] = "s_other"


def _two_readers(m: onnx.ModelProto) -> None:
    """A second DequantizeLinear of the activation's integers feeds fc2 instead."""
    at = next(i for i, n in enumerate(m.graph.node) if n.name == "act_dq")
    m.graph.node.insert(at + 1, helper.make_node("DequantizeLinear", ["aq", "s_a", "zp_a"], ["a2"]))
    next(n for n in m.graph.node if n.name == "fc2").input[0] = "a2"


def _blocked(m: onnx.ModelProto) -> None:
    m.opset_import[0].version = 21
    node = next(n for n in m.graph.node if n.name == "act_q")
    node.attribute.append(helper.make_attribute("block_size", 2))


def quantized_input_into_pool() -> onnx.ModelProto:
    inits = [const("s", 2.0**-3), const("z", 0.0), const("b8", 8)]
    nodes = [
        quant("x", "xq", "s", "z", "b8", name="in_q"),
        helper.make_node("GlobalAveragePool", ["xq"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["y"], name="flat"),
    ]
    graph = helper.make_graph(
        nodes,
        "q",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 2, 3, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 2])],
        inits,
    )
    m = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid(QONNX, 1)]
    )
    m.ir_version = 9
    return m


CASES = [
    (computed_scale, "act_q", "scale 's_a' is computed, not a constant"),
    (float_zero_point, "act_q", "zero point 0.5 is not an integer"),
    (rounding_up, "act_q", "rounding_mode UP is not supported on activations"),
    (act_25_bits, "act_q", "bit width 25 is outside 1..24"),
    (weight_28_bits, "w_q", "bit width 28 of a weight is above 24"),
    (per_channel_act, "act_q", "per-channel activation scales are not supported"),
    (negative_scale, "act_q", "scale must be positive and finite"),
    (two_in_a_row, "act_q2", "two quantizers in a row are not supported"),
    (scale_along_inputs, "w_q", "weight scales vary along the input axis"),
    (quantizer_after_add, "after_add", "a quantizer after a add layer is not supported"),
    (gain_into_add, "qa", "is not a power of two and the tensor is read by add layer"),
    (weight_through_concat, "cat", "a quantized weight passes through this op"),
    (float_clip, "relu6", "Clip of a float tensor is not supported"),
    (_qdq_edit(_dq_scale_differs), "act_dq", "differ from its QuantizeLinear's"),
    (_qdq_edit(_two_readers), "act_q", "must go to one DequantizeLinear"),
    (_qdq_edit(_blocked), "act_q", "blocked quantization (block_size) is not supported"),
    (quantized_input_into_pool, "in_q", "the quantized input must be read by a Gemm"),
]


@pytest.mark.parametrize(("make", "node", "reason"), CASES, ids=[c[0].__name__ for c in CASES])
def test_refusal_is_one_line_naming_the_node(
    tmp_path: Path, make: Callable[[], onnx.ModelProto], node: str, reason: str
) -> None:
    path = save(make(), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"node '{node}' ("), msg
    assert reason in msg, msg
    rows = {r["name"]: r for r in inspect_onnx(path)}
    assert rows[node]["supported"] is False and reason in rows[node]["reason"]
