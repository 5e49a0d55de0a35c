"""The one training loop of ``nnlcc finetune`` and what every method shares.

A method (:mod:`nnlcc.finetune.group_lasso`, :mod:`nnlcc.finetune.circulant`) builds its torch
model and runs it through :class:`Trainer` in one or more :class:`Phase` s: epochs of one
optimizer over seeded mini-batches of the training set, with the method's loss, an optional
step after every optimizer step (a proximal step, a mask) and a learning-rate schedule.  Around
the loop: the labelled data (:func:`load_labelled`), deterministic torch settings
(:func:`deterministic`), the progress bar, and the ONNX write (:func:`write_checked`): the
trained graph becomes a plain torch module (:func:`graph_module`), is exported with the one
torch -> ONNX export (:func:`nnlcc.examples.onnx_export.export_onnx`), read back by nnlcc's
frontend and onnxruntime and compared, and only then moved over the output.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from nnlcc.data import load_npz
from nnlcc.errors import BadInputError
from nnlcc.ir.matrix import (
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    FloatArray,
    MatrixGraph,
    PoolLayer,
)
from nnlcc.ir.recurrent import RecurrentLayer

__all__ = [
    "LabelledData",
    "Phase",
    "TrainResult",
    "Trainer",
    "deterministic",
    "export_graph",
    "graph_module",
    "load_labelled",
    "run_method",
    "stream_perm",
    "write_checked",
]


# --------------------------------------------------------------------------- data


@dataclass
class LabelledData:
    x_train: FloatArray
    y_train: npt.NDArray[np.int64]
    x_test: FloatArray
    y_test: npt.NDArray[np.int64]


def load_labelled(path: Path, graph: MatrixGraph) -> LabelledData:
    """``x_train, y_train, x_test, y_test`` from an npz, checked against the model: inputs
    flatten to its input size, labels are class indices below its output size."""
    data = load_npz(path, graph.input_size)  # checks x_test / x_train shapes and finiteness
    with np.load(path) as z:
        missing = [k for k in ("x_train", "y_train", "y_test") if k not in z.files]
        if missing:
            raise BadInputError(
                f"data file '{path}' has no {', '.join(missing)} (training needs them)"
            )
        ys = {k: np.asarray(z[k]) for k in ("y_train", "y_test")}
    classes = graph.output_size
    out: dict[str, npt.NDArray[np.int64]] = {}
    for key, x in (("y_train", data.x_calib), ("y_test", data.x_test)):
        y = ys[key].reshape(-1)
        if len(y) != len(x):
            raise BadInputError(
                f"data file '{path}': {key} has {len(y)} labels for {len(x)} inputs"
            )
        if not np.issubdtype(y.dtype, np.number) or np.any(y != np.round(y)):
            raise BadInputError(f"data file '{path}': {key} must hold integer class labels")
        y = y.astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise BadInputError(
                f"data file '{path}': {key} has labels in [{y.min()}, {y.max()}], the model has "
                f"{classes} outputs"
            )
        out[key] = y
    return LabelledData(data.x_calib, out["y_train"], data.x_test, out["y_test"])


# --------------------------------------------------------------------------- the loop


@dataclass(kw_only=True)
class TrainResult:
    """What every method returns: the trained ``graph``, the ``seconds`` it took, one
    ``history`` entry per epoch and the ``output`` file once written; a method adds its own
    facts (:meth:`facts`) and one-line :meth:`summary`."""

    graph: MatrixGraph
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    output: Path | None = None

    def facts(self) -> dict[str, Any]:
        raise NotImplementedError

    def summary(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """What ``nnlcc finetune --json`` prints."""
        out = str(self.output) if self.output else None
        return {"output": out, **self.facts(), "seconds": self.seconds}


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seeded, one thread, deterministic kernels; the global torch settings are restored."""
    import torch

    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det)
        torch.random.set_rng_state(state)


def _nothing() -> None:
    pass


@dataclass
class Phase:
    """``epochs`` of ``optimizer`` over the training set.  ``loss(outputs, batch)`` is the
    method's loss of a mini-batch (``batch``: the indices of its rows in the training set);
    ``after_step`` runs after every optimizer step; ``scheduler`` (a torch LR scheduler) steps
    once per epoch; ``report(mean_loss)`` gives the progress line of an epoch and the facts
    its history entry gets besides ``epoch`` and ``loss``."""

    epochs: int
    optimizer: Any
    loss: Callable[[Any, Any], Any]
    report: Callable[[float], tuple[str, dict[str, float]]]
    after_step: Callable[[], None] = _nothing
    scheduler: Any = None


