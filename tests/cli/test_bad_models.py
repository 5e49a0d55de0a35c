"""Bad input to ``nnlcc compile``: one clear line on stderr, exit status 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def _gemm_model(w: np.ndarray, extra_op: str | None = None) -> onnx.ModelProto:
    rows, cols = w.shape
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="fc", transB=1)]
    out = "h"
    if extra_op:
        nodes.append(helper.make_node(extra_op, ["h"], ["y"], name="odd_one"))
        out = "y"
    graph = helper.make_graph(
        nodes,
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cols])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, rows])],
        [
            numpy_helper.from_array(w.astype(np.float32), "W"),
            numpy_helper.from_array(np.zeros(rows, np.float32), "b"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _write(tmp: Path, name: str, model: onnx.ModelProto | bytes) -> Path:
    path = tmp / name
    if isinstance(model, bytes):
        path.write_bytes(model)
    else:
        onnx.save(model, str(path))
    return path


def _cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    rng = np.random.default_rng(0)
    nan_w = rng.standard_normal((3, 4))
    nan_w[1, 2] = np.nan
    inf_w = rng.standard_normal((3, 4))
    inf_w[0, 0] = np.inf
    return {
        "missing": (tmp / "nope.onnx", "nope.onnx"),
        "not_onnx": (_write(tmp, "text.onnx", b"this is not a model\n" * 10), "ONNX"),
        "unsupported_op": (
            _write(tmp, "sin.onnx", _gemm_model(rng.standard_normal((3, 4)), "Sin")),
            "Sin",
        ),
        "nan_weights": (_write(tmp, "nan.onnx", _gemm_model(nan_w)), "fc"),
        "inf_weights": (_write(tmp, "inf.onnx", _gemm_model(inf_w)), "fc"),
        "zero_size": (_write(tmp, "zero.onnx", _gemm_model(np.zeros((0, 4)))), "fc"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "not_onnx", "unsupported_op", "nan_weights", "inf_weights", "zero_size"]
)
def test_bad_model_one_line_exit_2_nothing_written(tmp_path: Path, case: str) -> None:
    path, must_name = _cases(tmp_path)[case]
    out = tmp_path / "out" / "design"
    run = subprocess.run(
        [sys.executable, "-m", "nnlcc.cli", "compile", str(path), "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr  # one line, no traceback
    assert "Traceback" not in run.stderr
    assert must_name in lines[0], lines[0]
    assert not out.exists()
    leftovers = list(out.parent.iterdir()) if out.parent.exists() else []
    assert leftovers == [], leftovers  # no half-written directory or temp dir
