"""Group lasso on a CNN's im2col columns: whole columns (an input channel at a kernel
position) reach exactly zero, the written ONNX has them, dead output channels are removed
without changing the function; non-chains are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import export_torch_cnn

from nnlcc.driver import EXAMPLE_CNN, EXAMPLE_DATA
from nnlcc.errors import UnsupportedModelError
from nnlcc.finetune import FinetuneOptions, finetune
from nnlcc.finetune.conv_lasso import drop_dead_channels
from nnlcc.frontends.onnx import load_onnx
from nnlcc.passes.prune import used_columns


def test_digits_cnn_columns_are_pruned_and_written(tmp_path: Path) -> None:
    out = tmp_path / "cnn_pruned.onnx"
    opts = FinetuneOptions(group_lasso=0.25, epochs=8, retrain_epochs=2)
    res = finetune(EXAMPLE_CNN, EXAMPLE_DATA, out, opts)
    assert res.columns_before == [9, 36, 32]
    assert sum(res.columns_after) < sum(res.columns_before)
    assert all(0 < a <= b for a, b in zip(res.columns_after, res.columns_before, strict=True))
    back = load_onnx(out)
    layers = back.matrix_layers()
    assert [la.shape for la in layers] == res.shapes_after
    # a conv keeps the channels its consumer reads; the rest of each shape is the dense one's
    assert [r for r, _ in res.shapes_after[:2]] == [layers[1].image[0], layers[2].shape[1] // 4]
    assert res.shapes_after[2][0] == 10
    assert [len(used_columns(la.weight)) for la in layers] == res.columns_after
    assert "columns used per layer 9/36/32 ->" in res.summary()
    assert res.accuracy_after > 0.5


def test_residual_cnn_is_refused_in_one_line(tmp_path: Path) -> None:
    model = export_torch_cnn("residual", tmp_path / "res.onnx")
    with pytest.raises(UnsupportedModelError) as err:
        finetune(model, EXAMPLE_DATA, tmp_path / "out.onnx", FinetuneOptions(group_lasso=0.1))
    assert "\n" not in str(err.value) and "chains" in str(err.value)
    assert not (tmp_path / "out.onnx").exists()


def test_dead_channels_are_removed_and_the_function_kept() -> None:
    graph = load_onnx(EXAMPLE_CNN)
    _, conv2, fc = graph.matrix_layers()
    # conv1's channel 1 and conv2's channels 2 and 5: every column reading them zeroed
    conv2.weight[:, 1::4] = 0.0
    fc.weight[:, 2::8] = 0.0
    fc.weight[:, 5::8] = 0.0
    fc.weight[:, 0] = 0.0  # one zero column of a live channel stays
    small, kept = drop_dead_channels(graph)
    assert kept == [3, 6]
    assert [la.shape for la in small.matrix_layers()] == [(3, 9), (6, 27), (10, 24)]
    assert [la.image[0] for la in small.layers if hasattr(la, "image")][:4] == [1, 3, 3, 6]
    x = np.load(EXAMPLE_DATA)["x_test"][:50]
    np.testing.assert_allclose(small.forward_float(x), graph.forward_float(x), atol=1e-9)
    assert drop_dead_channels(small)[1] == [3, 6]  # nothing more to drop


def test_channel_groups_zero_whole_channels_of_the_consumer() -> None:
    import torch

    from nnlcc.finetune.conv_lasso import _Columns

    torch.manual_seed(0)
    conv1, conv2, fc = torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(4, 8, 3), torch.nn.Linear(32, 10)
    with torch.no_grad():
        conv2.weight[:, 1] *= 1e-3  # channel 1 of conv1 barely read
        fc.weight[:, 20:24] *= 1e-3  # channel 5 of conv2 (ONNX order: c * 4 + position)
    cols = _Columns([conv1, conv2, fc], channel_weight=1.0)
    assert cols.channels == [(1, 4), (2, 8)]
    cols.prox(0.01)
    assert not conv2.weight[:, 1].any() and not fc.weight[:, 20:24].any()
    assert conv2.weight[:, [0, 2, 3]].abs().min() > 0 and fc.weight[:, :20].abs().min() > 0
    assert _Columns([conv1, conv2, fc]).channels == []  # channel_weight 0: columns only
