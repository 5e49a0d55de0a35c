"""Group lasso on a CNN's im2col columns: whole columns (an input channel at a kernel
position) reach exactly zero, the written ONNX has them, shapes stay; non-chains are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import export_torch_cnn

from nnlcc.driver import EXAMPLE_CNN, EXAMPLE_DATA
from nnlcc.errors import UnsupportedModelError
from nnlcc.finetune import FinetuneOptions, finetune
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
    assert [la.shape for la in layers] == res.shapes_before  # columns zeroed, not removed
    assert [len(used_columns(la.weight)) for la in layers] == res.columns_after
    assert "columns used per layer 9/36/32 ->" in res.summary()
    assert res.accuracy_after > 0.5


def test_residual_cnn_is_refused_in_one_line(tmp_path: Path) -> None:
    model = export_torch_cnn("residual", tmp_path / "res.onnx")
    with pytest.raises(UnsupportedModelError) as err:
        finetune(model, EXAMPLE_DATA, tmp_path / "out.onnx", FinetuneOptions(group_lasso=0.1))
    assert "\n" not in str(err.value) and "chains" in str(err.value)
    assert not (tmp_path / "out.onnx").exists()
