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
:func:`nnlcc.passes.prune.shrink` removes the zero groups exactly and the result is written as
an ONNX model that nnlcc's frontend and onnxruntime both load.  Both phases run in the shared
loop of :mod:`nnlcc.finetune.training`; this module adds the groups, the proximal step and
the masks.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnlcc.errors import BadInputError
from nnlcc.finetune.conv_lasso import ColumnsSchedule, cnn_columns_prune, require_cnn
from nnlcc.finetune.training import (
    LabelledData,
    Phase,
    Trainer,
    TrainResult,
    deterministic,
    progress_bar,
    run_method,
)
from nnlcc.ir.matrix import ConvLayer, DenseLayer, MatrixGraph
from nnlcc.passes.prune import require_mlp, shrink, used_columns

__all__ = ["FinetuneOptions", "FinetuneResult", "finetune", "group_lasso_prune"]


MLP_LR = 0.1
CNN_LR = 0.01


@dataclass(frozen=True)
class FinetuneOptions:
    """``group_lasso`` is λ; ``epochs`` with the penalty, then ``retrain_epochs`` without it
    (``None``: half of ``epochs``); SGD with momentum 0.9 and ``lr`` (:meth:`rate`), mini-batches of
    ``batch_size``.  ``input_weight`` multiplies the penalty of the network-input groups
    (pixels): above 1 it prunes inputs rather than hidden neurons.  ``channel_weight`` (CNNs):
    every output channel of a convolution is one more group (the next layer's columns reading
    it), its penalty this factor times λ; a channel at zero is removed."""

    group_lasso: float
    epochs: int = 60
    retrain_epochs: int | None = None
    lr: float | None = None  # None: MLP_LR, or CNN_LR for a CNN
    batch_size: int = 64
    seed: int = 0
    input_weight: float = 1.0
    channel_weight: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.group_lasso) and self.group_lasso >= 0):
            raise BadInputError("--group-lasso must be a finite number >= 0")
        if self.epochs < 1:
            raise BadInputError("--epochs must be at least 1")
        if self.retrain_epochs is not None and self.retrain_epochs < 0:
            raise BadInputError("retrain epochs must be >= 0")
        if not (math.isfinite(self.input_weight) and self.input_weight >= 0):
            raise BadInputError("the input group weight must be a finite number >= 0")
        if not (math.isfinite(self.channel_weight) and self.channel_weight >= 0):
            raise BadInputError("--channel-weight must be a finite number >= 0")
        if not ((self.lr is None or self.lr > 0) and self.batch_size >= 1):
            raise BadInputError("learning rate must be > 0 and batch size >= 1")

    def rate(self, cnn: bool) -> float:
        """The learning rate: ``lr``, else the method's default (SGD on a CNN needs a smaller
        one: at 0.1 the digits CNN diverged)."""
        return self.lr if self.lr is not None else (CNN_LR if cnn else MLP_LR)

    @property
    def retrain(self) -> int:
        return self.epochs // 2 if self.retrain_epochs is None else self.retrain_epochs


