"""Group-lasso fine-tuning: train an MLP so whole columns become zero, then remove them.

The network of a :class:`~nnlcc.ir.matrix.MatrixGraph` becomes a torch ``nn.Sequential``
(Linear + ReLU) and is trained with cross-entropy plus ``λ · Σ_g sqrt(|g|) · ||g||_2`` over
*groups* (group lasso, Yuan & Lin 2006; for neurons, Scardapane et al. 2017):

* each input of the network: its column of the first weight matrix;
* each hidden neuron: its column in the next layer *and* its own weight row and bias.  The row
  must be in the group: with ReLU, scaling a row up and its column down changes nothing, so a
  penalty on the column alone could be dodged without removing anything.

The penalty is applied as a proximal step after every optimizer step (group soft
thresholding), so groups reach exactly zero rather than hovering near it.  A second phase
retrains the kept weights without the penalty (zero groups held at zero), then
:func:`nnlcc.passes.prune.shrink` removes the zero groups exactly and the result is written as an ONNX
model that nnlcc's frontend and onnxruntime both load.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nnlcc.data import load_npz
from nnlcc.errors import BadInputError
from nnlcc.ir.matrix import DenseLayer, FloatArray, MatrixGraph
from nnlcc.passes.prune import require_mlp, shrink, used_columns

__all__ = [
    "FinetuneOptions",
    "FinetuneResult",
    "LabelledData",
    "export_onnx",
    "finetune",
    "group_lasso_prune",
    "load_labelled",
]

OPSET = 17


@dataclass(frozen=True)
class FinetuneOptions:
    """``group_lasso`` is λ; ``epochs`` with the penalty, then ``retrain_epochs`` without it
    (``None``: half of ``epochs``); SGD with momentum 0.9 and ``lr``, mini-batches of
    ``batch_size``.  ``input_weight`` multiplies the penalty of the network-input groups
    (pixels): above 1 it prunes inputs rather than hidden neurons."""

    group_lasso: float
    epochs: int = 60
    retrain_epochs: int | None = None
    lr: float = 0.1
    batch_size: int = 64
    seed: int = 0
    input_weight: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.group_lasso) and self.group_lasso >= 0):
            raise BadInputError("--group-lasso must be a finite number >= 0")
        if self.epochs < 1:
            raise BadInputError("--epochs must be at least 1")
        if self.retrain_epochs is not None and self.retrain_epochs < 0:
            raise BadInputError("retrain epochs must be >= 0")
        if not (math.isfinite(self.input_weight) and self.input_weight >= 0):
            raise BadInputError("the input group weight must be a finite number >= 0")
        if not (self.lr > 0 and self.batch_size >= 1):
            raise BadInputError("learning rate must be > 0 and batch size >= 1")

    @property
    def retrain(self) -> int:
        return self.epochs // 2 if self.retrain_epochs is None else self.retrain_epochs


@dataclass
class LabelledData:
    x_train: FloatArray
    y_train: npt.NDArray[np.int64]
    x_test: FloatArray
    y_test: npt.NDArray[np.int64]


@dataclass
class FinetuneResult:
    graph: MatrixGraph
    accuracy_before: float
    accuracy_after: float
    shapes_before: list[tuple[int, int]]
    shapes_after: list[tuple[int, int]]
    inputs_before: int
    inputs_after: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    output: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output) if self.output else None,
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
            "shapes_before": [list(s) for s in self.shapes_before],
            "shapes_after": [list(s) for s in self.shapes_after],
            "inputs_before": self.inputs_before,
            "inputs_after": self.inputs_after,
            "seconds": self.seconds,
        }

    def summary(self) -> str:
        def fmt(shapes: list[tuple[int, int]]) -> str:
            return " ".join(f"{r}x{c}" for r, c in shapes)

        return (
            f"accuracy {self.accuracy_before:.4f} -> {self.accuracy_after:.4f}; inputs used "
            f"{self.inputs_before} -> {self.inputs_after}; layers {fmt(self.shapes_before)} -> "
            f"{fmt(self.shapes_after)}"
        )


# --------------------------------------------------------------------------- data


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


# --------------------------------------------------------------------------- torch


@contextlib.contextmanager
def _deterministic(seed: int) -> Iterator[None]:
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


def _torch_model(layers: list[DenseLayer]) -> Any:
    import torch
    from torch import nn

    mods: OrderedDict[str, nn.Module] = OrderedDict()
    for i, layer in enumerate(layers):
        rows, cols = layer.shape
        lin = nn.Linear(cols, rows)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(layer.weight))
            lin.bias.copy_(torch.from_numpy(layer.bias))
        mods[f"l{i}"] = lin
        if layer.relu:
            mods[f"r{i}"] = nn.ReLU()
    return nn.Sequential(mods)


class _Groups:
    """The group-lasso groups of a stack of Linear layers, as views on their parameters."""

    def __init__(self, linears: list[Any], input_weight: float = 1.0) -> None:
        self.linears = linears
        self.input_weight = input_weight
        # group sizes: an input column has rows(0) entries; hidden neuron j of layer i-1 has
        # its column in layer i, its row in layer i-1 and its bias
        self.size = [float(linears[0].weight.shape[0])] + [
            float(nxt.weight.shape[0] + prev.weight.shape[1] + 1)
            for prev, nxt in itertools.pairwise(linears)
        ]

    def norms(self) -> list[Any]:
        """Per boundary ``i`` (0 = network input), the norm of every group."""
        out = [self.linears[0].weight.pow(2).sum(0)]
        for prev, nxt in itertools.pairwise(self.linears):
            out.append(nxt.weight.pow(2).sum(0) + prev.weight.pow(2).sum(1) + prev.bias.pow(2))
        return [n.sqrt() for n in out]

    def penalty(self) -> Any:
        return sum(w * n.sum() for w, n in zip(self.weights, self.norms(), strict=True))

    @property
    def weights(self) -> list[float]:
        """Penalty weight of each boundary's groups: ``sqrt(group size)`` (the usual group
        lasso normalization), times ``input_weight`` for the network inputs."""
        w = [math.sqrt(s) for s in self.size]
        w[0] *= self.input_weight
        return w

    def scale(self, i: int, factor: Any) -> None:
        """Multiply every entry of the groups at boundary ``i`` by ``factor`` (one per group)."""
        if i == 0:
            self.linears[0].weight.mul_(factor[None, :])
            return
        prev, nxt = self.linears[i - 1], self.linears[i]
        nxt.weight.mul_(factor[None, :])
        prev.weight.mul_(factor[:, None])
        prev.bias.mul_(factor)

    def prox(self, step: float) -> None:
        """Group soft thresholding: ``g <- g * max(0, 1 - step * sqrt(|g|) / ||g||)``."""
        import torch

        with torch.no_grad():
            for i, (w, n) in enumerate(zip(self.weights, self.norms(), strict=True)):
                t = step * w
                self.scale(i, torch.clamp(1.0 - t / torch.clamp(n, min=1e-30), min=0.0))

    def masks(self) -> list[Any]:
        import torch

        with torch.no_grad():
            return [(n > 0).to(n.dtype) for n in self.norms()]


def _accuracy(model: Any, x: Any, y: Any) -> float:
    import torch

    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def group_lasso_prune(
    graph: MatrixGraph,
    data: LabelledData,
    opts: FinetuneOptions,
    progress: bool = False,
) -> FinetuneResult:
    """Fine-tune ``graph`` (not modified) with the group-lasso penalty; returns the pruned,
    shrunk copy.  Raises :class:`BadInputError` when λ zeroes every group of a layer."""
    import torch
    from torch import nn

    t0 = time.perf_counter()
    layers = require_mlp(graph, "group-lasso fine-tuning")
    lam = opts.group_lasso
    history: list[dict[str, float]] = []
    with _deterministic(opts.seed):
        model = _torch_model(layers).double()
        linears = [m for m in model if isinstance(m, nn.Linear)]
        groups = _Groups(linears, opts.input_weight)
        xtr = torch.from_numpy(np.ascontiguousarray(data.x_train, dtype=np.float64))
        ytr = torch.from_numpy(data.y_train)
        xte = torch.from_numpy(np.ascontiguousarray(data.x_test, dtype=np.float64))
        yte = torch.from_numpy(data.y_test)
        before = _accuracy(model, xte, yte)
        gen = torch.Generator().manual_seed(opts.seed)
        loss_fn = nn.CrossEntropyLoss()
        total = opts.epochs + opts.retrain

        def run_epoch(opt: Any, masks: list[Any] | None) -> float:
            perm = torch.randperm(len(xtr), generator=gen)
            losses = []
            for s in range(0, len(xtr), opts.batch_size):
                idx = perm[s : s + opts.batch_size]
                opt.zero_grad()
                loss = loss_fn(model(xtr[idx]), ytr[idx])
                loss.backward()
                opt.step()
                if masks is None:
                    groups.prox(opts.lr * lam)
                else:
                    with torch.no_grad():
                        for i, m in enumerate(masks):
                            groups.scale(i, m)
                losses.append(float(loss.detach()))
            return float(np.mean(losses))

        with _progress_bar(progress, total) as bar:
            opt = torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=0.9)
            for epoch in range(opts.epochs):
                loss = run_epoch(opt, None)
                kept = [int(m.sum()) for m in groups.masks()]
                history.append({"epoch": epoch, "loss": loss, "kept_groups": float(sum(kept))})
                bar(f"group lasso λ={lam:g} loss {loss:.3f} kept {'/'.join(map(str, kept))}")
            masks = groups.masks()
            for i, m in enumerate(masks):
                if not bool(m.any()):
                    where = "network input" if i == 0 else f"input of layer {layers[i].name}"
                    raise BadInputError(
                        f"--group-lasso {lam:g} prunes every {where}; use a smaller λ"
                    )
            opt = torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=0.9)
            for epoch in range(opts.retrain):
                loss = run_epoch(opt, masks)
                history.append({"epoch": opts.epochs + epoch, "loss": loss})
                bar(f"retrain kept weights  loss {loss:.3f}")
        after_torch = _accuracy(model, xte, yte)

    pruned = copy.deepcopy(graph)
    for layer, lin in zip(require_mlp(pruned, "fine-tuning"), linears, strict=True):
        layer.weight = lin.weight.detach().numpy().astype(np.float64)
        layer.bias = lin.bias.detach().numpy().astype(np.float64)
        layer.code = None
    shrink(pruned)  # raises BadInputError if a whole layer went
    pruned.verify()
    after = float(np.mean(pruned.forward_float(data.x_test).argmax(1) == data.y_test))
    assert abs(after - after_torch) < 0.01, (after, after_torch)  # the shrink is exact
    return FinetuneResult(
        graph=pruned,
        accuracy_before=before,
        accuracy_after=after,
        shapes_before=[x.shape for x in layers],
        shapes_after=[x.shape for x in require_mlp(pruned, "fine-tuning")],
        inputs_before=len(used_columns(layers[0].weight)),
        inputs_after=len(used_columns(require_mlp(pruned, "fine-tuning")[0].weight)),
        seconds=round(time.perf_counter() - t0, 2),
        history=history,
    )


@contextlib.contextmanager
def _progress_bar(show: bool, total: int) -> Iterator[Any]:
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


def export_onnx(graph: MatrixGraph, path: Path) -> None:
    """Write an MLP ``graph`` as ONNX (Gemm + Relu, opset 17, symbolic batch axis); nodes are
    named ``/<layer>/Gemm`` so the frontend gives the layers back their names."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    layers = require_mlp(graph, "ONNX export")
    nodes = []
    inits = []
    tensor = graph.input_name
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        w = numpy_helper.from_array(layer.weight.astype(np.float32), f"{layer.name}.weight")
        b = numpy_helper.from_array(layer.bias.astype(np.float32), f"{layer.name}.bias")
        inits += [w, b]
        gemm_out = graph.output_name if last and not layer.relu else f"/{layer.name}/Gemm_out"
        nodes.append(
            helper.make_node(
                "Gemm",
                [tensor, w.name, b.name],
                [gemm_out],
                name=f"/{layer.name}/Gemm",
                transB=1,
            )
        )
        tensor = gemm_out
        if layer.relu:
            relu_out = graph.output_name if last else f"/{layer.name}/Relu_out"
            nodes.append(helper.make_node("Relu", [tensor], [relu_out], name=f"/{layer.name}/Relu"))
            tensor = relu_out
    g = helper.make_graph(
        nodes,
        graph.name,
        [
            helper.make_tensor_value_info(
                graph.input_name, TensorProto.FLOAT, ["batch", graph.input_size]
            )
        ],
        [
            helper.make_tensor_value_info(
                graph.output_name, TensorProto.FLOAT, ["batch", graph.output_size]
            )
        ],
        initializer=inits,
    )
    model = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nnlcc"
    )
    model.ir_version = 8  # what onnxruntime releases of the last years all read
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def _write_checked(graph: MatrixGraph, x: FloatArray, output: Path) -> None:
    """Export to a temporary file, check that the frontend and onnxruntime read it back with
    the same outputs as ``graph``, then move it over ``output`` (never a half-written file)."""
    from nnlcc.frontends.onnx import load_onnx, onnx_reference

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".onnx", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        export_onnx(graph, tmp)
        back = load_onnx(tmp)
        assert [x.weight.shape for x in back.matrix_layers()] == [
            x.weight.shape for x in graph.matrix_layers()
        ]
        want = graph.forward_float(x)
        for got in (back.forward_float(x), onnx_reference(tmp, x)):
            err = float(np.max(np.abs(got - want))) if want.size else 0.0
            assert err <= 1e-4 * max(1.0, float(np.max(np.abs(want)))), f"export differs by {err}"
        mask = os.umask(0)
        os.umask(mask)
        tmp.chmod(0o666 & ~mask)  # mkstemp makes it private; the output is an ordinary file
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


def finetune(
    model: Path, data: Path, output: Path, opts: FinetuneOptions, progress: bool = False
) -> FinetuneResult:
    """``nnlcc finetune``: load ``model`` and ``data``, prune by group lasso, write
    ``output`` (only when everything succeeded)."""
    from nnlcc.frontends import load_model

    graph = load_model(Path(model))
    require_mlp(graph, "group-lasso fine-tuning")
    labelled = load_labelled(Path(data), graph)
    res = group_lasso_prune(graph, labelled, opts, progress=progress)
    _write_checked(res.graph, labelled.x_test, Path(output))
    res.output = Path(output)
    return res
