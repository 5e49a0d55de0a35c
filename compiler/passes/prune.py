"""Structured pruning: whole input columns of a layer go, and the network physically shrinks.

A column ``j`` of layer ``i > 0`` is hidden neuron ``j`` of layer ``i - 1``: removing it also
removes that neuron's weight row and bias in layer ``i - 1``, so both matrices get smaller.  A
column of the first layer is a network input, which the hardware keeps (the input vector is
fixed by the model): its weights become zero, and all-zero columns cost nothing in the CSD and
LCC codes.

:func:`shrink` is the exact clean-up after group-lasso training (columns that are exactly zero,
neurons whose weight row is zero and so output a constant); the ``prune{sparsity=...}`` pass is
the training-free, approximate variant that ranks columns by magnitude.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from nnlcc.errors import BadInputError, PassOptionError, UnsupportedModelError
from nnlcc.ir.matrix import DenseLayer, FloatArray, MatrixGraph
from nnlcc.ir.notes import JsonNote
from nnlcc.passes.base import Pass, PassContext, PassKind

IndexArray = npt.NDArray[np.int64]


def _indices(obj: Any, key: str) -> list[int]:
    if not isinstance(obj, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in obj
    ):
        raise ValueError(f"{key} must be a list of column numbers")
    return list(obj)


@dataclass
class KeptColumns(JsonNote):
    """The original numbers (in the model as imported) of the columns a pruned layer still
    uses, its note (key ``kept_column_indices``; report.json's ``kept_columns`` counts the used
    columns)."""

    key: ClassVar[str] = "kept_column_indices"
    indices: list[int]

    def to_json(self) -> list[int]:
        return list(self.indices)

    @classmethod
    def from_json(cls, obj: Any) -> KeptColumns:
        return cls(_indices(obj, cls.key))


@dataclass
class ColumnOrigin(JsonNote):
    """The original numbers of a layer's current columns once pruning removed some (key
    ``column_origin``; absent: column ``j`` is the model's column ``j``)."""

    key: ClassVar[str] = "column_origin"
    indices: list[int]

    def to_json(self) -> list[int]:
        return list(self.indices)

    @classmethod
    def from_json(cls, obj: Any) -> ColumnOrigin:
        return cls(_indices(obj, cls.key))


def require_mlp(graph: MatrixGraph, what: str) -> list[DenseLayer]:
    """The dense layers of a plain MLP chain; structured pruning of conv channels (which
    also shrinks pools, adds and flattens between them) is not implemented yet."""
    dense = [x for x in graph.layers if isinstance(x, DenseLayer)]
    if len(dense) != len(graph.layers) or not graph.is_chain:
        raise UnsupportedModelError(f"{what} works on MLPs (a chain of dense layers) only")
    return dense


def used_columns(weight: FloatArray) -> IndexArray:
    """Indices of the columns with at least one nonzero weight."""
    return np.nonzero(np.any(weight != 0, axis=0))[0].astype(np.int64)


def original_columns(graph: MatrixGraph, index: int) -> IndexArray:
    """Original column numbers of layer ``index``'s current columns (identity until pruned)."""
    layer = require_mlp(graph, "pruning")[index]
    origin = layer.notes.get(ColumnOrigin)
    cols = origin.indices if origin is not None else np.arange(layer.shape[1])
    return np.asarray(cols, dtype=np.int64)


def _record(graph: MatrixGraph) -> None:
    for i, layer in enumerate(require_mlp(graph, "pruning")):
        kept = original_columns(graph, i)[used_columns(layer.weight)].tolist()
        layer.notes.put(KeptColumns(kept))


def remove_columns(
    graph: MatrixGraph, index: int, drop: npt.ArrayLike, fill: FloatArray | None = None
) -> None:
    """Remove columns ``drop`` of layer ``index``.

    ``fill`` (one value per column of the layer) is what a dropped input is assumed to carry:
    its contribution ``W[:, j] * fill[j]`` moves into the bias (``None``: zero, exact when the
    dropped columns are zero or their inputs are).  For ``index == 0`` the columns are zeroed
    (network inputs stay); otherwise the matching rows and biases of layer ``index - 1`` go too.
    """
    layers = require_mlp(graph, "pruning")
    layer = layers[index]
    cols = np.unique(np.asarray(drop, dtype=np.int64))
    if cols.size == 0:
        return
    if fill is not None:
        layer.bias = layer.bias + layer.weight[:, cols] @ np.asarray(fill, dtype=np.float64)[cols]
    if index == 0:
        w = layer.weight.copy()
        w[:, cols] = 0.0
        layer.weight = w
    else:
        keep = np.setdiff1d(np.arange(layer.shape[1]), cols)
        origin = original_columns(graph, index)
        prev = layers[index - 1]
        layer.weight = layer.weight[:, keep]
        layer.notes.put(ColumnOrigin(origin[keep].tolist()))
        prev.weight = prev.weight[keep, :]
        prev.bias = prev.bias[keep]
    _record(graph)


