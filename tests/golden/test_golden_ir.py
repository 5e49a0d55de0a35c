"""Golden tests: printed IR after the passes, checked in.  Regenerate with NNLCC_UPDATE_GOLDEN=1
after an intended change, and review the diff."""

import json
import os
from pathlib import Path

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

DATA = Path(__file__).parent / "data"
UPDATE = os.environ.get("NNLCC_UPDATE_GOLDEN") == "1"


def _check(name: str, text: str) -> None:
    path = DATA / name
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with NNLCC_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} differs from the checked-in golden file"


@pytest.mark.parametrize("pipeline", ["quantize,csd"])
def test_example_ir_and_adder_graph(pipeline: str) -> None:
    graph = load_model(EXAMPLE_MODEL)
    data = load_data(graph, EXAMPLE_MODEL, None, 0)
    run_passes(graph, resolve_pipeline(pipeline), data)
    net = lower_network(graph)
    tag = pipeline.replace(",", "_")
    _check(f"digits_mlp.{tag}.ir.txt", graph.to_text())
    _check(f"digits_mlp.{tag}.fc2.adders.txt", net.layers[-1].graph.to_text())
    rows = layer_rows(graph, net)
    keep = ("name", "shape", "adders", "depth", "latency", "in_fmt", "out_fmt", "max_bits")
    _check(
        f"digits_mlp.{tag}.layers.json",
        json.dumps([{k: r.to_json()[k] for k in keep} for r in rows], indent=1) + "\n",
    )
