"""The operator table: ONNX op type -> how nnlcc imports it.

Op modules fill it with decorators, in the manner of hls4ml's ``onnx_handler``::

    @onnx_handler("MaxPool", "AveragePool")
    def pool(imp: Importer, step: Step) -> Value: ...

    @onnx_folder("Transpose")
    def transpose(node: onnx.NodeProto, label: str, args: list[np.ndarray]) -> np.ndarray: ...

An op has a *handler* when it may sit on the data path (it reads a computed tensor) and a
*folder* when it may be evaluated on constants only (how exporters store transposed or fp16
weights).  The package ``nnlcc.frontends.onnx`` imports every op module, so the table is
complete whenever the frontend is imported; :func:`supported_ops` is the one list of what
nnlcc imports (``nnlcc inspect`` and the importer both read it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import onnx

from nnlcc.frontends.onnx.values import Step, Value

if TYPE_CHECKING:
    from nnlcc.frontends.onnx.importer import Importer

__all__ = ["OpSupport", "lookup", "onnx_folder", "onnx_handler", "supported_ops"]

#: Maps the node's computed inputs to its output: a :class:`Value` of the IR, or a constant
#: (``Shape`` of a data tensor is known at import time).
Handler: TypeAlias = "Callable[[Importer, Step], Value | np.ndarray]"
#: Evaluates the node on constant inputs (``args``, in input order, empty names skipped).
Folder: TypeAlias = Callable[[onnx.NodeProto, str, list[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class OpSupport:
    """What nnlcc does with one op type.

    ``joins`` is how many computed tensors the op may read (only a residual Add joins two);
    ``sequences`` says its handler takes tensors with axes before the batch axis
    (:attr:`Value.lead <nnlcc.frontends.onnx.values.Value.lead>`);
    ``weights`` says its inputs after the first are weights (an error naming a weight given
    as a graph input points at such a node); ``metadata_only`` that it reads only the shape of
    its input, so it does not count as a reader of the data (``Shape``).
    """

    op: str
    handler: Handler | None = None
    folder: Folder | None = None
    joins: int = 1
    weights: bool = False
    metadata_only: bool = False
    sequences: bool = False


_TABLE: dict[str, OpSupport] = {}


def _register(op: str, **fields: object) -> None:
    old = _TABLE.get(op, OpSupport(op))
    for key in ("handler", "folder"):
        if fields.get(key) is not None and getattr(old, key) is not None:
            raise RuntimeError(f"ONNX op {op} has two {key}s")
    _TABLE[op] = replace(old, **fields)  # type: ignore[arg-type]


def onnx_handler(
    *ops: str,
    joins: int = 1,
    weights: bool = False,
    metadata_only: bool = False,
    sequences: bool = False,
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the data-path handler of ``ops``."""

    def decorator(fn: Handler) -> Handler:
        for op in ops:
            _register(
                op,
                handler=fn,
                joins=joins,
                weights=weights,
                metadata_only=metadata_only,
                sequences=sequences,
            )
        return fn

    return decorator


def onnx_folder(*ops: str) -> Callable[[Folder], Folder]:
    """Register the decorated function as the constant folder of ``ops``."""

    def decorator(fn: Folder) -> Folder:
        for op in ops:
            _register(op, folder=fn)
        return fn

    return decorator


def lookup(op: str) -> OpSupport | None:
    """The table's entry for ``op``, or None when nnlcc does not know the op at all."""
    return _TABLE.get(op)


def supported_ops() -> tuple[str, ...]:
    """Every ONNX op type nnlcc imports (on the data path or folded on constants), sorted."""
    return tuple(sorted(_TABLE))
