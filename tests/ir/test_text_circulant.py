"""The circulant code round-trips through the IR text (block vectors, the fft form's
spectrum, the lcc form's inner code), on the digits MLP and CNN."""

from __future__ import annotations

import pytest
from test_text import _example, assert_round_trip

from nnlcc.driver import EXAMPLE_CNN, EXAMPLE_MODEL
from nnlcc.passes.circulant import CirculantCode
from nnlcc.passes.text import parse_graph, print_graph


@pytest.mark.parametrize(
    ("model", "pipeline"),
    [
        (EXAMPLE_MODEL, "quantize,circulant{block=4,form=fft}"),
        (EXAMPLE_MODEL, "quantize,circulant{block=8,form=lcc}"),
        (EXAMPLE_MODEL, "quantize,share{clusters=8},circulant{block=4,form=mcm}"),
        (EXAMPLE_CNN, "quantize,circulant{block=4,form=mcm}"),
        (EXAMPLE_CNN, "quantize,circulant{block=2,form=fft}"),
    ],
)
def test_circulant_codes_round_trip(model: object, pipeline: str) -> None:
    g, x = _example(model, pipeline)
    back = assert_round_trip(g, x)
    code = back.layers[0].code
    inner = getattr(code, "inner", None) if "share" in pipeline else code
    assert isinstance(inner, CirculantCode)
    text = print_graph(g)
    assert "code circulant" in text and "    vectors" in text


def test_a_bad_circulant_block_names_its_line() -> None:
    g, _ = _example(EXAMPLE_MODEL, "quantize,circulant{block=4,form=mcm}")
    text = print_graph(g).replace("block=4 layout=dense", "block=99 layout=dense", 1)
    with pytest.raises(Exception, match=r"line \d+.*circulant block 99 is not in 2\.\.64"):
        parse_graph(text)
