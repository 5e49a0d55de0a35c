"""Train the quantized jet-tagging example: a 16→64→32→32→5 ReLU MLP, quantization-aware with
Brevitas, exported to QONNX (``jet_mlp_qonnx.onnx``) and to QCDQ (``jet_mlp_qdq.onnx``).

The network has the shape of hls4ml's and da4ml's jet-substructure benchmark; its data is the
synthetic, jet-like set of :mod:`nnlcc.examples.jet_data` (the original is not reachable
offline), written to ``jet.npz``.  Quantization, all scales powers of two (so the model is
integer-exact and nnlcc's golden model equals it bit for bit):

* input: 8-bit signed fixed point (Brevitas ``Int8ActPerTensorFixedPoint``);
* weights: 6-bit signed, narrow, one power-of-two scale per layer;
* biases: 16-bit at the accumulator's scale (``Int16Bias``);
* activations: 6-bit unsigned fixed-point ReLU; the output logits stay unquantized.

    .venv/bin/python examples/train_jet_mlp.py      # about a minute on a CPU

Everything is seeded and torch runs deterministically on one thread.  Needs the ``train``
extra (torch, brevitas, onnxoptimizer).
"""

from __future__ import annotations

import argparse
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from nnlcc.examples.jet_data import make_jets

SEED = 0
TRAIN, CALIB, TEST = 20000, 2000, 5000
EPOCHS = 30
BATCH = 256
LR = 3e-3
HERE = Path(__file__).resolve().parent


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def make_model() -> nn.Module:
    import brevitas.nn as qnn
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Int16Bias,
        Uint8ActPerTensorFixedPoint,
    )

    class Weight6(Int8WeightPerTensorFixedPoint):  # type: ignore[misc]
        bit_width = 6

    class Relu6(Uint8ActPerTensorFixedPoint):  # type: ignore[misc]
        bit_width = 6

    def linear(n_in: int, n_out: int, last: bool = False) -> Any:
        return qnn.QuantLinear(
            n_in,
            n_out,
            bias=True,
            weight_quant=Weight6,
            bias_quant=Int16Bias,
            return_quant_tensor=not last,
        )

    class JetMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = qnn.QuantIdentity(
                act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True
            )
            self.fc1, self.relu1 = linear(16, 64), qnn.QuantReLU(act_quant=Relu6,
                                                                 return_quant_tensor=True)  # fmt: skip
            self.fc2, self.relu2 = linear(64, 32), qnn.QuantReLU(act_quant=Relu6,
                                                                 return_quant_tensor=True)  # fmt: skip
            self.fc3, self.relu3 = linear(32, 32), qnn.QuantReLU(act_quant=Relu6,
                                                                 return_quant_tensor=True)  # fmt: skip
            self.fc4 = linear(32, 5, last=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.relu1(self.fc1(self.inp(x)))
            h = self.relu3(self.fc3(self.relu2(self.fc2(h))))
            return self.fc4(h)  # type: ignore[no-any-return]

    return JetMLP()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float(np.mean(pred == y))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    g = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        model.train()
        for idx in torch.randperm(len(xt), generator=g).split(BATCH):
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    model.eval()


def _named(path: Path) -> None:
    """A symbolic batch axis on the model's input and output (the exporters fix it at 1)."""
    m = onnx.load(str(path))
    for v in (*m.graph.input[:1], *m.graph.output):
        v.type.tensor_type.shape.dim[0].dim_param = "batch"
    del m.graph.value_info[:]
    onnx.save(onnx.shape_inference.infer_shapes(m), str(path))


def export(model: nn.Module, out: Path) -> tuple[Path, Path]:
    from brevitas.export import export_onnx_qcdq, export_qonnx

    x = torch.zeros(1, 16)
    kw: dict[str, Any] = {"input_names": ["x"], "output_names": ["logits"], "dynamo": False}
    qonnx_path, qdq_path = out / "jet_mlp_qonnx.onnx", out / "jet_mlp_qdq.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, x, str(qonnx_path), **kw)
        export_onnx_qcdq(model, x, str(qdq_path), **kw)
    for p in (qonnx_path, qdq_path):
        _named(p)
    return qonnx_path, qdq_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the three files")
    args = parser.parse_args()
    seed_everything(SEED)
    x, y = make_jets(TRAIN + TEST, seed=SEED)
    x_train, y_train, x_test, y_test = x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]
    model = make_model()
    train(model, x_train, y_train)
    print(f"train accuracy {accuracy(model, x_train, y_train):.4f}")
    print(f"test accuracy  {accuracy(model, x_test, y_test):.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    paths = export(model, args.out)
    np.savez_compressed(
        args.out / "jet.npz",
        x_train=x_train[:CALIB],
        y_train=y_train[:CALIB],
        x_test=x_test,
        y_test=y_test,
    )
    print(f"wrote {', '.join(map(str, paths))} and {args.out / 'jet.npz'}")


if __name__ == "__main__":
    main()
