"""Train the small CNN example on scikit-learn's 8×8 digits and export ``digits_cnn.onnx``.

    conv1 3×3 (1→4, pad 1) + ReLU → max pool 2 → conv2 3×3 (4→8, pad 1) + ReLU → max pool 2
    → flatten (8×2×2 = 32) → fc 32→10

It is the streaming-hardware example of nnlcc: two line-buffered convolutions, two pools and a
dense layer, small enough to simulate on full test images in seconds and to fit an Arty A7.
It uses the same seeded train/test split as ``train_digits_mlp.py`` (``digits.npz``), so
``nnlcc compile examples/digits_cnn.onnx`` measures accuracy on the same test images:

    .venv/bin/python examples/train_digits_cnn.py

Everything is seeded and torch runs in deterministic mode on one thread, so two runs write the
same weights.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnlcc.examples.onnx_export import export_onnx
from nnlcc.examples.train_digits_mlp import SEED, load_data, seed_everything

HERE = Path(__file__).resolve().parent

EPOCHS = 300
BATCH = 128
LR = 0.01
WEIGHT_DECAY = 1e-4
CHANNELS = (4, 8)


def make_model() -> nn.Sequential:
    """Named modules, so the ONNX nodes (and nnlcc's layers) are called conv1, pool1, ..."""
    c1, c2 = CHANNELS
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, c1, 3, padding=1),
            relu1=nn.ReLU(),
            pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(c1, c2, 3, padding=1),
            relu2=nn.ReLU(),
            pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            fc=nn.Linear(c2 * 2 * 2, 10),
        )
    )


def images(x: np.ndarray) -> torch.Tensor:
    """Flat 64-pixel rows (the data files' layout) as ``(batch, 1, 8, 8)`` images."""
    return torch.from_numpy(x).reshape(-1, 1, 8, 8)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = model(images(x)).argmax(dim=1).numpy()
    return float(np.mean(pred == y))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray) -> None:
    """Adam on seeded mini-batches with a cosine learning-rate decay."""
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = images(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        perm = torch.randperm(len(xt), generator=gen)
        for s in range(0, len(xt), BATCH):
            idx = perm[s : s + BATCH]
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    model.eval()


def export(model: nn.Module, path: Path) -> None:
    """ONNX with a symbolic batch axis ``batch`` and output ``logits``."""
    export_onnx(model, (1, 8, 8), path, output_name="logits", batch_axis="batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for digits_cnn.onnx")
    args = parser.parse_args()
    seed_everything(SEED)
    x_train, y_train, x_test, y_test = load_data()
    model = make_model()
    train(model, x_train, y_train)
    print(f"train accuracy {accuracy(model, x_train, y_train):.4f}")
    print(f"test accuracy  {accuracy(model, x_test, y_test):.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    export(model, args.out / "digits_cnn.onnx")
    print(f"wrote {args.out / 'digits_cnn.onnx'} (test data: digits.npz)")


if __name__ == "__main__":
    main()
