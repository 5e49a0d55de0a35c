"""Group lasso on a CNN's im2col columns: ``nnlcc finetune --group-lasso λ`` on a chain of
conv, pool, flatten and dense layers.

A matrix layer's column is what one input of its adder graph multiplies: for a convolution an
*im2col column*, one input channel at one kernel position (``weight[:, c, y, x]`` of the torch
``Conv2d``, column ``(y * kw + x) * cin + c`` of nnlcc's window matrix); for a dense layer one
input.  Each column is a group of the penalty ``λ · Σ_g sqrt(|g|) · ||g||_2``, applied as a
proximal step (group soft thresholding) after every optimizer step, so columns reach exactly
zero.  A second phase retrains the kept weights with the zero columns held at zero.  A zero
column is an input the matrix pass never reads, and the compile's ``columns used`` counts what
is left.  Where every column reading one output channel of a convolution is zero, the channel
is dead and :func:`drop_dead_channels` removes it: the filter (a row of the conv), its channel of
the pools and the flatten between, and the zero columns of the next matrix layer, so the
hardware neither computes nor stores it; the function is unchanged.  The
torch model is :func:`~nnlcc.finetune.training.graph_module`, the plain module the ONNX write
exports, so what is trained is what is written.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnlcc.errors import BadInputError, UnsupportedModelError
from nnlcc.finetune.training import (
    LabelledData,
    Phase,
    Trainer,
    deterministic,
    graph_module,
    progress_bar,
    stream_perm,
)
from nnlcc.ir.matrix import ConvLayer, DenseLayer, FlattenLayer, MatrixGraph, MatrixLayer, PoolLayer
from nnlcc.passes.prune import used_columns

__all__ = [
    "ColumnsPruned",
    "ColumnsSchedule",
    "cnn_columns_prune",
    "drop_dead_channels",
    "require_cnn",
]


def require_cnn(graph: MatrixGraph, what: str) -> list[MatrixLayer]:
    """The matrix layers of a chain of conv, pool, flatten and dense layers with at least one
    convolution; else one line naming the first layer that is not."""
    if not graph.is_chain:
        raise UnsupportedModelError(f"{what} works on chains of layers (no residual adds)")
    for layer in graph.layers:
        if not isinstance(layer, ConvLayer | DenseLayer | PoolLayer | FlattenLayer):
            raise UnsupportedModelError(
                f"{what}: layer {layer.name} ({layer.kind}) is not supported (it trains MLPs"
                " and chains of conv, pool, flatten and dense layers)"
            )
    return graph.matrix_layers()


class _Columns:
    """The im2col columns of the torch model's matrix modules, as groups."""

    def __init__(self, mods: list[Any], channel_weight: float = 0.0) -> None:
        self.mods = mods
        self.weights = [math.sqrt(float(m.weight.shape[0])) for m in mods]
        # (consumer k, channels C): every column of mods[k] reading one output channel of the
        # convolution mods[k - 1] is one more group, weighted by channel_weight
        self.channels = [
            (k, int(mods[k - 1].weight.shape[0]))
            for k in range(1, len(mods))
            if channel_weight > 0 and mods[k - 1].weight.dim() == 4
        ]
        self.channel_weight = channel_weight

    def norms(self) -> list[Any]:
        return [m.weight.pow(2).sum(0).sqrt() for m in self.mods]

    def scale(self, k: int, factor: Any) -> None:
        self.mods[k].weight.mul_(factor[None])

    def prox(self, step: float) -> None:
        import torch

        with torch.no_grad():
            for k, (w, n) in enumerate(zip(self.weights, self.norms(), strict=True)):
                self.scale(k, torch.clamp(1.0 - step * w / torch.clamp(n, min=1e-30), min=0.0))
            for k, c in self.channels:
                # torch orders a consumer's columns channel-major (conv and flattened alike)
                w = self.mods[k].weight.view(self.mods[k].weight.shape[0], c, -1)
                n = w.pow(2).sum((0, 2)).sqrt()
                size = math.sqrt(float(w.shape[0] * w.shape[2]))
                w.mul_(
                    torch.clamp(
                        1.0 - step * self.channel_weight * size / n.clamp(min=1e-30), min=0.0
                    )[None, :, None]
                )

    def masks(self) -> list[Any]:
        import torch

        with torch.no_grad():
            return [(n > 0).to(n.dtype) for n in self.norms()]


def read_back(graph: MatrixGraph, mods: list[Any]) -> MatrixGraph:
    """A copy of ``graph`` with the trained weights of ``mods`` (torch layout) in IR layout,
    rounded to float32 as ONNX stores them."""
    out = copy.deepcopy(graph)
    flat: tuple[int, ...] | None = None
    k = 0
    for layer in out.layers:
        if isinstance(layer, FlattenLayer):
            flat = layer.image
            continue
        if isinstance(layer, MatrixLayer):
            w = mods[k].weight.detach().numpy().astype(np.float32).astype(np.float64)
            if isinstance(layer, ConvLayer):
                w = w.transpose(0, 2, 3, 1).reshape(len(w), -1)
            elif flat is not None:
                ir = np.zeros_like(w)
                ir[:, stream_perm(flat)] = w
                w = ir
            layer.weight = np.ascontiguousarray(w)
            layer.bias = mods[k].bias.detach().numpy().astype(np.float32).astype(np.float64)
            layer.code = None
            k += 1
        flat = None
    return out


