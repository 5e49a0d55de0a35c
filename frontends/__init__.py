"""Model importers: ONNX into the matrix IR."""

from __future__ import annotations

from pathlib import Path

from nnlcc.errors import BadInputError
from nnlcc.frontends.onnx import inspect_onnx, load_onnx, onnx_reference
from nnlcc.ir.matrix import MatrixGraph

__all__ = ["inspect_onnx", "load_model", "load_onnx", "onnx_reference"]


def load_model(path: Path) -> MatrixGraph:
    """Import a model file into a verified matrix graph with at least one layer."""
    graph = load_onnx(path)
    if not graph.layers:
        raise BadInputError(f"model '{path}' has no matrix layers to compile")
    graph.verify()
    return graph
