"""``nnlcc finetune``: train a network so that it compiles smaller, then write it as ONNX.

- :mod:`.training`: the one training loop (phases of mini-batch epochs), the labelled data,
  deterministic torch settings, and the checked ONNX write of a trained graph;
- :mod:`.group_lasso`: group-lasso pruning of an MLP's neurons and inputs, a method on it, and
  :mod:`.conv_lasso`: of a CNN's im2col columns;
- :mod:`.circulant`: block-circulant training (``--circulant B``), another.

A new method is a module that builds its torch model and runs :class:`~.training.Phase` s
through :class:`~.training.Trainer`, then :func:`~.training.write_checked`.
"""

from nnlcc.finetune.circulant import (
    CirculantOptions,
    CirculantResult,
    circulant_finetune,
    train_circulant,
)
from nnlcc.finetune.group_lasso import (
    FinetuneOptions,
    FinetuneResult,
    finetune,
    group_lasso_prune,
)
from nnlcc.finetune.training import LabelledData, export_graph, load_labelled

__all__ = [
    "CirculantOptions",
    "CirculantResult",
    "FinetuneOptions",
    "FinetuneResult",
    "LabelledData",
    "circulant_finetune",
    "export_graph",
    "finetune",
    "group_lasso_prune",
    "load_labelled",
    "train_circulant",
]
