import numpy as np
import pytest

import nnlcc.passes.quantize  # noqa: F401
from nnlcc.errors import PassOptionError
from nnlcc.ir.family import ECP5
from nnlcc.ir.lower import lower_network
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.ir.text import print_graph
from nnlcc.passes import PassContext, format_pipeline, parse_pipeline


def test_pipeline_text_round_trips() -> None:
    text = "quantize{input_bits=6,act_bits=10,headroom=1.5},csd{weight_bits=6,cse=False,truncate=38.5,cse_effort=1000}"
    passes = parse_pipeline(text)
    assert format_pipeline(passes) == text
    assert format_pipeline(parse_pipeline("quantize,csd")) == (
        "quantize{input_bits=8,act_bits=8,headroom=1.0},"
        "csd{weight_bits=8,cse=True,truncate=auto,cse_effort=500000}"
    )


@pytest.mark.parametrize(
    "text",
    [
        "nosuch",
        "csd{bits=3}",
        "csd{weight_bits=x}",
        "csd{weight_bits}",
        "csd{weight_bits=1}",
        "csd csd",
        "quantize{act_bits=99}",
    ],
)
def test_bad_pipelines_raise_one_line(text: str) -> None:
    with pytest.raises(PassOptionError) as e:
        parse_pipeline(text)
    assert "\n" not in str(e.value)


def _mlp(seed: int = 0) -> MatrixGraph:
    rng = np.random.default_rng(seed)
    return MatrixGraph(
        "t",
        "x",
        12,
        "y",
        [
            DenseLayer("fc1", rng.normal(size=(6, 12)) * 0.3, rng.normal(size=6) * 0.1, relu=True),
            DenseLayer("fc2", rng.normal(size=(3, 6)) * 0.5, rng.normal(size=3) * 0.1),
        ],
    )


def test_quantize_csd_lower_is_faithful() -> None:
    g = _mlp()
    x = np.random.default_rng(1).uniform(0, 1, size=(400, 12))
    for p in parse_pipeline("quantize{act_bits=12,input_bits=10},csd{weight_bits=10}"):
        p.apply(g, PassContext(x, ECP5))
    net = lower_network(g)
    xi = net.quantize_input(x)
    y = net.output_fmt.to_real(net.evaluate(xi))
    ref = g.forward_float(x)
    assert np.max(np.abs(y - ref)) < 0.05 * np.max(np.abs(ref))
    for layer, inputs in zip(net.layers, [xi, *net.evaluate_layers(xi)[:-1]], strict=True):
        layer.graph.check_ranges(inputs)
    assert "csd" in print_graph(g)
