"""ONNX LSTM and GRU import: torch's export becomes a recurrent layer whose float run matches
onnxruntime, and what nnlcc cannot build is refused in one line naming the node."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from nnlcc.errors import UnsupportedModelError
from nnlcc.frontends.onnx import load_onnx
from nnlcc.frontends.onnx.reference import onnx_reference
from nnlcc.ir.recurrent import RecurrentLayer

torch = pytest.importorskip("torch")


def export(cell: str, path: Path) -> Path:
    """A seeded torch LSTM or GRU (8 steps of 8 inputs, hidden 16) and a classifier."""
    from nnlcc.examples.onnx_export import export_onnx
    from nnlcc.examples.train_digits_lstm import DigitsLSTM

    torch.manual_seed(0)
    model = DigitsLSTM(cell).eval()
    return export_onnx(model, (8, 8), path, output_name="logits", batch_axis="batch")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_torch_export_matches_onnxruntime(cell: str, tmp_path: Path) -> None:
    path = export(cell, tmp_path / f"{cell}.onnx")
    graph = load_onnx(path)
    rnn = graph.layers[0]
    assert isinstance(rnn, RecurrentLayer) and rnn.cell == cell
    assert [m.name for m in graph.matrix_layers()] == ["rnn_W", "rnn_R", "fc"]
    assert graph.input_shape == (8, 8)
    x = np.random.default_rng(0).uniform(0, 1, size=(5, 64))
    np.testing.assert_allclose(graph.forward_float(x), onnx_reference(path, x), atol=1e-4)


def _edit(path: Path, change: Callable[[onnx.ModelProto, onnx.NodeProto], None]) -> Path:
    model = onnx.load(path)
    node = next(n for n in model.graph.node if n.op_type in ("LSTM", "GRU"))
    change(model, node)
    out = path.with_name("edited.onnx")
    onnx.save(model, out)
    return out


def _attr(name: str, value: object) -> Callable[[onnx.ModelProto, onnx.NodeProto], None]:
    def change(model: onnx.ModelProto, node: onnx.NodeProto) -> None:
        node.attribute.append(helper.make_attribute(name, value))

    return change


def _input(pos: int, array: np.ndarray) -> Callable[[onnx.ModelProto, onnx.NodeProto], None]:
    def change(model: onnx.ModelProto, node: onnx.NodeProto) -> None:
        name = f"extra_{pos}"
        model.graph.initializer.append(onnx.numpy_helper.from_array(array, name))
        while len(node.input) <= pos:
            node.input.append("")
        node.input[pos] = name

    return change


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_attr("direction", "bidirectional"), "direction=bidirectional is not supported"),
        (_attr("activations", ["Relu", "Tanh", "Tanh"]), "activations ['Relu', 'Tanh', 'Tanh']"),
        (_input(7, np.ones((1, 48), np.float32)), "peepholes (input P) are not supported"),
        (_input(4, np.full(1, 5, np.int32)), "sequence_lens [5] does not match"),
        (_input(5, np.ones((1, 1, 16), np.float32)), "stateful: initial_h"),
    ],
    ids=["bidirectional", "activation", "peephole", "length", "stateful"],
)
def test_refusals_name_the_node(
    change: Callable[[onnx.ModelProto, onnx.NodeProto], None], says: str, tmp_path: Path
) -> None:
    path = _edit(export("lstm", tmp_path / "lstm.onnx"), change)
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(path)
    msg = str(err.value)
    assert "\n" not in msg and "/rnn/LSTM" in msg and says in msg, msg
