"""``nnlcc finetune --circulant B``: train a network with block-circulant weights.

Every dense and conv layer of a chain network (dense, conv, max/avg pool, flatten) is
parametrized by its ``B``-vectors in torch (:class:`~nnlcc.passes.circulant.Layout`: one
vector per ``B x B`` block, conv blocked along its channel axes per spatial tap, ragged edges
zero-padded) and expanded to the weight in every forward pass, so training keeps the structure
exactly.  It starts from the Frobenius projection of the float weights (what the
``circulant`` pass would use without training) and runs Adam with a cosine learning rate on
cross-entropy.  The result is written as ONNX and checked: nnlcc's frontend and onnxruntime
read it back with the same outputs, and every layer is detected as exactly block-circulant (so
``circulant{block=B}`` keeps the trained weights exactly).  The epochs run in the shared loop of
:mod:`nnlcc.finetune.training`; this module adds the parametrization and the loss.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnlcc.errors import BadInputError
from nnlcc.finetune.training import (
    LabelledData,
    Phase,
    Trainer,
    TrainResult,
    deterministic,
    progress_bar,
    run_method,
    stream_perm,
)
from nnlcc.ir.fixed_point import sqnr_db
from nnlcc.ir.matrix import (
    ConvLayer,
    DenseLayer,
    FlattenLayer,
    MatrixGraph,
    MatrixLayer,
    PoolLayer,
)
from nnlcc.passes.circulant import Layout, layout_of

__all__ = ["CirculantOptions", "CirculantResult", "circulant_finetune", "train_circulant"]


@dataclass(frozen=True)
class CirculantOptions:
    """Block size ``block``; ``epochs`` of Adam (``lr``, cosine decay to 0, decoupled weight
    decay ``weight_decay``), mini-batches of ``batch_size``, seeded by ``seed``.  The loss is
    ``(1 - distill)`` cross-entropy plus ``distill`` times the distillation loss from the float
    model (KL divergence at temperature ``temperature``, Hinton et al. 2015): on the digits
    MLP at b=4 it lifted test accuracy from 95.1 % to 96.2 % (float 96.7 %)."""

    block: int
    epochs: int = 200
    lr: float = 0.01
    batch_size: int = 64
    seed: int = 0
    weight_decay: float = 1e-4
    distill: float = 0.7
    temperature: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block < 1:
            raise BadInputError(f"--circulant must be a positive integer, not {self.block!r}")
        if not 2 <= self.block <= 64:
            raise BadInputError(f"--circulant must be in 2..64, not {self.block}")
        if self.epochs < 0:
            raise BadInputError("--epochs must be >= 0")
        if not (self.lr > 0 and self.batch_size >= 1):
            raise BadInputError("learning rate must be > 0 and batch size >= 1")
        if not (0 <= self.distill <= 1 and self.temperature > 0 and self.weight_decay >= 0):
            raise BadInputError("need 0 <= distill <= 1, temperature > 0, weight decay >= 0")


@dataclass(kw_only=True)
class CirculantResult(TrainResult):
    block: int
    accuracy_float: float
    accuracy_projected: float
    accuracy_after: float
    weights: int
    stored_weights: int
    projection_sqnr_db: dict[str, float | None]

    def facts(self) -> dict[str, Any]:
        return {
            "block": self.block,
            "accuracy_float": self.accuracy_float,
            "accuracy_projected": self.accuracy_projected,
            "accuracy_after": self.accuracy_after,
            "weights": self.weights,
            "stored_weights": self.stored_weights,
            "projection_sqnr_db": self.projection_sqnr_db,
        }

    def summary(self) -> str:
        return (
            f"block {self.block}: accuracy {self.accuracy_float:.4f} (float) -> "
            f"{self.accuracy_projected:.4f} (projected) -> {self.accuracy_after:.4f} (trained); "
            f"stored weights {self.weights} -> {self.stored_weights}"
        )


def _check_graph(graph: MatrixGraph, block: int) -> list[Layout | None]:
    """The layout of every layer (None: no weights); names the first layer the trainer
    cannot handle."""
    if not graph.is_chain:
        bad = next(
            (
                la
                for i, la in enumerate(graph.layers)
                if graph.inputs_of(i) != (graph.layers[i - 1].name if i else graph.input_name,)
            ),
            graph.layers[-1],
        )
        raise BadInputError(
            f"--circulant: layer {bad.name} ({bad.kind}) is not supported by the circulant"
            " trainer (it trains chains of dense, conv, pool and flatten layers)"
        )
    out: list[Layout | None] = []
    for layer in graph.layers:
        window = getattr(layer, "window", None)
        if not isinstance(layer, DenseLayer | ConvLayer | PoolLayer | FlattenLayer) or (
            window is not None
            and (window.pads[0] != window.pads[2] or window.pads[1] != window.pads[3])
        ):
            why = "asymmetric padding" if window is not None else "its kind"
            raise BadInputError(
                f"--circulant: layer {layer.name} ({layer.kind}) is not supported by the"
                f" circulant trainer ({why}; it trains chains of dense, conv, pool and flatten"
                " layers)"
            )
        if isinstance(layer, MatrixLayer):
            lay = layout_of(layer, layer.weight, block)
            if lay.too_big():
                raise BadInputError(
                    f"--circulant {block}: block larger than both dimensions of layer"
                    f" {layer.name} ({lay.rows}x{lay.n}"
                    f"{' per tap' if len(lay.groups) > 1 else ''})"
                )
            out.append(lay)
        else:
            out.append(None)
    return out


class _Net:
    """The torch model: block vectors per matrix layer, expanded every forward pass."""

    def __init__(self, graph: MatrixGraph, layouts: list[Layout | None]) -> None:
        import torch

        self.graph = graph
        self.layouts = layouts
        self.vectors: list[Any] = []
        self.biases: list[Any] = []
        self.index: list[Any] = []
        self.perm: list[Any] = []
        flat_image: tuple[int, ...] | None = None
        for layer, lay in zip(graph.layers, layouts, strict=True):
            if isinstance(layer, FlattenLayer):
                flat_image = layer.image
            if not isinstance(layer, MatrixLayer) or lay is None:
                continue
            vecs, _ = lay.project(layer.weight)
            self.vectors.append(torch.tensor(vecs, dtype=torch.float64, requires_grad=True))
            self.biases.append(torch.tensor(layer.bias, dtype=torch.float64, requires_grad=True))
            key, _ = lay._keys()
            self.index.append(torch.from_numpy(key[: lay.rows, : lay.n].copy()))
            perm = None
            if isinstance(layer, DenseLayer) and flat_image is not None:
                perm = torch.from_numpy(stream_perm(flat_image))
            self.perm.append(perm)
            flat_image = None

    def parameters(self) -> list[Any]:
        return [*self.vectors, *self.biases]

    def weight(self, k: int) -> Any:
        """Layer ``k``'s IR matrix (rows x cols) from its vectors."""
        import torch

        v = self.vectors[k]
        mats = [v[g].reshape(-1)[self.index[k]] for g in range(v.shape[0])]
        return torch.cat(mats, dim=1)

    def __call__(self, x: Any) -> Any:
        import torch
        import torch.nn.functional as F

        g = self.graph
        h = x.reshape(len(x), *g.input_shape)
        k = 0
        for layer in g.layers:
            if isinstance(layer, FlattenLayer):
                h = h.reshape(len(h), -1)  # channel-major, as ONNX flattens
            elif isinstance(layer, PoolLayer):
                (kh, kw), s, (pt, pl, _, _) = (
                    layer.window.kernel,
                    layer.window.stride,
                    layer.window.pads,
                )
                if layer.op == "max":
                    h = F.max_pool2d(h, (kh, kw), s, padding=(pt, pl))
                else:
                    h = F.avg_pool2d(h, (kh, kw), s, padding=(pt, pl), count_include_pad=True)
                if layer.relu:
                    h = torch.relu(h)
            elif isinstance(layer, MatrixLayer):
                w = self.weight(k)
                if isinstance(layer, ConvLayer):
                    (kh, kw), cin = layer.window.kernel, layer.image[0]
                    w4 = w.reshape(len(w), kh, kw, cin).permute(0, 3, 1, 2)
                    pt, pl = layer.window.pads[:2]
                    h = F.conv2d(h, w4, self.biases[k], layer.window.stride, (pt, pl))
                else:
                    if self.perm[k] is not None:
                        w = w[:, self.perm[k]]  # ONNX column j reads IR column perm[j]
                    h = h @ w.T + self.biases[k]
                if layer.relu:
                    h = torch.relu(h)
                k += 1
        return h

    def to_graph(self) -> MatrixGraph:
        """A copy of the graph with the trained weights, rounded to float32 as ONNX stores
        them (equal vector entries stay equal: the layers stay exactly block-circulant)."""
        out = copy.deepcopy(self.graph)
        k = 0
        for layer in out.layers:
            if isinstance(layer, MatrixLayer):
                w = self.weight(k).detach().numpy().astype(np.float32).astype(np.float64)
                layer.weight = np.ascontiguousarray(w)
                b = self.biases[k].detach().numpy().astype(np.float32).astype(np.float64)
                layer.bias = b
                layer.code = None
                k += 1
        return out


