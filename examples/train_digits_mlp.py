"""Train the shipped example: a 64→16→10 ReLU MLP on scikit-learn's 8×8 digits.

The data set ships with scikit-learn (no download) and full-batch training takes seconds on a
CPU, so anyone can regenerate ``digits_mlp.onnx`` and ``digits.npz`` bit for bit:

    .venv/bin/python examples/train_digits_mlp.py

Everything is seeded and torch runs in deterministic mode on one thread, so two runs write the
same weights.
"""

from __future__ import annotations

import argparse
import random
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from nnlcc.examples.onnx_export import export_onnx

SEED = 0
HIDDEN = 16
EPOCHS = 400
LR = 0.01
WEIGHT_DECAY = 1e-4
HERE = Path(__file__).resolve().parent


def seed_everything(seed: int) -> None:
    """Pin every source of randomness (and the thread count, which changes float sums)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits scaled to [0, 1] (pixels are 0..16) and a stratified 75/25 split."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=SEED
    )
    return x_train, y_train, x_test, y_test


def make_model() -> nn.Sequential:
    """Named modules, so the ONNX nodes (and nnlcc's layers) are called fc1 and fc2."""
    return nn.Sequential(
        OrderedDict(fc1=nn.Linear(64, HIDDEN), relu1=nn.ReLU(), fc2=nn.Linear(HIDDEN, 10))
    )


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float(np.mean(pred == y))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray) -> None:
    """Full-batch Adam: the set is small enough that mini-batches only add noise."""
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(EPOCHS):
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
    model.eval()


def export(model: nn.Module, path: Path) -> None:
    """ONNX with a symbolic batch axis ``batch`` and output ``logits``."""
    export_onnx(model, (64,), path, output_name="logits", batch_axis="batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the two files")
    args = parser.parse_args()
    seed_everything(SEED)
    x_train, y_train, x_test, y_test = load_data()
    model = make_model()
    train(model, x_train, y_train)
    print(f"train accuracy {accuracy(model, x_train, y_train):.4f}")
    print(f"test accuracy  {accuracy(model, x_test, y_test):.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    export(model, args.out / "digits_mlp.onnx")
    np.savez_compressed(
        args.out / "digits.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
    )
    print(f"wrote {args.out / 'digits_mlp.onnx'} and {args.out / 'digits.npz'}")


if __name__ == "__main__":
    main()
