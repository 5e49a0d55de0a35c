"""Golden tests: the printed IR (and adder graphs) of one pinned pipeline each for CSD, LCC,
share, conv and pool, checked in.  A pass change shows up as a unified diff of the text;
regenerate with NNLCC_UPDATE_GOLDEN=1 after an intended change, and review the diff."""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Callable
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
)
from nnlcc.passes.text import parse_graph, print_graph

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


def _tiny(
    golden_model: Callable[..., object],
    layers: list[Layer],
    shape: tuple[int, int, int],
    pipeline: str,
) -> MatrixGraph:
    g = MatrixGraph("tiny", "x", math.prod(shape), layers[-1].name, layers, input_shape=shape)
    golden_model(g, pipeline, np.random.default_rng(1).uniform(-1, 1, size=(32, g.input_size)))
    return g


def test_conv(conv_layer: Callable[..., ConvLayer], golden_model: Callable[..., object]) -> None:
    """One 3x3 conv (2 -> 3 channels, zero padding) under LCC: its IR and adder graph."""
    c1 = conv_layer("c1", (2, 4, 4), 3, np.random.default_rng(0), decimals=3)
    g = _tiny(golden_model, [c1], (2, 4, 4), "quantize,lcc")
    _check_graph("tiny_conv.quantize_lcc", g)
    _check("tiny_conv.quantize_lcc.c1.adders.txt", lower_network(g).layers[0].graph.to_text())


def test_pools(conv_layer: Callable[..., ConvLayer], golden_model: Callable[..., object]) -> None:
    """Max pool then a padded average pool, flattened into a dense layer, under CSD: the IR
    and both pools' adder graphs."""
    rng = np.random.default_rng(0)
    layers: list[Layer] = [
        conv_layer("c1", (1, 4, 4), 2, rng, decimals=3),
        PoolLayer("max", "max", (2, 4, 4), Window((2, 2), (2, 2))),
        PoolLayer("avg", "avg", (2, 2, 2), Window((2, 2), (1, 1), (1, 1, 0, 0))),
        FlattenLayer("fl", (2, 2, 2)),
        DenseLayer("fc", np.round(rng.normal(size=(2, 8)) * 0.4, 3), np.array([0.125, -0.25])),
    ]
    g = _tiny(golden_model, layers, (1, 4, 4), "quantize,csd")
    _check_graph("tiny_pools.quantize_csd", g)
    net = lower_network(g)
    for name in ("max", "avg"):
        (layer,) = [la for la in net.layers if la.name == name]
        _check(f"tiny_pools.quantize_csd.{name}.adders.txt", layer.graph.to_text())