@dataclass(kw_only=True)
class FinetuneResult(TrainResult):
    accuracy_before: float
    accuracy_after: float
    shapes_before: list[tuple[int, int]]
    shapes_after: list[tuple[int, int]]
    inputs_before: int
    inputs_after: int
    # a CNN's columns used per matrix layer (nnlcc.finetune.conv_lasso); empty for an MLP
    columns_before: list[int] = field(default_factory=list)
    columns_after: list[int] = field(default_factory=list)

    def facts(self) -> dict[str, Any]:
        cnn = {"columns_before": self.columns_before, "columns_after": self.columns_after}
        return {
            **(cnn if self.columns_before else {}),
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
            "shapes_before": [list(s) for s in self.shapes_before],
            "shapes_after": [list(s) for s in self.shapes_after],
            "inputs_before": self.inputs_before,
            "inputs_after": self.inputs_after,
        }

    def summary(self) -> str:
        def fmt(shapes: list[tuple[int, int]]) -> str:
            return " ".join(f"{r}x{c}" for r, c in shapes)

        if self.columns_before:
            return (
                f"accuracy {self.accuracy_before:.4f} -> {self.accuracy_after:.4f}; columns"
                f" used per layer {'/'.join(map(str, self.columns_before))} ->"
                f" {'/'.join(map(str, self.columns_after))}; layers {fmt(self.shapes_before)}"
                f" -> {fmt(self.shapes_after)}"
            )
        return (
            f"accuracy {self.accuracy_before:.4f} -> {self.accuracy_after:.4f}; inputs used "
            f"{self.inputs_before} -> {self.inputs_after}; layers {fmt(self.shapes_before)} -> "
            f"{fmt(self.shapes_after)}"
        )


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

    if any(isinstance(la, ConvLayer) for la in graph.layers):  # a CNN: its im2col columns
        return _prune_cnn(graph, data, opts, progress)
    t0 = time.perf_counter()
    layers = require_mlp(graph, "group-lasso fine-tuning")
    lam = opts.group_lasso
    with deterministic(opts.seed), progress_bar(progress, opts.epochs + opts.retrain) as bar:
        model = _torch_model(layers).double()
        linears = [m for m in model if isinstance(m, nn.Linear)]
        groups = _Groups(linears, opts.input_weight)
        train = Trainer(model, data, opts.batch_size, opts.seed, bar)
        before = train.accuracy()
        loss_fn = nn.CrossEntropyLoss()

        def loss(out: Any, idx: Any) -> Any:
            return loss_fn(out, train.y_train[idx])

        def kept(mean: float) -> tuple[str, dict[str, float]]:
            k = [int(m.sum()) for m in groups.masks()]
            text = f"group lasso λ={lam:g} loss {mean:.3f} kept {'/'.join(map(str, k))}"
            return text, {"kept_groups": float(sum(k))}

        sgd = torch.optim.SGD(model.parameters(), lr=opts.rate(False), momentum=0.9)
        train.run(Phase(opts.epochs, sgd, loss, kept, lambda: groups.prox(opts.rate(False) * lam)))
        masks = groups.masks()
        for i, m in enumerate(masks):
            if not bool(m.any()):
                where = "network input" if i == 0 else f"input of layer {layers[i].name}"
                raise BadInputError(f"--group-lasso {lam:g} prunes every {where}; use a smaller λ")

        def hold_zeros() -> None:
            with torch.no_grad():
                for i, m in enumerate(masks):
                    groups.scale(i, m)

        def retrained(mean: float) -> tuple[str, dict[str, float]]:
            return f"retrain kept weights  loss {mean:.3f}", {}

        sgd = torch.optim.SGD(model.parameters(), lr=opts.rate(False), momentum=0.9)
        train.run(Phase(opts.retrain, sgd, loss, retrained, hold_zeros))
        after_torch = train.accuracy()

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
        history=train.history,
    )


def _prune_cnn(
    graph: MatrixGraph, data: LabelledData, opts: FinetuneOptions, progress: bool
) -> FinetuneResult:
    sched = ColumnsSchedule(
        opts.group_lasso,
        opts.epochs,
        opts.retrain,
        opts.rate(True),
        opts.batch_size,
        opts.seed,
        opts.channel_weight,
    )
    res = cnn_columns_prune(graph, data, sched, progress)
    before, after = graph.matrix_layers(), res.graph.matrix_layers()
    return FinetuneResult(
        graph=res.graph,
        accuracy_before=res.accuracy_before,
        accuracy_after=res.accuracy_after,
        shapes_before=[la.shape for la in before],
        shapes_after=[la.shape for la in after],
        inputs_before=len(used_columns(before[0].weight)),
        inputs_after=len(used_columns(after[0].weight)),
        columns_before=res.columns_before,
        columns_after=res.columns_after,
        seconds=res.seconds,
        history=res.history,
    )


def finetune(
    model: Path, data: Path, output: Path, opts: FinetuneOptions, progress: bool = False
) -> FinetuneResult:
    """``nnlcc finetune``: load ``model`` and ``data``, prune by group lasso, write
    ``output`` (only when everything succeeded)."""
    return run_method(
        model,
        data,
        output,
        lambda graph, labelled: group_lasso_prune(graph, labelled, opts, progress=progress),
        _accepts,
    )


def _accepts(graph: MatrixGraph) -> object:
    """An MLP (neurons and inputs pruned) or a chain CNN (im2col columns pruned)."""
    if any(isinstance(la, ConvLayer) for la in graph.layers):
        return require_cnn(graph, "group-lasso fine-tuning")
    return require_mlp(graph, "group-lasso fine-tuning")
