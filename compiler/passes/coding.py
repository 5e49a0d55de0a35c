"""How every matrix pass attaches its code to a layer: the layer's weight, or the reduced
matrix behind the pre-adders when the share pass planned them."""

from __future__ import annotations

from collections.abc import Callable

from nnlcc.errors import PassOptionError
from nnlcc.ir.matrix import FloatArray, MatrixCode, MatrixLayer
from nnlcc.passes.share import ShareCode, SharePlan


def code_layer(layer: MatrixLayer, build: Callable[[FloatArray], MatrixCode]) -> MatrixCode:
    """What a matrix pass attaches to ``layer``: ``build`` of its weight, or of the reduced
    matrix behind the pre-adders when the share pass planned one.  All-zero columns (pruned
    network inputs) are left to the matrix code: CSD and LCC skip them."""
    plan = layer.notes.get(SharePlan)
    if plan is None:
        return build(layer.weight)
    if plan.expand.shape[1] != layer.shape[1]:
        raise PassOptionError(f"layer {layer.name}: share must come after prune in the pipeline")
    return ShareCode(plan, build(plan.reduced))