@dataclass
class Trainer:
    """``model`` (a torch callable) trained on ``data`` in mini-batches of ``batch_size``,
    shuffled by a generator seeded with ``seed``; ``history`` holds one entry per epoch of
    every phase run, numbered on across phases."""

    model: Callable[[Any], Any]
    data: LabelledData
    batch_size: int
    seed: int
    bar: Callable[[str], None]
    history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import torch

        self.x_train = torch.from_numpy(np.ascontiguousarray(self.data.x_train, dtype=np.float64))
        self.y_train = torch.from_numpy(self.data.y_train)
        self.x_test = torch.from_numpy(np.ascontiguousarray(self.data.x_test, dtype=np.float64))
        self.y_test = torch.from_numpy(self.data.y_test)
        self._gen = torch.Generator().manual_seed(self.seed)

    def accuracy(self) -> float:
        """Test-set accuracy of the model as it is now."""
        import torch

        with torch.no_grad():
            return float((self.model(self.x_test).argmax(1) == self.y_test).double().mean())

    def run(self, phase: Phase) -> None:
        import torch

        n = len(self.x_train)
        for _ in range(phase.epochs):
            perm = torch.randperm(n, generator=self._gen)
            losses = []
            for s in range(0, n, self.batch_size):
                idx = perm[s : s + self.batch_size]
                phase.optimizer.zero_grad()
                loss = phase.loss(self.model(self.x_train[idx]), idx)
                loss.backward()
                phase.optimizer.step()
                phase.after_step()
                losses.append(float(loss.detach()))
            if phase.scheduler is not None:
                phase.scheduler.step()
            mean = float(np.mean(losses))
            text, facts = phase.report(mean)
            self.history.append({"epoch": len(self.history), "loss": mean, **facts})
            self.bar(text)


@contextlib.contextmanager
def progress_bar(show: bool, total: int) -> Iterator[Callable[[str], None]]:
    """``bar(text)`` advances one epoch; a rich progress bar on stderr when ``show``."""
    if not show:
        yield lambda _text: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("epoch"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=False,
    ) as prog:
        task = prog.add_task("", total=total)
        yield lambda text: prog.update(task, advance=1, description=text)


# --------------------------------------------------------------------------- ONNX


def stream_perm(image: tuple[int, ...]) -> npt.NDArray[np.int64]:
    """For each ONNX (channel-major) flat index, the IR's stream-order index."""
    c, h, w = image
    ch, y, x = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((y * w + x) * c + ch).reshape(-1)


#: torch's gate order from nnlcc's (ONNX's): LSTM i, o, f, c -> i, f, g, o; GRU z, r, h -> r, z, n
_TORCH_GATES = {"lstm": (0, 2, 3, 1), "gru": (1, 0, 2)}


