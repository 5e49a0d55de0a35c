"""A :class:`~nnlcc.ir.lowered.LoweredNetwork` as one streaming top: layer pipelines in a chain.

Each layer is an :class:`~nnlcc.hdl.adder_tree.AdderGraphPipeline`; layer ``i`` reads the
outputs of layer ``i-1`` (sign- or zero-extended into the next layer's input width) and the
valid bit travels through the chain with the data. Every layer's output is also a debug port
(``l<i>_y``/``l<i>_valid``) so a testbench can tell which layer diverged first.

Verilog ports are flat packed buses: element ``i`` of a bus with element width ``w`` occupies
bits ``[i*w, (i+1)*w)`` in two's complement when the element is signed.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.wiring import In, Out

from nnlcc.ir.fixed_point import FixedFormat
from nnlcc.ir.lowered import LoweredNetwork

from .adder_tree import AdderGraphPipeline, shape_covering

__all__ = ["NetworkTop"]


def _fmt_range(fmt: FixedFormat) -> tuple[int, int]:
    return fmt.lo, fmt.hi


class NetworkTop(wiring.Component):
    """The whole network: ``x``/``valid_in`` in, ``y``/``valid_out`` out, one vector per clock.

    The input element shape is the network input format (what the user drives); output and
    debug element shapes cover the layer's output format and the output nodes' exact ranges.
    ``latency`` is the sum of the layer latencies; ``layer_latencies[i]`` is the cumulative
    latency at which ``l<i>_y`` is valid.
    """

    def __init__(self, net: LoweredNetwork) -> None:
        if not net.layers:
            raise ValueError("network has no layers")
        self.net = net
        self.pipelines: list[AdderGraphPipeline] = []
        x_shape = shape_covering(
            [_fmt_range(net.input_fmt)]
            + [(n.lo, n.hi) for n in net.layers[0].graph.nodes[: net.layers[0].graph.n_inputs]]
        )
        prev_ranges: list[tuple[int, int]] | None = None
        for i, layer in enumerate(net.layers):
            g = layer.graph
            in_ranges = [(g.nodes[k].lo, g.nodes[k].hi) for k in range(g.n_inputs)]
            if prev_ranges is not None:
                if len(prev_ranges) != g.n_inputs:
                    raise ValueError(
                        f"layer {i} ({layer.name}) has {g.n_inputs} inputs but layer {i - 1} "
                        f"has {len(prev_ranges)} outputs"
                    )
                for j, ((plo, phi), (ilo, ihi)) in enumerate(
                    zip(prev_ranges, in_ranges, strict=True)
                ):
                    if plo < ilo or phi > ihi:
                        raise ValueError(
                            f"layer {i} ({layer.name}) input {j} range [{ilo}, {ihi}] does not "
                            f"hold layer {i - 1} output range [{plo}, {phi}]"
                        )
            out_ranges = [(g.nodes[o].lo, g.nodes[o].hi) for o in g.outputs]
            y_shape = shape_covering([_fmt_range(layer.out_fmt), *out_ranges])
            self.pipelines.append(
                AdderGraphPipeline(g, x_shape=x_shape if i == 0 else None, y_shape=y_shape)
            )
            prev_ranges = out_ranges
        lat = 0
        self.layer_latencies: list[int] = []
        for p in self.pipelines:
            lat += p.latency
            self.layer_latencies.append(lat)
        self.latency = lat
        members: dict[str, Any] = {
            "x": In(ArrayLayout(x_shape, net.n_inputs)),
            "valid_in": In(1),
            "y": Out(self.pipelines[-1].signature.members["y"].shape),
            "valid_out": Out(1),
        }
        for i, p in enumerate(self.pipelines):
            members[f"l{i}_y"] = Out(p.signature.members["y"].shape)
            members[f"l{i}_valid"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        prev_y: Any = self.x
        prev_valid: Any = self.valid_in
        for i, p in enumerate(self.pipelines):
            m.submodules[f"l{i}"] = p
            # One assignment per bus, not one per element: Icarus re-evaluates a whole vector
            # net on every part-select driver, which makes per-element wiring quadratic in the
            # number of inputs (seconds per clock for a 100-input layer).
            if prev_y.shape() == p.x.shape():
                m.d.comb += p.x.eq(prev_y)
            else:  # each element sign- or zero-extended from the producer's element shape
                elems = []
                for j in range(p.graph.n_inputs):
                    e = Signal(p.x_shape, name=f"l{i}_x{j}")
                    m.d.comb += e.eq(prev_y[j])
                    elems.append(e)
                m.d.comb += p.x.as_value().eq(Cat(*elems))
            m.d.comb += p.valid_in.eq(prev_valid)
            m.d.comb += getattr(self, f"l{i}_y").eq(p.y)
            m.d.comb += getattr(self, f"l{i}_valid").eq(p.valid_out)
            prev_y, prev_valid = p.y, p.valid_out
        m.d.comb += self.y.eq(prev_y)
        m.d.comb += self.valid_out.eq(prev_valid)
        return m

    def port_metadata(self, name: str) -> dict[str, Any]:
        """What a testbench needs to pack ``x`` and unpack ``y`` and the debug ports."""

        def bus(shape: Shape, count: int) -> dict[str, Any]:
            return {"width": shape.width, "signed": shape.signed, "count": count}

        layers = []
        for i, (layer, p) in enumerate(zip(self.net.layers, self.pipelines, strict=True)):
            layers.append(
                {
                    "name": layer.name,
                    "port": f"l{i}_y",
                    "valid": f"l{i}_valid",
                    "latency": self.layer_latencies[i],
                    **bus(p.y_shape, len(p.graph.outputs)),
                }
            )
        return {
            "toplevel": name,
            "clock": "clk",
            "reset": "rst",
            "packing": "element i at bits [i*width, (i+1)*width), two's complement if signed",
            "x": bus(self.pipelines[0].x_shape, self.net.n_inputs),
            "y": bus(self.pipelines[-1].y_shape, self.net.n_outputs),
            "latency": self.latency,
            "layers": layers,
        }