def _loss(out: Any, y: Any, teacher: Any, opts: CirculantOptions) -> Any:
    import torch.nn.functional as F

    loss = (1 - opts.distill) * F.cross_entropy(out, y)
    if opts.distill:
        t = opts.temperature
        kd = F.kl_div(F.log_softmax(out / t, 1), F.softmax(teacher / t, 1), reduction="batchmean")
        loss = loss + opts.distill * t * t * kd
    return loss


def train_circulant(
    graph: MatrixGraph, data: LabelledData, opts: CirculantOptions, progress: bool = False
) -> CirculantResult:
    """Train ``graph`` (not modified) with ``opts.block``-circulant weights."""
    import torch

    t0 = time.perf_counter()
    layouts = _check_graph(graph, opts.block)
    float_acc = float(np.mean(graph.forward_float(data.x_test).argmax(1) == data.y_test))
    with deterministic(opts.seed), progress_bar(progress, opts.epochs) as bar:
        net = _Net(graph, layouts)
        train = Trainer(net, data, opts.batch_size, opts.seed, bar)
        projected = train.accuracy()
        teacher = torch.from_numpy(graph.forward_float(data.x_train))
        opt = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(opts.epochs, 1))

        def loss(out: Any, idx: Any) -> Any:
            return _loss(out, train.y_train[idx], teacher[idx], opts)

        def report(mean: float) -> tuple[str, dict[str, float]]:
            return f"circulant b={opts.block} loss {mean:.3f}", {}

        train.run(Phase(opts.epochs, opt, loss, report, scheduler=sched))
        trained = net.to_graph()
    after = float(np.mean(trained.forward_float(data.x_test).argmax(1) == data.y_test))
    sqnrs: dict[str, float | None] = {}
    for layer, lay in zip(graph.layers, layouts, strict=True):
        if isinstance(layer, MatrixLayer) and lay is not None:
            db = sqnr_db(layer.weight, lay.expand(lay.project(layer.weight)[0]))
            sqnrs[layer.name] = round(db, 3) if math.isfinite(db) else None
    return CirculantResult(
        graph=trained,
        block=opts.block,
        accuracy_float=float_acc,
        accuracy_projected=projected,
        accuracy_after=after,
        weights=sum(la.weight.size for la in graph.matrix_layers()),
        stored_weights=sum(lay.stored for lay in layouts if lay is not None),
        projection_sqnr_db=sqnrs,
        seconds=round(time.perf_counter() - t0, 2),
        history=train.history,
    )


def _exactly_circulant(block: int) -> Callable[[MatrixGraph], None]:
    """The extra check of the written model: every layer detected as exactly
    ``block``-circulant."""

    def check(back: MatrixGraph) -> None:
        for layer in back.matrix_layers():
            _, exact = layout_of(layer, layer.weight, block).project(layer.weight)
            assert exact, f"layer {layer.name} is not exactly block-circulant after export"

    return check


def circulant_finetune(
    model: Path, data: Path, output: Path, opts: CirculantOptions, progress: bool = False
) -> CirculantResult:
    """``nnlcc finetune --circulant B``: load, train, write ``output`` (only on success)."""
    return run_method(
        model,
        data,
        output,
        lambda graph, labelled: train_circulant(graph, labelled, opts, progress=progress),
        lambda graph: _check_graph(graph, opts.block),
        _exactly_circulant(opts.block),
    )
