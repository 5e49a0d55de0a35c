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


#: Largest class label accepted (labels index the model's outputs).
MAX_LABEL = 2**31 - 1


def _is_npz(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04" or zipfile.is_zipfile(path)


def load_npz(path: Path, input_size: int, n_classes: int | None = None) -> Dataset:
    """``x_train, y_train, x_test, y_test`` arrays; ``x_*`` of any shape flattening to the
    model's input size, real numbers only; ``y_test`` integer labels in ``0..n_classes-1``
    (``n_classes``: the model's output count, when known)."""
    if not path.is_file():
        raise BadInputError(f"data file '{path}' not found")
    try:
        if not _is_npz(path):
            raise BadInputError(
                f"data file '{path}' is not an .npz archive; save one with numpy.savez"
                " (x_test, y_test, optional x_train)"
            )
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BadInputError(f"data file '{path}' is not a readable .npz ({reason})") from None
    if "x_test" not in arrays:
        raise BadInputError(f"data file '{path}' has no 'x_test' array (has: {', '.join(arrays)})")

    def flat(key: str) -> npt.NDArray[np.float64]:
        raw = np.asarray(arrays[key])
        if raw.dtype.kind not in "biuf":
            raise BadInputError(
                f"data file '{path}': {key} has dtype {raw.dtype}; it must hold real numbers"
            )
        a = raw.astype(np.float64)
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
        y_test = _labels(path, np.asarray(y), n_classes)
        if len(y_test) != len(x_test):
            raise BadInputError(
                f"data file '{path}': y_test has {len(y_test)} labels for {len(x_test)} inputs"
            )
    return Dataset(name=path.name, x_calib=x_calib, x_test=x_test, y_test=y_test)


def _labels(path: Path, y: np.ndarray, n_classes: int | None) -> npt.NDArray[np.int64]:
    """``y_test`` as class indices, refusing anything that is not one."""
    where = f"data file '{path}': y_test"
    if y.dtype.kind not in "biuf":
        raise BadInputError(f"{where} has dtype {y.dtype}; it must hold integer class labels")
    y = y.reshape(-1)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise BadInputError(f"{where} contains NaN or Inf; labels are class indices")
        if np.any(y != np.round(y)):
            raise BadInputError(f"{where} has fractional values; labels are class indices")
    top = n_classes - 1 if n_classes else MAX_LABEL
    if y.size and (np.min(y) < 0 or np.max(y) > top):
        raise BadInputError(
            f"{where} has labels in {np.min(y):g}..{np.max(y):g}; class indices must be in 0..{top}"
        )
    return y.astype(np.int64)


def random_dataset(
    input_size: int, seed: int = 0, n: int = 1000, lo: float = -1.0, hi: float = 1.0
) -> Dataset:
    """Uniform random inputs for models shipped without data (no accuracy, only fidelity)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(lo, hi, size=(n, input_size))
    return Dataset(
        name=f"random uniform[{lo:g}, {hi:g}]", x_calib=x, x_test=x[: n // 2], y_test=None
    )
