"""Group-lasso fine-tuning: what it prunes, the ONNX it writes, determinism, bad input."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nnlcc.cli import app
from nnlcc.driver import EXAMPLE_DATA, EXAMPLE_MODEL, load_model
from nnlcc.errors import BadInputError
from nnlcc.finetune import (
    FinetuneOptions,
    export_graph,
    finetune,
    group_lasso_prune,
)
from nnlcc.frontends.onnx import load_onnx, onnx_reference
from nnlcc.ir.matrix import DenseLayer, MatrixGraph
from nnlcc.passes.prune import used_columns

INFORMATIVE = 3  # inputs 0..2 carry the class; 3..9 are noise


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centers = np.eye(3) * 2.0
    x = np.concatenate(
        [centers[y] + 0.3 * rng.normal(size=(n, 3)), 0.5 * rng.normal(size=(n, 7))], axis=1
    )
    return x, y


def small_mlp(seed: int = 0) -> MatrixGraph:
    rng = np.random.default_rng(seed)
    sizes = [10, 8, 3]
    layers = [
        DenseLayer(
            name=f"fc{i + 1}",
            weight=rng.normal(size=(o, k)) / np.sqrt(k),
            bias=np.zeros(o),
            relu=i == 0,
        )
        for i, (k, o) in enumerate(itertools.pairwise(sizes))
    ]
    return MatrixGraph("small", "x", 10, "logits", layers)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "small.onnx"
    export_graph(small_mlp(), model)
    xtr, ytr = synthetic(400, 1)
    xte, yte = synthetic(200, 2)
    data = tmp_path / "small.npz"
    np.savez(data, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return model, data


OPTS = FinetuneOptions(group_lasso=0.03, epochs=30, retrain_epochs=10, lr=0.1, batch_size=32)


def test_noise_inputs_are_pruned_and_the_onnx_round_trips(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, data = files
    out = tmp_path / "pruned.onnx"
    res = finetune(model, data, out, OPTS)
    g = load_onnx(out)
    first = g.layers[0]
    assert isinstance(first, DenseLayer)
    kept = set(used_columns(first.weight).tolist())
    assert set(range(INFORMATIVE)) <= kept and len(kept) < 10  # noise went, signal stayed
    assert res.inputs_after == len(kept) and res.shapes_after[0][0] < 8
    assert res.accuracy_after >= 0.95
    assert g.input_size == 10 and [x.name for x in g.layers] == ["fc1", "fc2"]
    x = synthetic(50, 3)[0]
    np.testing.assert_allclose(onnx_reference(out, x), g.forward_float(x), atol=1e-5)
    np.testing.assert_allclose(g.forward_float(x), res.graph.forward_float(x), atol=1e-5)


def test_same_seed_same_weights(files: tuple[Path, Path]) -> None:
    model, data = files
    from nnlcc.finetune import load_labelled

    graph = load_model(model)
    labelled = load_labelled(data, graph)
    a = group_lasso_prune(graph, labelled, OPTS)
    b = group_lasso_prune(graph, labelled, OPTS)
    for la, lb in zip(a.graph.layers, b.graph.layers, strict=True):
        assert isinstance(la, DenseLayer) and isinstance(lb, DenseLayer)
        np.testing.assert_array_equal(la.weight, lb.weight)
    assert graph.layers[0].shape == (8, 10)  # the input graph is not modified


def test_lambda_that_prunes_everything_is_refused_and_writes_nothing(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, data = files
    out = tmp_path / "keep.onnx"
    out.write_bytes(b"previous")
    opts = FinetuneOptions(group_lasso=50.0, epochs=3, retrain_epochs=0)
    with pytest.raises(BadInputError, match=r"prunes every .*smaller λ"):
        finetune(model, data, out, opts)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.onnx", "small.npz", "small.onnx"]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": np.zeros((4, 9)), "y_train": np.zeros(4)}, "expects 10 input features"),
        ({"x_train": np.zeros((4, 10)), "y_train": np.full(4, 3)}, "model has 3 outputs"),
        ({"x_train": np.zeros((4, 10)), "y_train": np.zeros(5)}, "5 labels for 4 inputs"),
        ({"x_train": np.zeros((4, 10))}, "no y_train"),
        ({"x_train": np.zeros((4, 10)), "y_train": np.full(4, 0.5)}, "integer class labels"),
    ],
)
def test_bad_data_is_one_clear_error(
    files: tuple[Path, Path], tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    model, _ = files
    data = tmp_path / "bad.npz"
    np.savez(data, x_test=np.zeros((2, 10)), y_test=np.zeros(2), **arrays)
    out = tmp_path / "out.onnx"
    with pytest.raises(BadInputError, match=message):
        finetune(model, data, out, OPTS)
    assert not out.exists()


def test_bad_options() -> None:
    for kwargs in ({"group_lasso": -1.0}, {"group_lasso": float("nan")}, {"epochs": 0}):
        with pytest.raises(BadInputError):
            FinetuneOptions(**{"group_lasso": 0.01, **kwargs})  # type: ignore[arg-type]


def test_export_round_trips_the_shipped_pruned_model(tmp_path: Path) -> None:
    pruned = EXAMPLE_MODEL.parent / "digits_mlp_pruned.onnx"
    g = load_model(pruned)
    export_graph(g, tmp_path / "again.onnx")
    g2 = load_model(tmp_path / "again.onnx")
    for a, b in zip(g.layers, g2.layers, strict=True):
        assert isinstance(a, DenseLayer) and isinstance(b, DenseLayer)
        np.testing.assert_array_equal(a.weight, b.weight)
        assert a.name == b.name and a.relu == b.relu


def test_cli_finetune_digits(tmp_path: Path) -> None:
    out = tmp_path / "p.onnx"
    args = ["finetune", str(EXAMPLE_MODEL), "--data", str(EXAMPLE_DATA), "-o", str(out)]
    res = CliRunner().invoke(
        app, [*args, "--group-lasso", "0.03", "--epochs", "3", "--retrain-epochs", "1", "-q"]
    )
    assert res.exit_code == 0, res.output
    assert load_model(out).layers[0].shape[1] == 64
    bad = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "x.onnx"), "--group-lasso", "40"])
    assert bad.exit_code == 2
    assert "smaller λ" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "x.onnx").exists()
