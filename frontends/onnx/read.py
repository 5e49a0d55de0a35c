"""Reading an ONNX file: load, check and shape-infer it; its initializers and tensor shapes.

Every library failure becomes one :class:`~nnlcc.errors.BadInputError` line naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from nnlcc.errors import BadInputError

__all__ = ["Shapes", "fmt_shape", "initializers", "one_line", "read_model"]


def one_line(text: str) -> str:
    """First non-empty line of a library message (checker texts run over several lines)."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return str(text).strip() or "unknown error"


def read_model(path: str | Path) -> onnx.ModelProto:
    """Load, check and shape-infer a model, turning every library failure into BadInputError."""
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"model file '{p}' not found")
    if not p.is_file():
        raise BadInputError(f"model file '{p}' is not a file")
    try:
        model = onnx.load(str(p))
    except DecodeError as e:
        raise BadInputError(f"model file '{p}' is not an ONNX model ({one_line(str(e))})") from e
    except (OSError, ValueError, RuntimeError, onnx.checker.ValidationError) as e:
        raise BadInputError(f"model file '{p}' cannot be read: {one_line(str(e))}") from e
    # Protobuf parses many random byte strings without complaint; an ONNX model has a graph.
    if model.ir_version == 0 or not model.HasField("graph"):
        raise BadInputError(f"model file '{p}' is not an ONNX model (no IR version or graph)")
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as e:
        raise BadInputError(
            f"model file '{p}' is not a valid ONNX model: {one_line(str(e))}"
        ) from e
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.shape_inference.InferenceError, ValueError, RuntimeError) as e:
        raise BadInputError(
            f"model file '{p}': ONNX shape inference failed: {one_line(str(e))}"
        ) from e
    return model


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The model's initializers (weights) as arrays, by name."""
    return {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}


@dataclass
class Shapes:
    """Inferred shapes by tensor name; a dim is an int, a symbol name or None (unknown)."""

    dims: dict[str, list[int | str | None]] = field(default_factory=dict)

    @classmethod
    def of(cls, model: onnx.ModelProto) -> Shapes:
        s = cls()
        g = model.graph
        for vi in [*g.input, *g.value_info, *g.output]:
            t = vi.type.tensor_type
            if t.HasField("shape"):
                s.dims[vi.name] = [
                    d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in t.shape.dim
                ]
        for init in g.initializer:
            s.dims[init.name] = list(init.dims)
        return s

    def get(self, name: str) -> list[int | str | None] | None:
        return self.dims.get(name)


def fmt_shape(dims: Sequence[int | str | None] | None) -> str:
    if dims is None:
        return "?"
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"
