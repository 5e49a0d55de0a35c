"""Tiny networks for the board tests: small enough that a whole self-test bitstream fits the
iCE40UP5K and builds in well under a minute."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

import nnlcc.passes.quantize  # noqa: F401  (registers the quantize and csd passes)
from nnlcc.ir.lower import lower_network
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.passes import PassContext, parse_pipeline


def tiny_network(sizes: tuple[int, ...] = (6, 5, 3), seed: int = 1) -> LoweredNetwork:
    """A seeded ReLU MLP of the given layer sizes, quantized and CSD-coded."""
    rng = np.random.default_rng(seed)
    layers = [
        DenseLayer(
            name=f"fc{i + 1}",
            weight=rng.normal(0.0, 0.6, size=(n_out, n_in)),
            bias=rng.normal(0.0, 0.1, size=n_out),
            relu=i < len(sizes) - 2,
        )
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes))
    ]
    graph = MatrixGraph(
        name="tiny", input_name="x", input_size=sizes[0], output_name="y", layers=layers
    )
    ctx = PassContext(calibration=rng.uniform(-1.0, 1.0, size=(256, sizes[0])))
    for p in parse_pipeline("quantize{input_bits=6,act_bits=6},csd{weight_bits=5}"):
        p.apply(graph, ctx)
    return lower_network(graph)


@pytest.fixture(scope="session")
def tiny_net() -> LoweredNetwork:
    return tiny_network()


@pytest.fixture(scope="session")
def make_tiny_network() -> Callable[..., LoweredNetwork]:
    """:func:`tiny_network` for tests that need other sizes."""
    return tiny_network
