"""nnlcc.hdl: Amaranth hardware copied from adder graphs (no decisions of its own)."""

from .adder_tree import AdderGraphPipeline, range_shape, shape_covering
from .network import NetworkTop, emit_verilog
from .stream import StreamTop, emit_stream_verilog, is_streaming

__all__ = [
    "AdderGraphPipeline",
    "NetworkTop",
    "StreamTop",
    "emit_stream_verilog",
    "emit_verilog",
    "is_streaming",
    "range_shape",
    "shape_covering",
]
