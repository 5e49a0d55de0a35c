"""Train the recurrent example: an LSTM reading scikit-learn's 8×8 digits row by row.

    LSTM (8 inputs per step, 8 steps, hidden 16) → last hidden state → fc 16→10

Each image is a sequence of its 8 rows (8 pixels each): the rows of ``digits.npz``'s flat
64-pixel inputs, in order, so ``nnlcc compile examples/digits_lstm.onnx`` measures accuracy on
the same test images as the MLP and the CNN.  The same seeded split as
``train_digits_mlp.py``:

    .venv/bin/python examples/train_digits_lstm.py

Everything is seeded and torch runs in deterministic mode on one thread, so two runs write the
same weights (about 20 s on one core).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nnlcc.examples.onnx_export import export_onnx
from nnlcc.examples.train_digits_mlp import SEED, load_data, seed_everything

HERE = Path(__file__).resolve().parent

STEPS = 8
INPUTS = 8
HIDDEN = 16
EPOCHS = 150
BATCH = 64
LR = 0.01
WEIGHT_DECAY = 1e-4


class DigitsLSTM(nn.Module):
    """The LSTM and its classifier; the ONNX nodes (and nnlcc's layers) are ``rnn`` and
    ``fc``."""

    def __init__(self, cell: str = "lstm") -> None:
        super().__init__()
        kind = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = kind(INPUTS, HIDDEN, batch_first=True)
        self.fc = nn.Linear(HIDDEN, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, state = self.rnn(x)  # x: (batch, 8 steps, 8 pixels)
        h = state[0] if isinstance(state, tuple) else state
        return self.fc(h[-1])


def sequences(x: np.ndarray) -> torch.Tensor:
    """Flat 64-pixel rows (the data files' layout) as ``(batch, 8 steps, 8 pixels)``."""
    return torch.from_numpy(x).reshape(-1, STEPS, INPUTS)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = model(sequences(x)).argmax(dim=1).numpy()
    return float(np.mean(pred == y))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = EPOCHS) -> None:
    """Adam on seeded mini-batches with a cosine learning-rate decay."""
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = sequences(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for s in range(0, len(xt), BATCH):
            idx = perm[s : s + BATCH]
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    model.eval()


def export(model: nn.Module, path: Path) -> None:
    """ONNX with a symbolic batch axis ``batch``, input ``(batch, 8, 8)``, output ``logits``."""
    export_onnx(model, (STEPS, INPUTS), path, output_name="logits", batch_axis="batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for digits_lstm.onnx")
    parser.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args()
    seed_everything(SEED)
    x_train, y_train, x_test, y_test = load_data()
    model = DigitsLSTM(args.cell)
    train(model, x_train, y_train, args.epochs)
    print(f"train accuracy {accuracy(model, x_train, y_train):.4f}")
    print(f"test accuracy  {accuracy(model, x_test, y_test):.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"digits_{args.cell}.onnx"
    export(model, path)
    print(f"wrote {path} (test data: digits.npz)")


if __name__ == "__main__":
    main()
