"""Golden tests: the printed IR (and adder graphs) of one pinned pipeline each for CSD, LCC,
share, conv and pool, checked in.  A pass change shows up as a unified diff of the text;
regenerate with NNLCC_UPDATE_GOLDEN=1 after an intended change, and review the diff."""

from __future__ import annotations

import difflib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from nnlcc.driver import (
    EXAMPLE_MODEL,
    layer_rows,
    load_data,
    load_model,
    resolve_pipeline,
    run_passes,
)
from nnlcc.ir.lower import lower_network
from nnlcc.ir.matrix import (
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    Layer,
    MatrixGraph,
    PoolLayer,
    Window,
    conv_matrix,
)
from nnlcc.ir.text import parse_graph, print_graph
from nnlcc.passes import PassContext, parse_pipeline

DATA = Path(__file__).parent / "data"
UPDATE = os.environ.get("NNLCC_UPDATE_GOLDEN") == "1"


def _check(name: str, text: str) -> None:
    path = DATA / name
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with NNLCC_UPDATE_GOLDEN=1"
    want = path.read_text()
    if text != want:
        diff = difflib.unified_diff(
            want.splitlines(keepends=True),
            text.splitlines(keepends=True),
            f"{name} (checked in)",
            f"{name} (now)",
        )
        pytest.fail(
            f"{name} differs from the checked-in golden file (NNLCC_UPDATE_GOLDEN=1 rewrites"
            " it):\n" + "".join(diff),
            pytrace=False,
        )


def _one_layer(graph: MatrixGraph, name: str) -> MatrixGraph:
    """Layer ``name`` of a chain as a graph of its own (a small golden file)."""
    i = next(i for i, la in enumerate(graph.layers) if la.name == name)
    layer = graph.layers[i]
    src = graph.inputs_of(i)[0]
    return MatrixGraph(
        f"{graph.name}.{name}",
        src,
        math.prod(layer.in_shape),
        layer.name,
        [layer],
        layer.in_fmt,
        input_shape=layer.in_shape,
    )


def _check_graph(tag: str, graph: MatrixGraph) -> None:
    text = print_graph(graph)
    assert print_graph(parse_graph(text)) == text
    _check(f"{tag}.ir.txt", text)


@pytest.mark.parametrize(
    "pipeline",
    ["quantize,csd", "quantize,lcc", "quantize,share{clusters=8},csd"],
)
def test_digits_mlp_fc2(pipeline: str) -> None:
    """CSD, LCC and share on the digits MLP: the IR of fc2 and its adder graph."""
    graph = load_model(EXAMPLE_MODEL)
    data = load_data(graph, EXAMPLE_MODEL, None, 0)
    run_passes(graph, resolve_pipeline(pipeline), data)
    net = lower_network(graph)
    tag = "digits_mlp." + pipeline.replace(",", "_").replace("{", "_").replace("}", "").replace(
        "=", ""
    )
    _check_graph(f"{tag}.fc2", _one_layer(graph, "fc2"))
    _check(f"{tag}.fc2.adders.txt", net.layers[-1].graph.to_text())
    if pipeline == "quantize,csd":
        rows = layer_rows(graph, net)
        keep = ("name", "shape", "adders", "depth", "latency", "in_fmt", "out_fmt", "max_bits")
        _check(
            f"{tag}.layers.json",
            json.dumps([{k: r.to_json()[k] for k in keep} for r in rows], indent=1) + "\n",
        )


def _tiny(layers: list[Layer], shape: tuple[int, int, int], pipeline: str) -> MatrixGraph:
    g = MatrixGraph("tiny", "x", math.prod(shape), layers[-1].name, layers, input_shape=shape)
    x = np.random.default_rng(1).uniform(-1, 1, size=(32, g.input_size))
    for p in parse_pipeline(pipeline):
        p.apply(g, PassContext(x))
    g.verify()
    return g


def _conv(rng: np.random.Generator, name: str, cin: int, cout: int, hw: int) -> ConvLayer:
    w = np.round(rng.normal(size=(cout, cin, 3, 3)) / math.sqrt(cin * 9), 3)
    return ConvLayer(
        name,
        conv_matrix(w),
        np.round(rng.normal(size=cout) * 0.1, 3),
        relu=True,
        image=(cin, hw, hw),
        window=Window((3, 3), (1, 1), (1, 1, 1, 1)),
    )


def test_conv() -> None:
    """One 3x3 conv (2 -> 3 channels, zero padding) under LCC: its IR and adder graph."""
    g = _tiny([_conv(np.random.default_rng(0), "c1", 2, 3, 4)], (2, 4, 4), "quantize,lcc")
    _check_graph("tiny_conv.quantize_lcc", g)
    _check("tiny_conv.quantize_lcc.c1.adders.txt", lower_network(g).layers[0].graph.to_text())


def test_pools() -> None:
    """Max pool then a padded average pool, flattened into a dense layer, under CSD: the IR
    and both pools' adder graphs."""
    rng = np.random.default_rng(0)
    layers: list[Layer] = [
        _conv(rng, "c1", 1, 2, 4),
        PoolLayer("max", "max", (2, 4, 4), Window((2, 2), (2, 2))),
        PoolLayer("avg", "avg", (2, 2, 2), Window((2, 2), (1, 1), (1, 1, 0, 0))),
        FlattenLayer("fl", (2, 2, 2)),
        DenseLayer("fc", np.round(rng.normal(size=(2, 8)) * 0.4, 3), np.array([0.125, -0.25])),
    ]
    g = _tiny(layers, (1, 4, 4), "quantize,csd")
    _check_graph("tiny_pools.quantize_csd", g)
    net = lower_network(g)
    for name in ("max", "avg"):
        (layer,) = [la for la in net.layers if la.name == name]
        _check(f"tiny_pools.quantize_csd.{name}.adders.txt", layer.graph.to_text())
