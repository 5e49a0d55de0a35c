"""nnlcc.frontends: import trained models into the matrix IR."""

from nnlcc.frontends.onnx import inspect_onnx, load_onnx, onnx_reference

__all__ = ["inspect_onnx", "load_onnx", "onnx_reference"]
