"""Data sets the compiler uses: calibration inputs, test inputs and labels for accuracy."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError


@dataclass
class Dataset:
    name: str
    x_calib: npt.NDArray[np.float64]
    x_test: npt.NDArray[np.float64]
    y_test: npt.NDArray[np.int64] | None

    @property
    def labelled(self) -> bool:
        return self.y_test is not None


def load_npz(path: Path, input_size: int) -> Dataset:
    """``x_train, y_train, x_test, y_test`` arrays; ``x_*`` of any shape flattening to the
    model's input size."""
    if not path.is_file():
        raise BadInputError(f"data file '{path}' not found")
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise BadInputError(f"data file '{path}' is not a readable .npz ({e})") from None
    if "x_test" not in arrays:
        raise BadInputError(f"data file '{path}' has no 'x_test' array (has: {', '.join(arrays)})")

    def flat(key: str) -> npt.NDArray[np.float64]:
        a = np.asarray(arrays[key], dtype=np.float64)
        if a.ndim < 1 or a.size == 0 or a.size % max(len(a), 1) or a[0].size != input_size:
            raise BadInputError(
                f"data file '{path}': {key} has shape {a.shape}, the model expects "
                f"{input_size} input features per sample"
            )
        a = a.reshape(len(a), input_size)
        if not np.all(np.isfinite(a)):
            raise BadInputError(f"data file '{path}': {key} contains NaN or Inf")
        return a

    x_test = flat("x_test")
    x_calib = flat("x_train") if "x_train" in arrays else x_test
    y = arrays.get("y_test")
    y_test = None
    if y is not None:
        y_test = np.asarray(y).astype(np.int64).reshape(-1)
        if len(y_test) != len(x_test):
            raise BadInputError(
                f"data file '{path}': y_test has {len(y_test)} labels for {len(x_test)} inputs"
            )
    return Dataset(name=path.name, x_calib=x_calib, x_test=x_test, y_test=y_test)


def random_dataset(
    input_size: int, seed: int = 0, n: int = 1000, lo: float = -1.0, hi: float = 1.0
) -> Dataset:
    """Uniform random inputs for models shipped without data (no accuracy, only fidelity)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(lo, hi, size=(n, input_size))
    return Dataset(
        name=f"random uniform[{lo:g}, {hi:g}]", x_calib=x, x_test=x[: n // 2], y_test=None
    )
