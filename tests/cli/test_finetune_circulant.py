"""``nnlcc finetune --circulant``: trains the digits MLP with B-vectors, writes a checked ONNX
that the circulant pass keeps exactly; bad inputs get one line naming what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnlcc.cli import app
from nnlcc.driver import (
    EXAMPLE_CNN,
    EXAMPLE_DATA,
    EXAMPLE_MODEL,
    load_data,
    load_model,
    resolve_pipeline,
    run_passes,
)
from nnlcc.errors import BadInputError
from nnlcc.finetune import CirculantOptions, circulant_finetune, load_labelled, train_circulant


def test_a_few_epochs_on_the_digits_mlp_stay_exactly_circulant(tmp_path: Path) -> None:
    out = tmp_path / "circ4.onnx"
    res = circulant_finetune(EXAMPLE_MODEL, EXAMPLE_DATA, out, CirculantOptions(4, epochs=8))
    assert out.exists()
    assert res.stored_weights == 4 * 16 * 4 + 3 * 4 * 4  # fc1 4x16 blocks, fc2 3x4 (padded)
    assert res.accuracy_after > res.accuracy_projected + 0.3  # training recovers
    g = load_model(out)
    run_passes(
        g,
        resolve_pipeline("quantize,circulant{block=4,form=mcm}"),
        load_data(g, out, EXAMPLE_DATA, 0),
    )
    for layer in g.matrix_layers():
        s = layer.code.summary()  # type: ignore[union-attr]
        assert s["exact_circulant"] and s["projection_sqnr_db"] is None  # kept exactly


def test_the_cnn_trains_and_exports(tmp_path: Path) -> None:
    g = load_model(EXAMPLE_CNN)
    res = train_circulant(g, load_labelled(EXAMPLE_DATA, g), CirculantOptions(2, epochs=2))
    assert res.stored_weights < res.weights
    assert np.isfinite(res.accuracy_after)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--circulant", "x"], "--circulant must be a positive integer, not 'x'"),
        (["--circulant", "0"], "--circulant must be a positive integer, not 0"),
        (["--circulant", "128"], "--circulant must be in 2..64, not 128"),
        ([], "needs exactly one of --group-lasso and --circulant"),
    ],
)
def test_bad_circulant_arguments_get_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    r = CliRunner().invoke(
        app,
        [
            "finetune",
            str(EXAMPLE_MODEL),
            "--data",
            str(EXAMPLE_DATA),
            "-o",
            str(tmp_path / "o.onnx"),
            *args,
        ],
    )
    assert r.exit_code == 2 and message in r.output
    assert not (tmp_path / "o.onnx").exists()


def test_a_block_too_big_and_an_unsupported_layer_are_named(
    tmp_path: Path, torch_cnn: Callable[..., Path]
) -> None:
    with pytest.raises(BadInputError, match=r"layer conv1 \(4x1 per tap\)"):
        circulant_finetune(EXAMPLE_CNN, EXAMPLE_DATA, tmp_path / "o.onnx", CirculantOptions(8))
    model = torch_cnn("residual", tmp_path / "res.onnx")
    with pytest.raises(BadInputError, match=r"--circulant: layer \S+ \(add\) is not supported"):
        circulant_finetune(model, EXAMPLE_DATA, tmp_path / "o.onnx", CirculantOptions(2))
