"""Lowering: a quantized, coded MatrixGraph becomes a LoweredNetwork of adder graphs.

Each layer's graph reads the previous layer's integers, computes the matrix product with the
layer's code (CSD, LCC, ...) and requantizes every output per :mod:`nnlcc.fixed_point`.
"""

from __future__ import annotations

from nnlcc.adder_graph import AdderGraph
from nnlcc.fixed_point import FixedFormat, requant_plan
from nnlcc.lowered import LoweredLayer, LoweredNetwork
from nnlcc.matrix_ir import DenseLayer, MatrixGraph


def lower_layer(layer: DenseLayer, in_fmt: FixedFormat) -> LoweredLayer:
    if layer.code is None or layer.out_fmt is None:
        raise ValueError(f"layer {layer.name} has no code/format: run quantize and a matrix pass")
    _, cols = layer.shape
    graph = AdderGraph.with_inputs([(in_fmt.lo, in_fmt.hi)] * cols)
    terms = layer.code.lower(graph, list(range(cols)))
    outputs: list[int] = []
    for r, term in enumerate(terms):
        acc_exp = term.exp - in_fmt.frac
        rq = requant_plan(acc_exp, float(layer.bias[r]), layer.out_fmt, layer.relu)
        if term.node is None:
            node = graph.const(rq.const)
        elif rq.const == 0 and not term.neg:
            node = term.node
        else:
            node = graph.add(graph.const(rq.const), term.node, nb=term.neg)
        if rq.shift != 0:
            node = graph.shr(node, rq.shift)
        outputs.append(graph.clamp(node, rq.lo, rq.hi))
    graph.outputs = outputs
    return LoweredLayer(name=layer.name, graph=graph, in_fmt=in_fmt, out_fmt=layer.out_fmt)


def lower_network(graph: MatrixGraph) -> LoweredNetwork:
    if graph.input_fmt is None:
        raise ValueError("graph has no input format: run the quantize pass first")
    layers: list[LoweredLayer] = []
    fmt = graph.input_fmt
    for layer in graph.layers:
        lowered = lower_layer(layer, fmt)
        layers.append(lowered)
        fmt = lowered.out_fmt
    return LoweredNetwork(name=graph.name, input_fmt=graph.input_fmt, layers=layers)
