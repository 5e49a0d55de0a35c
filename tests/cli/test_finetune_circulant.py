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


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_gate_matrices_train_circulant_and_export(cell: str, tmp_path: Path) -> None:
    """An LSTM/GRU's gate matrices are trained as circulant blocks; the written ONNX (an
    LSTM/GRU node torch exports) reads back with both gate matrices exactly circulant."""
    torch = pytest.importorskip("torch")
    from nnlcc.examples.onnx_export import export_onnx
    from nnlcc.ir.recurrent import RecurrentLayer

    class Seq(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(3, 4, batch_first=True)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            state = self.rnn(x)[1]
            return self.fc((state[0] if isinstance(state, tuple) else state)[-1])

    torch.manual_seed(0)
    model = export_onnx(Seq().eval(), (4, 3), tmp_path / "seq.onnx", batch_axis="batch")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(120, 12)).astype(np.float32)
    y = (x[:, :6].sum(1) > x[:, 6:].sum(1)).astype(np.int64)
    data = tmp_path / "seq.npz"
    np.savez(data, x_train=x[:80], y_train=y[:80], x_test=x[80:], y_test=y[80:])
    out = tmp_path / "circ2.onnx"
    res = circulant_finetune(model, data, out, CirculantOptions(2, epochs=2))
    gates = 4 if cell == "lstm" else 3
    # W (4G x 3, padded to 4 columns) and R (4G x 4): 2G x 2 blocks of 2 numbers; fc: 1 x 2
    assert res.stored_weights == 2 * (2 * gates * 2 * 2) + 2 * 2
    g = load_model(out)
    assert isinstance(g.layers[0], RecurrentLayer) and g.layers[0].cell == cell
    run_passes(g, resolve_pipeline("quantize,circulant{block=2}"), load_data(g, out, data, 0))
    for layer in g.matrix_layers():
        assert layer.code.summary()["exact_circulant"]  # type: ignore[union-attr]
