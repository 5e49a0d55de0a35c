"""What `make bitstream BOARD=icebreaker MODEL=tiny.onnx` runs, end to end through the CLI:
ONNX import, passes, lowering, the self-test top, yosys, nextpnr-ice40 and icepack (slow)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from nnlcc.cli import app

pytestmark = pytest.mark.slow


def write_tiny_onnx(path: Path, sizes: tuple[int, ...] = (8, 6, 4), seed: int = 3) -> None:
    """A Gemm/Relu MLP, the shape torch.onnx.export gives ``nn.Linear`` stacks."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    prev = "x"
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = rng.normal(0, 0.5, size=(n_out, n_in)).astype(np.float32)
        b = rng.normal(0, 0.1, size=n_out).astype(np.float32)
        inits += [
            numpy_helper.from_array(w, f"fc{i}.weight"),
            numpy_helper.from_array(b, f"fc{i}.bias"),
        ]
        last = i == len(sizes) - 2
        out = "y" if last else f"h{i}"
        gemm_out = out if last else f"g{i}"
        nodes.append(
            helper.make_node("Gemm", [prev, f"fc{i}.weight", f"fc{i}.bias"], [gemm_out], transB=1)
        )
        if not last:
            nodes.append(helper.make_node("Relu", [gemm_out], [out]))
        prev = out
    graph = helper.make_graph(
        nodes,
        "tiny_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, sizes[-1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, path)


def test_cli_build_icebreaker(tmp_path: Path) -> None:
    model = tmp_path / "tiny.onnx"
    write_tiny_onnx(model)
    out = tmp_path / "out"
    args = ["compile", str(model), "--board", "icebreaker", "--build", "--no-verify",
            "--passes", "quantize,csd", "-o", str(out)]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    report = json.loads((out / "report.json").read_text())
    res = report["resources"]
    assert res["board"] == "icebreaker" and res["estimate"] is False and res["fits"]
    assert (out / res["bitstream"]).stat().st_size > 100_000
    assert res["fmax_mhz"] > 12.0


def test_cli_unknown_board(tmp_path: Path) -> None:
    model = tmp_path / "tiny.onnx"
    write_tiny_onnx(model)
    r = CliRunner().invoke(
        app, ["compile", str(model), "--board", "nexys", "-o", str(tmp_path / "o")]
    )
    assert r.exit_code == 2
    assert "known boards: arty-a7" in r.output