def _dead_channels(conv: ConvLayer, consumer: MatrixLayer) -> list[int]:
    """The output channels of ``conv`` that every column of ``consumer`` reading them ignores.

    The consumer's columns run channels fastest, a convolution's (``(i * kw + j) * C + c``)
    as a dense layer's after a flatten (stream order ``(y * W + x) * C + c``)."""
    c = conv.shape[0]
    used = np.abs(consumer.weight).sum(axis=0) > 0
    return [k for k in range(c) if not used[k::c].any()]


def drop_dead_channels(graph: MatrixGraph) -> tuple[MatrixGraph, list[int]]:
    """A copy of the chain ``graph`` without the dead output channels of its convolutions
    (:func:`_dead_channels`), and the channels each convolution keeps.  The network computes
    the same function: a dead channel only meets zero weights."""
    out = copy.deepcopy(graph)
    kept: list[int] = []
    for i, layer in enumerate(out.layers):
        if not isinstance(layer, ConvLayer):
            continue
        j = i + 1
        while j < len(out.layers) and not isinstance(out.layers[j], MatrixLayer):
            j += 1
        consumer = out.layers[j] if j < len(out.layers) else None
        channels = layer.shape[0]
        dead = _dead_channels(layer, consumer) if isinstance(consumer, MatrixLayer) else []
        keep = np.array([k for k in range(channels) if k not in dead], dtype=np.int64)
        kept.append(len(keep))
        if not dead or not len(keep) or not isinstance(consumer, MatrixLayer):
            continue
        layer.weight = np.ascontiguousarray(layer.weight[keep])
        layer.bias = np.ascontiguousarray(layer.bias[keep])
        for between in out.layers[i + 1 : j]:
            assert isinstance(between, PoolLayer | FlattenLayer), between.kind
            between.image = (len(keep), *between.image[1:])
        cols = np.isin(np.arange(consumer.shape[1]) % channels, keep)
        consumer.weight = np.ascontiguousarray(consumer.weight[:, cols])
        if isinstance(consumer, ConvLayer):
            consumer.image = (len(keep), *consumer.image[1:])
    out.verify()
    return out, kept


@dataclass
class ColumnsPruned:
    """What :func:`cnn_columns_prune` did: the pruned copy (dead channels removed), test
    accuracy before and after, the columns used per matrix layer before and after, the output
    channels each convolution keeps, the epochs' history."""

    graph: MatrixGraph
    accuracy_before: float
    accuracy_after: float
    columns_before: list[int]
    columns_after: list[int]
    seconds: float
    channels_after: list[int] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class ColumnsSchedule:
    """λ, the epochs with the penalty and then without, SGD's learning rate, the batch size
    and the seed (:class:`~nnlcc.finetune.group_lasso.FinetuneOptions` gives them)."""

    lam: float
    epochs: int
    retrain: int
    lr: float
    batch_size: int
    seed: int
    channel_weight: float = 0.0


def cnn_columns_prune(
    graph: MatrixGraph, data: LabelledData, opts: ColumnsSchedule, progress: bool = False
) -> ColumnsPruned:
    """Fine-tune the chain CNN ``graph`` (not modified) with the column penalty; returns the
    pruned copy and the columns kept per layer."""
    import torch
    from torch import nn

    t0 = time.perf_counter()
    layers = require_cnn(graph, "group-lasso fine-tuning")
    lam = opts.lam
    with deterministic(opts.seed), progress_bar(progress, opts.epochs + opts.retrain) as bar:
        module = graph_module(graph).double().train()
        mods = [m for m in module if isinstance(m, nn.Conv2d | nn.Linear)]
        # the data's rows are flat (ONNX order): unflattened to the input image
        model = nn.Sequential(nn.Unflatten(1, tuple(graph.input_shape)), module)
        cols = _Columns(mods, opts.channel_weight)
        train = Trainer(model, data, opts.batch_size, opts.seed, bar)
        before = train.accuracy()
        loss_fn = nn.CrossEntropyLoss()

        def loss(out: Any, idx: Any) -> Any:
            return loss_fn(out, train.y_train[idx])

        def kept(mean: float) -> tuple[str, dict[str, float]]:
            k = [int(m.sum()) for m in cols.masks()]
            text = f"group lasso λ={lam:g} loss {mean:.3f} columns {'/'.join(map(str, k))}"
            return text, {"kept_columns": float(sum(k))}

        sgd = torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=0.9)
        train.run(Phase(opts.epochs, sgd, loss, kept, lambda: cols.prox(opts.lr * lam)))
        masks = cols.masks()
        for layer, m in zip(layers, masks, strict=True):
            if not bool(m.any()):
                raise BadInputError(
                    f"--group-lasso {lam:g} prunes every column of layer {layer.name};"
                    " use a smaller λ"
                )

        def hold_zeros() -> None:
            with torch.no_grad():
                for k, m in enumerate(masks):
                    cols.scale(k, m)

        def retrained(mean: float) -> tuple[str, dict[str, float]]:
            return f"retrain kept weights  loss {mean:.3f}", {}

        sgd = torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=0.9)
        train.run(Phase(opts.retrain, sgd, loss, retrained, hold_zeros))
        after_torch = train.accuracy()
    pruned, channels = drop_dead_channels(read_back(graph, mods))
    after = float(np.mean(pruned.forward_float(data.x_test).argmax(1) == data.y_test))
    assert abs(after - after_torch) < 0.01, (after, after_torch)  # float32 rounding only
    return ColumnsPruned(
        graph=pruned,
        accuracy_before=before,
        accuracy_after=after,
        columns_before=[len(used_columns(la.weight)) for la in layers],
        columns_after=[len(used_columns(la.weight)) for la in pruned.matrix_layers()],
        seconds=round(time.perf_counter() - t0, 2),
        channels_after=channels,
        history=train.history,
    )
