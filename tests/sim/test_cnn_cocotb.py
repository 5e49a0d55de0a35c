"""Streaming CNN hardware against the golden model, through cocotb (Verilator).

* the shipped example ``examples/digits_cnn.onnx``, compiled with the default pipeline, on all
  450 test images at one pixel per clock: bit-exact at every layer, golden accuracy within one
  point of the float network;
* a small residual CNN written in torch (conv+BatchNorm, a basic block with its skip add, a
  strided conv, global average pool, dense), exported to ONNX and imported by the frontend:
  bit-exact, and a corrupted golden file is reported at its image, pixel and layer.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from nnlcc.data import load_npz, random_dataset
from nnlcc.driver import EXAMPLE_CNN, EXAMPLE_DATA, load_model, resolve_pipeline, run_passes
from nnlcc.errors import VerificationError
from nnlcc.frontends.onnx import onnx_reference
from nnlcc.hdl.top import StreamStrategy
from nnlcc.ir.lower import lower_network
from nnlcc.ir.lowered import LoweredNetwork
from nnlcc.sim import available_simulators, run_cocotb
from nnlcc.sim.verify import verify_network

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("verilator" not in available_simulators(), reason="no verilator"),
]

CNN_MODEL = EXAMPLE_CNN


def test_digits_cnn_bit_exact_on_all_test_images(tmp_path: Path) -> None:
    graph = load_model(CNN_MODEL)
    data = load_npz(EXAMPLE_DATA, graph.input_size)
    run_passes(graph, resolve_pipeline(None), data)
    net = lower_network(graph)
    x = net.quantize_input(data.x_test)
    res = verify_network(net, x, tmp_path)
    assert res.simulator == "verilator" and res.bit_exact
    assert res.vectors == len(x) == 450
    # full rate: every pixel on its own clock, the last image out a few dozen clocks later
    assert res.summary["pixels"] == 450 * 64
    assert res.summary["clocks_to_last_output"] < 450 * 64 + 200
    gold = net.evaluate(x).argmax(1)
    flt = np.asarray(onnx_reference(graph.source, data.x_test)).argmax(1)
    acc_gold, acc_float = np.mean(gold == data.y_test), np.mean(flt == data.y_test)
    assert acc_gold >= acc_float - 0.01, (acc_gold, acc_float)


def residual_onnx(path: Path) -> None:
    """A seeded ResNet-style CNN on 1x6x6 images, exported with the legacy exporter."""
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
            self.a = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
            self.b = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4))
            self.down = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU())
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = self.stem(x)
            return self.head(self.down(torch.relu(self.b(self.a(s)) + s)))

    model = Block()
    for m in model.modules():  # non-trivial BatchNorm statistics to fold
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, 6, 6),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


@pytest.fixture(scope="module")
def residual_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoweredNetwork, Path]:
    base = tmp_path_factory.mktemp("residual")
    residual_onnx(base / "res.onnx")
    graph = load_model(base / "res.onnx")
    assert {layer.kind for layer in graph.layers} >= {"conv", "add", "pool", "dense"}
    data = random_dataset(graph.input_size, seed=0, n=80)  # 40 test images
    run_passes(graph, resolve_pipeline("quantize,csd"), data)
    net = lower_network(graph)
    out = base / "sim"
    res = verify_network(net, net.quantize_input(data.x_test), out)
    assert res.bit_exact and res.vectors == 40
    return net, out


def test_residual_cnn_bit_exact(residual_run: tuple[LoweredNetwork, Path]) -> None:
    net, out = residual_run
    kinds = [layer.kind for layer in net.layers]
    assert "add" in kinds and kinds.count("conv") == 4
    assert (out / "nnlcc_top.v").is_file()


def test_corrupted_golden_names_image_pixel_and_layer(
    residual_run: tuple[LoweredNetwork, Path], tmp_path: Path
) -> None:
    net, out = residual_run
    bad = tmp_path / "bad"
    shutil.copytree(out, bad, symlinks=True)  # the cached build is reused
    data = dict(np.load(bad / "vectors.npz"))
    add = next(i for i, layer in enumerate(net.layers) if layer.kind == "add")
    # image 3, pixel (2, 4) of the 6x6 add output, channel 1; and a later layer's difference
    data[f"layer{add}"][3 * 36 + 2 * 6 + 4, 1] += 1
    data[f"layer{len(net.layers) - 1}"][0, 0] += 1
    np.savez(bad / "vectors.npz", **data)
    name = net.layers[add].name
    with pytest.raises(
        VerificationError, match=rf"image 3, pixel \(2, 4\), layer {name} channel 1"
    ) as e:
        run_cocotb(
            bad / "nnlcc_top.v",
            "nnlcc_top",
            StreamStrategy.testbench,
            bad,
            simulator="verilator",
            extra_env={"NNLCC_SIM_DIR": str(bad)},
        )
    assert "\n" not in str(e.value)
    assert e.value.result.mismatches == 2  # type: ignore[attr-defined]
    assert e.value.result.build_seconds == 0.0  # type: ignore[attr-defined]
