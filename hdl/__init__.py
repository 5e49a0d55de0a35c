"""nnlcc.hdl: Amaranth hardware copied from adder graphs; :mod:`nnlcc.hdl.top` chooses the
top (vector or pixel stream), its only decision."""

from .adder_tree import AdderGraphPipeline, range_shape, shape_covering
from .network import NetworkTop
from .stream import StreamTop
from .top import StreamStrategy, TopStrategy, VectorStrategy, emit_verilog, top_class, top_for

__all__ = [
    "AdderGraphPipeline",
    "NetworkTop",
    "StreamStrategy",
    "StreamTop",
    "TopStrategy",
    "VectorStrategy",
    "emit_verilog",
    "range_shape",
    "shape_covering",
    "top_class",
    "top_for",
]