def _recurrent_module(layer: RecurrentLayer) -> Any:
    """A torch module running ``layer`` on ``(batch, T, I)`` and returning its last hidden
    state (torch exports it as the ONNX ``LSTM``/``GRU`` node nnlcc's frontend reads back)."""
    import torch
    from torch import nn

    hd = layer.hidden
    order = np.concatenate([np.arange(g * hd, (g + 1) * hd) for g in _TORCH_GATES[layer.cell]])
    kind = nn.LSTM if layer.cell == "lstm" else nn.GRU
    rnn: Any = kind(layer.input_size, hd, batch_first=True)
    with torch.no_grad():
        for param, value in (
            (rnn.weight_ih_l0, layer.w.weight),
            (rnn.weight_hh_l0, layer.r.weight),
            (rnn.bias_ih_l0, layer.w.bias),
            (rnn.bias_hh_l0, layer.r.bias),
        ):
            param.copy_(torch.from_numpy(np.ascontiguousarray(value[order])))

    class LastState(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn: Any = rnn

        def forward(self, x: Any) -> Any:
            state = self.rnn(x)[1]
            return (state[0] if isinstance(state, tuple) else state)[-1]

    return LastState()


def graph_module(graph: MatrixGraph) -> Any:
    """A plain torch ``Sequential`` computing a chain ``graph`` (dense, conv, pool, flatten,
    an LSTM or GRU), its modules named after the layers so that the exported nodes give the
    names back."""
    import torch
    from torch import nn

    mods: OrderedDict[str, nn.Module] = OrderedDict()
    flat: tuple[int, ...] | None = None
    for i, layer in enumerate(graph.layers):
        name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in layer.name) or f"l{i}"
        if isinstance(layer, RecurrentLayer):
            mods[name] = _recurrent_module(layer)
            continue
        if isinstance(layer, FlattenLayer):
            mods[name] = nn.Flatten()
            flat = layer.image
            continue
        if isinstance(layer, PoolLayer):
            (kh, kw), s, (pt, pl, _, _) = (
                layer.window.kernel,
                layer.window.stride,
                layer.window.pads,
            )
            mods[name] = (
                nn.MaxPool2d((kh, kw), s, (pt, pl))
                if layer.op == "max"
                else nn.AvgPool2d((kh, kw), s, (pt, pl), count_include_pad=True)
            )
        elif isinstance(layer, ConvLayer):
            (kh, kw), cin = layer.window.kernel, layer.image[0]
            conv = nn.Conv2d(
                cin, layer.shape[0], (kh, kw), layer.window.stride, layer.window.pads[:2]
            )
            w4 = layer.weight.reshape(layer.shape[0], kh, kw, cin).transpose(0, 3, 1, 2)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w4)))
                assert conv.bias is not None
                conv.bias.copy_(torch.from_numpy(layer.bias))
            mods[name] = conv
        elif isinstance(layer, DenseLayer):
            lin = nn.Linear(layer.shape[1], layer.shape[0])
            w = layer.weight
            if flat is not None:
                w = w[:, stream_perm(flat)]  # ONNX column j reads IR column perm[j]
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                lin.bias.copy_(torch.from_numpy(layer.bias))
            mods[name] = lin
        flat = None
        if getattr(layer, "relu", False):
            mods[f"{name}_relu"] = nn.ReLU()
    return nn.Sequential(mods).float().eval()


def export_graph(graph: MatrixGraph, path: Path) -> Path:
    """Write a chain ``graph`` as ONNX (float32 weights, symbolic batch axis ``batch``)."""
    from nnlcc.examples.onnx_export import export_onnx

    return export_onnx(
        graph_module(graph),
        tuple(graph.input_shape),
        path,
        input_name=graph.input_name,
        output_name=graph.output_name,
        batch_axis="batch",
    )


R = TypeVar("R", bound="TrainResult")


def run_method(
    model: Path,
    data: Path,
    output: Path,
    train: Callable[[MatrixGraph, LabelledData], R],
    accepts: Callable[[MatrixGraph], object],
    check: Callable[[MatrixGraph], None] | None = None,
) -> R:
    """A fine-tuning command: load ``model`` (``accepts`` raises on one the method cannot
    train) and ``data``, ``train``, write ``output`` checked (:func:`write_checked`, with the
    method's ``check``) only when everything succeeded."""
    from nnlcc.frontends import load_model

    graph = load_model(Path(model))
    accepts(graph)
    labelled = load_labelled(Path(data), graph)
    res = train(graph, labelled)
    write_checked(res.graph, labelled.x_test, Path(output), check)
    res.output = Path(output)
    return res


def write_checked(
    graph: MatrixGraph,
    x: FloatArray,
    output: Path,
    check: Callable[[MatrixGraph], None] | None = None,
) -> None:
    """Export ``graph`` to a temporary file; check that the frontend and onnxruntime read it
    back with the same matrix shapes and the same outputs on ``x`` (and ``check`` of what the
    frontend read), then move it over ``output`` (never a half-written file)."""
    from nnlcc.frontends.onnx import load_onnx, onnx_reference

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".onnx", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        export_graph(graph, tmp)
        back = load_onnx(tmp)
        assert [la.weight.shape for la in back.matrix_layers()] == [
            la.weight.shape for la in graph.matrix_layers()
        ]
        want = graph.forward_float(x)
        for got in (back.forward_float(x), onnx_reference(tmp, x)):
            err = float(np.max(np.abs(got - want))) if want.size else 0.0
            assert err <= 1e-4 * max(1.0, float(np.max(np.abs(want)))), f"export differs by {err}"
        if check is not None:
            check(back)
        mask = os.umask(0)
        os.umask(mask)
        tmp.chmod(0o666 & ~mask)  # mkstemp makes it private; the output is an ordinary file
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
