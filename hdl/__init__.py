"""nnlcc.hdl: Amaranth hardware copied from adder graphs (no decisions of its own)."""

from .adder_tree import AdderGraphPipeline, range_shape, shape_covering
from .network import NetworkTop, emit_verilog

__all__ = ["AdderGraphPipeline", "NetworkTop", "emit_verilog", "range_shape", "shape_covering"]
