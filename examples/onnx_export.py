"""torch -> ONNX export, the one way nnlcc's examples, benchmarks and tests write models.

Needs torch (the ``train`` extra).  The legacy TorchScript exporter is used (it needs no
onnxscript), with a symbolic batch axis, opset 17 and constant folding; ``keep_batchnorm``
exports in training-preserving mode so BatchNormalization nodes stay (nnlcc folds them itself).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def export_onnx(
    model: Any,
    input_shape: tuple[int, ...],
    path: Path,
    *,
    input_name: str = "x",
    output_name: str = "y",
    batch_axis: str = "N",
    keep_batchnorm: bool = False,
) -> Path:
    """Write ``model`` (a torch module taking ``(batch, *input_shape)``) to ``path``."""
    import torch

    extra: dict[str, Any] = {}
    if keep_batchnorm:  # EVAL mode would fuse BatchNormalization into the convolutions
        extra["training"] = torch.onnx.TrainingMode.PRESERVE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            model,
            (torch.zeros(1, *input_shape),),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: batch_axis}, output_name: {0: batch_axis}},
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
            **extra,
        )
    return path


def randomize_batchnorm(model: Any, seed: int) -> None:
    """Non-trivial running statistics and affine parameters in every BatchNorm2d (so that
    folding them is really exercised)."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            assert m.running_mean is not None and m.running_var is not None
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.3)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