def shrink(graph: MatrixGraph) -> int:
    """Exactly remove every hidden neuron that does not influence the output.

    A neuron goes when its column in the next layer is all zero, or when its own weight row is
    all zero: it then outputs the constant ``act(bias)``, which is folded into the next layer's
    bias.  Repeats until nothing changes; returns the number of neurons removed.  Raises
    :class:`BadInputError` when a layer would be left without inputs or outputs.
    """
    layers = require_mlp(graph, "pruning")
    removed = 0
    changed = True
    while changed:
        changed = False
        for i in range(1, len(layers)):
            prev, layer = layers[i - 1], layers[i]
            dead_col = ~np.any(layer.weight != 0, axis=0)
            const_row = ~np.any(prev.weight != 0, axis=1)
            drop = np.nonzero(dead_col | const_row)[0]
            if drop.size == 0:
                continue
            if drop.size == layer.shape[1]:
                raise BadInputError(
                    f"pruning removes every input of layer {layer.name}: the network would "
                    "output a constant"
                )
            value = np.maximum(prev.bias, 0.0) if prev.relu else prev.bias.copy()
            fill = np.where(const_row, value, 0.0)
            remove_columns(graph, i, drop, fill)
            removed += int(drop.size)
            changed = True
    first = layers[0]
    if not np.any(first.weight != 0):
        raise BadInputError(
            f"pruning removes every input of layer {first.name}: the network would output "
            "a constant"
        )
    _record(graph)
    return removed


def column_scores(
    graph: MatrixGraph, index: int, x: FloatArray | None, score: str
) -> tuple[FloatArray, FloatArray | None]:
    """Importance of every column of layer ``index`` and the mean of its input.

    ``weight``: the column's L2 norm.  ``activation``: that norm times the RMS of the column's
    input on the calibration data ``x`` (an input that is always zero, like a digit's border
    pixel, then scores zero whatever its weights).
    """
    layer = require_mlp(graph, "pruning")[index]
    norms = np.sqrt(np.sum(layer.weight**2, axis=0))
    if x is None:
        return norms, None
    acts = graph.activations_float(x)[index]
    mean = acts.mean(axis=0)
    if score == "weight":
        return norms, mean
    return norms * np.sqrt(np.mean(acts**2, axis=0)), mean


@dataclass(frozen=True)
class Prune(Pass):
    """Training-free structured pruning: in every layer, drop the fraction ``sparsity`` of the
    used columns with the lowest ``score`` (``activation``: column L2 norm times the input's
    RMS on the calibration data; ``weight``: the norm alone).  Hidden columns take their
    neuron with them; input columns (the first layer's) become zero and use
    ``input_sparsity`` when it is given.  ``bias_correct`` folds a dropped input's
    calibration mean into the bias."""

    name: ClassVar[str] = "prune"
    kind: ClassVar[PassKind] = PassKind.STRUCTURAL
    sparsity: float = 0.5
    score: Literal["activation", "weight"] = "activation"
    input_sparsity: float | None = None
    bias_correct: bool = True

    def __post_init__(self) -> None:
        for key in ("sparsity", "input_sparsity"):
            value = getattr(self, key)
            if value is not None and not 0.0 <= value < 1.0:
                raise PassOptionError(f"prune: {key} must be in [0, 1)")
        if self.score not in ("activation", "weight"):
            raise PassOptionError("prune: score must be activation or weight")

    def apply(self, graph: MatrixGraph, ctx: PassContext) -> None:
        layers = require_mlp(graph, "the prune pass")
        # a code, or a note made from the weights as they are (a share plan): too late
        if any(layer.code is not None or layer.notes.of_weights() for layer in layers):
            raise PassOptionError("prune must come before share and the matrix pass (csd, lcc)")
        for i, layer in enumerate(layers):
            if ctx.progress:
                ctx.progress(layer.name)
            sparsity = self.sparsity
            if i == 0 and self.input_sparsity is not None:
                sparsity = self.input_sparsity
            used = used_columns(layer.weight)
            n_drop = min(round(sparsity * len(used)), len(used) - 1)
            if n_drop <= 0:
                continue
            scores, mean = column_scores(graph, i, ctx.calibration, self.score)
            drop = used[np.argsort(scores[used], kind="stable")[:n_drop]]
            remove_columns(graph, i, drop, mean if self.bias_correct else None)
        shrink(graph)
