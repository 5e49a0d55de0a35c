"""``nnlcc finetune --circulant B``: train a network with block-circulant weights.

Every dense and conv layer of a chain network (dense, conv, max/avg pool, flatten; or an LSTM
or GRU first, whose two gate matrices are trained so, the cell run in torch as
:meth:`~nnlcc.ir.recurrent.RecurrentLayer.trace` runs it) is parametrized by its ``B``-vectors
in torch (:class:`~nnlcc.passes.circulant.Layout`: one
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
import itertools
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
from nnlcc.ir.recurrent import RecurrentLayer
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


def _check_graph(graph: MatrixGraph, block: int) -> list[Layout]:
    """The layout of every matrix layer (a recurrent layer's two gate matrices in its place);
    names the first layer the trainer cannot handle."""
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
    for i, layer in enumerate(graph.layers):
        if isinstance(layer, RecurrentLayer) and i == 0:
            continue
        window = getattr(layer, "window", None)
        if not isinstance(layer, DenseLayer | ConvLayer | PoolLayer | FlattenLayer) or (
            window is not None
            and (window.pads[0] != window.pads[2] or window.pads[1] != window.pads[3])
        ):
            why = "asymmetric padding" if window is not None else "its kind"
            raise BadInputError(
                f"--circulant: layer {layer.name} ({layer.kind}) is not supported by the"
                f" circulant trainer ({why}; it trains chains of dense, conv, pool and flatten"
                " layers, after an LSTM or GRU first)"
            )
    out: list[Layout] = []
    for layer in graph.matrix_layers():
        lay = layout_of(layer, layer.weight, block)
        if lay.too_big():
            raise BadInputError(
                f"--circulant {block}: block larger than both dimensions of layer"
                f" {layer.name} ({lay.rows}x{lay.n}"
                f"{' per tap' if len(lay.groups) > 1 else ''})"
            )
        out.append(lay)
    return out


class _Net:
    """The torch model: block vectors per matrix layer, expanded every forward pass."""

    def __init__(self, graph: MatrixGraph, layouts: list[Layout]) -> None:
        import torch

        self.graph = graph
        self.layouts = layouts
        self.vectors: list[Any] = []
        self.biases: list[Any] = []
        self.index: list[Any] = []
        self.perm: list[Any] = []
        # a dense layer right after a flatten reads the image channel-major (ONNX's order)
        flat_of = {
            la.name: prev.image
            for prev, la in itertools.pairwise(graph.layers)
            if isinstance(prev, FlattenLayer) and isinstance(la, DenseLayer)
        }
        for layer, lay in zip(graph.matrix_layers(), layouts, strict=True):
            vecs, _ = lay.project(layer.weight)
            self.vectors.append(torch.tensor(vecs, dtype=torch.float64, requires_grad=True))
            self.biases.append(torch.tensor(layer.bias, dtype=torch.float64, requires_grad=True))
            key, _ = lay._keys()
            self.index.append(torch.from_numpy(key[: lay.rows, : lay.n].copy()))
            perm = None
            if layer.name in flat_of:
                perm = torch.from_numpy(stream_perm(flat_of[layer.name]))
            self.perm.append(perm)

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
            elif isinstance(layer, RecurrentLayer):
                h = self._recurrent(layer, k, h)
                k += 2
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

    def _recurrent(self, layer: RecurrentLayer, k: int, x: Any) -> Any:
        """The LSTM or GRU over the sequences ``x`` (batch, T, I) with the gate matrices of
        vectors ``k`` (W) and ``k + 1`` (R), as :meth:`RecurrentLayer.trace`; the last state."""
        import torch

        hd = layer.hidden
        wx = x @ self.weight(k).T + self.biases[k]
        r, rb = self.weight(k + 1), self.biases[k + 1]
        h = torch.zeros(len(x), hd, dtype=x.dtype)
        c = torch.zeros_like(h)
        for t in range(x.shape[1]):
            rh = h @ r.T + rb
            g = wx[:, t]
            if layer.cell == "lstm":
                pre = g + rh
                i, o, f = (torch.sigmoid(pre[:, j * hd : (j + 1) * hd]) for j in range(3))
                c = f * c + i * torch.tanh(pre[:, 3 * hd :])
                h = o * torch.tanh(c)
            else:
                z, rr = (
                    torch.sigmoid(g[:, j * hd : (j + 1) * hd] + rh[:, j * hd : (j + 1) * hd])
                    for j in range(2)
                )
                n = torch.tanh(g[:, 2 * hd :] + rr * rh[:, 2 * hd :])
                h = (1.0 - z) * n + z * h
        return h

    def to_graph(self) -> MatrixGraph:
        """A copy of the graph with the trained weights, rounded to float32 as ONNX stores
        them (equal vector entries stay equal: the layers stay exactly block-circulant)."""
        out = copy.deepcopy(self.graph)
        for k, layer in enumerate(out.matrix_layers()):
            w = self.weight(k).detach().numpy().astype(np.float32).astype(np.float64)
            layer.weight = np.ascontiguousarray(w)
            b = self.biases[k].detach().numpy().astype(np.float32).astype(np.float64)
            layer.bias = b
            layer.code = None
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
    for layer, lay in zip(graph.matrix_layers(), layouts, strict=True):
        db = sqnr_db(layer.weight, lay.expand(lay.project(layer.weight)[0]))
        sqnrs[layer.name] = round(db, 3) if math.isfinite(db) else None
    return CirculantResult(
        graph=trained,
        block=opts.block,
        accuracy_float=float_acc,
        accuracy_projected=projected,
        accuracy_after=after,
        weights=sum(la.weight.size for la in graph.matrix_layers()),
        stored_weights=sum(lay.stored for lay in layouts),
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
