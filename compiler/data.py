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
    """Calibration inputs, the test set, and the labelled data ``--accuracy-drop`` chooses
    on (``x_val``/``y_val``, where ``val_source`` says what it is; None: none apart from the
    test set)."""

    name: str
    x_calib: npt.NDArray[np.float64]
    x_test: npt.NDArray[np.float64]
    y_test: npt.NDArray[np.int64] | None
    x_val: npt.NDArray[np.float64] | None = None
    y_val: npt.NDArray[np.int64] | None = None
    val_source: str | None = None

    @property
    def labelled(self) -> bool:
        return self.y_test is not None


#: The share of a labelled training set ``--accuracy-drop`` chooses on (seeded).
VAL_FRACTION = 0.2


#: Largest class label accepted (labels index the model's outputs).
MAX_LABEL = 2**31 - 1


def _is_npz(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04" or zipfile.is_zipfile(path)


def _read(path: Path, what: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise BadInputError(f"{what} '{path}' not found")
    try:
        if not _is_npz(path):
            raise BadInputError(
                f"{what} '{path}' is not an .npz archive; save one with numpy.savez"
                " (x_test, y_test, optional x_train)"
            )
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BadInputError(f"{what} '{path}' is not a readable .npz ({reason})") from None


def _flat(
    arrays: dict[str, np.ndarray], key: str, where: str, input_size: int
) -> npt.NDArray[np.float64]:
    raw = np.asarray(arrays[key])
    if raw.dtype.kind not in "biuf":
        raise BadInputError(f"{where}: {key} has dtype {raw.dtype}; it must hold real numbers")
    a = raw.astype(np.float64)
    if a.ndim < 1 or a.size == 0 or a.size % max(len(a), 1) or a[0].size != input_size:
        raise BadInputError(
            f"{where}: {key} has shape {a.shape}, the model expects "
            f"{input_size} input features per sample"
        )
    a = a.reshape(len(a), input_size)
    if not np.all(np.isfinite(a)):
        raise BadInputError(f"{where}: {key} contains NaN or Inf")
    return a


def _labelled(
    arrays: dict[str, np.ndarray], xk: str, yk: str, where: str, size: int, n_classes: int | None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    x = _flat(arrays, xk, where, size)
    y = _labels(where, yk, np.asarray(arrays[yk]), n_classes)
    if len(y) != len(x):
        raise BadInputError(f"{where}: {yk} has {len(y)} labels for {len(x)} inputs")
    return x, y


def load_npz(path: Path, input_size: int, n_classes: int | None = None) -> Dataset:
    """``x_train, y_train, x_test, y_test`` arrays; ``x_*`` of any shape flattening to the
    model's input size, real numbers only; ``y_*`` integer labels in ``0..n_classes-1``
    (``n_classes``: the model's output count, when known).  With ``x_train`` and ``y_train``,
    a seeded :data:`VAL_FRACTION` of the training set is the validation data
    ``--accuracy-drop`` chooses on (calibration still reads the whole training set: it uses
    no labels)."""
    arrays = _read(path, "data file")
    where = f"data file '{path}'"
    if "x_test" not in arrays:
        raise BadInputError(f"{where} has no 'x_test' array (has: {', '.join(arrays)})")
    x_test = _flat(arrays, "x_test", where, input_size)
    x_calib = _flat(arrays, "x_train", where, input_size) if "x_train" in arrays else x_test
    y_test = None
    if arrays.get("y_test") is not None:
        _, y_test = _labelled(arrays, "x_test", "y_test", where, input_size, n_classes)
    data = Dataset(name=path.name, x_calib=x_calib, x_test=x_test, y_test=y_test)
    if "x_train" in arrays and "y_train" in arrays:
        x, y = _labelled(arrays, "x_train", "y_train", where, input_size, n_classes)
        n_val = int(len(x) * VAL_FRACTION)
        if n_val >= 1 and len(x) - n_val >= 1:
            val = np.sort(np.random.default_rng(0).permutation(len(x))[:n_val])
            data.x_val, data.y_val = x[val], y[val]
            data.val_source = (
                f"validation split: {n_val} of the {len(x)} training samples of {path.name}"
                " (seeded), none of the test set"
            )
    return data


def load_val(
    path: Path, input_size: int, n_classes: int | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """``--val``: an .npz with ``x_val`` and ``y_val`` (or ``x``, ``y``) for the model."""
    arrays = _read(path, "--val file")
    where = f"--val file '{path}'"
    for xk, yk in (("x_val", "y_val"), ("x", "y")):
        if xk in arrays and yk in arrays:
            return _labelled(arrays, xk, yk, where, input_size, n_classes)
    raise BadInputError(f"{where} needs arrays x_val and y_val (has: {', '.join(arrays)})")


def _labels(file: str, key: str, y: np.ndarray, n_classes: int | None) -> npt.NDArray[np.int64]:
    """Labels ``key`` as class indices, refusing anything that is not one."""
    where = f"{file}: {key}"
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
