"""A lowered CNN as one pixel-streaming top: line buffers, adder-graph pipelines, joins.

Input: one pixel per clock (all channels of the network's ``(C, H, W)`` input in parallel, in
raster order, ``valid_in`` high), frames back to back or with gaps; see
:mod:`nnlcc.hdl.line_buffer` for the stream convention. Every layer of the
:class:`~nnlcc.ir.lowered.LoweredNetwork` becomes one unit, and every unit's arithmetic is its
layer's adder graph in an :class:`~nnlcc.hdl.adder_tree.AdderGraphPipeline` (the golden model's
own graph, unchanged), so the only hardware of this module's own making is data movement:

* ``conv`` and ``pool`` (max and average alike: part of the graph): a
  :class:`~nnlcc.hdl.line_buffer.WindowGenerator` builds the window vector of every output
  pixel, padding with the layer's :attr:`~nnlcc.ir.lowered.LoweredLayer.pad_value`; the graph's
  pipeline turns it into the output pixel. Stride and padding are the generator's position
  controller; the output is again a pixel stream (sparser after a stride).
* ``add`` (residual): the two branches reach the add at different times (the main branch waits
  in line buffers and pipelines), so each branch enters a FIFO and the add's graph takes one
  pixel from both whenever both FIFOs hold one. Each FIFO is exactly as deep as the schedule
  needs (:meth:`StreamPlan.fifo_depths`, from :mod:`nnlcc.hdl.stream_timing`); with
  ``assertions`` the top asserts in simulation that no FIFO ever overflows or underflows.
  FIFOs of at least ``ram_bits`` bits are memories with a registered read
  (:class:`~amaranth.lib.fifo.SyncFIFOBuffered`, block RAM), smaller ones registers.
* ``flatten``: a collector shifts in the ``H * W`` pixels of a frame and presents the whole
  image (stream order, as :class:`~nnlcc.ir.matrix.FlattenLayer` defines it) as one vector with
  the frame's last pixel; dense layers after it run once per frame, like the MLP top.
* ``dense``: the graph's pipeline on the vector.

Every layer's output is also a debug port ``l<i>_y``/``l<i>_valid`` (one pixel or vector per
valid clock), so a testbench can name the first layer, image and pixel that differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from amaranth.hdl import Assert, Cat, Module, Mux, Shape, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from nnlcc.errors import BadInputError
from nnlcc.ir.lowered import LoweredLayer, LoweredNetwork

from .adder_tree import AdderGraphPipeline, shape_covering
from .line_buffer import LINE_RAM_BITS, StreamWindow, WindowGenerator
from .stream_timing import FRAMES, fifo_depth, join_times, window_times

WINDOW_REGISTER = 1
"""Clocks between a window generator and its layer's pipeline (one register stage)."""

__all__ = [
    "StreamPlan",
    "StreamTop",
]

Range = tuple[int, int]


@dataclass
class _Tensor:
    """A tensor in hardware: an image stream (``image`` = ``(C, H, W)``) or a vector."""

    data: Value  # flat bus, ``count`` elements of ``shape``
    valid: Value
    shape: Shape
    count: int
    image: tuple[int, ...] = ()
    lag: int = 0  # bound on clocks this tensor can trail the network input (join sizing)


def _window_lag(geom: StreamWindow) -> int:
    """Clocks a window generator can hold pixels: the delay line plus the flush ticks."""
    return geom.depth + geom.flush + 1


def _extend(m: Module, src: Value, src_shape: Shape, dst_shape: Shape, n: int, name: str) -> Value:
    """A bus of ``n`` elements re-shaped element by element (sign or zero extension)."""
    if src_shape == dst_shape:
        return src
    elems = []
    w = src_shape.width
    for j in range(n):
        e = Signal(dst_shape, name=f"{name}{j}")
        raw = src[j * w : (j + 1) * w]
        m.d.comb += e.eq(raw.as_signed() if src_shape.signed else raw)
        elems.append(e)
    return Cat(*elems)


class StreamPlan:
    """Everything the streaming top decides before wiring, from the lowered network alone:
    per layer the window schedule, the element shape its pipeline reads (covering the graph's
    input ranges, the producer's ranges and the padding value) and the shape, count and image
    of its output. Cheap: no hardware is built, so reports can use it."""

    def __init__(self, net: LoweredNetwork) -> None:
        if len(net.input_shape) != 3:
            raise ValueError("a streaming top needs a network with an image input (C, H, W)")
        if not net.layers:
            raise ValueError("network has no layers")
        self.net = net
        c, _, _ = net.input_shape
        fmt = net.input_fmt
        self.x_shape = shape_covering([(fmt.lo, fmt.hi)])
        self.x_shapes: list[Shape] = []  # element shape each layer's pipeline reads
        self.windows: dict[int, StreamWindow] = {}
        self.out_shapes: list[Shape] = []
        self.out_counts: list[int] = []
        self.out_images: list[tuple[int, ...]] = []
        # static plan: element shapes and windows per layer (x_shape covers the graph inputs,
        # y_shape its outputs, so the pipelines made in elaborate accept them)
        shapes: dict[str, tuple[Shape, list[Range], tuple[int, ...]]] = {
            net.input_name: (self.x_shape, [(fmt.lo, fmt.hi)] * c, tuple(net.input_shape))
        }
        for i, layer in enumerate(net.layers):
            srcs = [shapes[t] for t in net.inputs_of(i)]
            g = layer.graph
            in_ranges = [(g.nodes[k].lo, g.nodes[k].hi) for k in range(g.n_inputs)]
            if layer.window is not None:
                _, src_ranges, image = srcs[0]
                if tuple(layer.image) != image:
                    raise BadInputError(
                        f"layer {layer.name}: expects an image {layer.image}, gets {image}"
                    )
                _, h, w = image
                self.windows[i] = StreamWindow(layer.window, h, w)
                fill = layer.pad_value
                x_shape = shape_covering([*src_ranges, (fill, fill), *in_ranges])
            else:
                x_shape = shape_covering(
                    [r for _, rs, _ in srcs for r in rs] + in_ranges if in_ranges else [(0, 0)]
                )
            out_ranges = [(g.nodes[o].lo, g.nodes[o].hi) for o in g.outputs]
            y_shape = shape_covering([(layer.out_fmt.lo, layer.out_fmt.hi), *out_ranges])
            self.x_shapes.append(x_shape)
            image_out = self._out_image(layer, srcs[0][2])
            shapes[layer.name] = (y_shape, out_ranges, image_out)
            self.out_shapes.append(y_shape)
            self.out_counts.append(len(g.outputs))
            self.out_images.append(image_out)

    @staticmethod
    def _out_image(layer: LoweredLayer, src_image: tuple[int, ...]) -> tuple[int, ...]:
        if layer.window is not None:
            return tuple(layer.out_shape)
        if layer.kind == "add" and src_image:
            return src_image
        if layer.kind == "flatten" or (layer.kind == "dense" and not src_image):
            return ()
        if layer.kind == "dense":
            raise BadInputError(f"layer {layer.name}: a dense layer reads an image (flatten it)")
        raise BadInputError(f"layer {layer.name}: kind {layer.kind!r} has no streaming hardware")

    def fifo_width(self, name: str) -> int:
        """Bits of one FIFO word carrying tensor ``name`` (a pixel, all channels)."""
        if name == self.net.input_name:
            return self.x_shape.width * self.net.input_shape[0]
        i = next(k for k, layer in enumerate(self.net.layers) if layer.name == name)
        return self.out_shapes[i].width * self.out_counts[i]

    def fifo_buffered(self, name: str, depth: int, ram_bits: int | None) -> bool:
        """Whether the join FIFO of tensor ``name`` is a memory (registered read)."""
        return ram_bits is not None and depth * self.fifo_width(name) >= ram_bits

    def fifo_depths(
        self, ram_bits: int | None = LINE_RAM_BITS, frames: int = FRAMES
    ) -> dict[int, tuple[int, int]]:
        """Entries of both FIFOs of every join (by layer index), exact for pixels on every
        clock and frames back to back (:mod:`nnlcc.hdl.stream_timing`)."""
        net = self.net
        _, h, w = net.input_shape
        times: dict[str, np.ndarray] = {net.input_name: np.arange(frames * h * w, dtype=np.int64)}
        depths: dict[int, tuple[int, int]] = {}
        for i, layer in enumerate(net.layers):
            srcs = net.inputs_of(i)
            lat = layer.graph.latency
            t = times[srcs[0]]
            if i in self.windows:
                times[layer.name] = window_times(self.windows[i], t, lat + WINDOW_REGISTER, frames)
            elif layer.kind == "add":
                ta, tb = times[srcs[0]], times[srcs[1]]
                # a memory FIFO reads a clock later; its depth decides, so settle it first
                buf = [False, False]
                for _ in range(3):
                    fl = (2 if buf[0] else 1, 2 if buf[1] else 1)
                    tr = join_times(ta, tb, fl)
                    d = (fifo_depth(ta, tr), fifo_depth(tb, tr))
                    new = [
                        self.fifo_buffered(s, dk, ram_bits) for s, dk in zip(srcs, d, strict=True)
                    ]
                    if new == buf:
                        break
                    buf = new
                depths[i] = d
                times[layer.name] = tr + lat
            elif layer.kind == "flatten" and self._image_of(srcs[0]):
                _, sh, sw = self._image_of(srcs[0])  # a vector per frame, with its last pixel
                times[layer.name] = t[sh * sw - 1 :: sh * sw] + lat
            else:
                times[layer.name] = t + lat
        return depths

    def _image_of(self, name: str) -> tuple[int, ...]:
        if name == self.net.input_name:
            return tuple(self.net.input_shape)
        i = next(k for k, layer in enumerate(self.net.layers) if layer.name == name)
        return self.out_images[i]

    def line_rams(self, ram_bits: int | None = LINE_RAM_BITS) -> dict[str, list[tuple[int, int]]]:
        """Line-buffer memories per window layer (``(words, bits per word)`` each; layers
        without any are left out), as :class:`~nnlcc.hdl.line_buffer.WindowGenerator` makes
        them for ``ram_bits``."""
        out = {}
        for i, geom in self.windows.items():
            layer = self.net.layers[i]
            width = layer.image[0] * self.x_shapes[i].width
            rows = geom.ram_runs(width, ram_bits)
            if rows:
                out[layer.name] = [(geom.gap, width)] * len(rows)
        return out

    def line_buffer_bits(self) -> dict[str, int]:
        """Bits of delay-line storage per window layer (pixels held x channels x width)."""
        out = {}
        for i, geom in self.windows.items():
            layer = self.net.layers[i]
            out[layer.name] = geom.depth * layer.image[0] * self.x_shapes[i].width
        return out


class StreamTop(wiring.Component):
    """The whole CNN: pixels ``x``/``valid_in`` in, ``y``/``valid_out`` out (a pixel stream if
    the network ends in an image, else one vector per frame), debug ports per layer."""

    def __init__(
        self,
        net: LoweredNetwork,
        *,
        ram_bits: int | None = LINE_RAM_BITS,
        assertions: bool = False,
        fifo_depths: dict[int, tuple[int, int]] | None = None,
    ) -> None:
        """``ram_bits``: line buffers and FIFOs of at least this many bits are memories (None:
        all registers); ``assertions``: simulation asserts no join FIFO over- or underflows;
        ``fifo_depths``: join FIFO depths by layer index instead of the exact ones (tests)."""
        self.plan = plan = StreamPlan(net)
        self.net = net
        self.ram_bits = ram_bits
        self.assertions = assertions
        self.fifo_depths = plan.fifo_depths(ram_bits) if fifo_depths is None else fifo_depths
        c = net.input_shape[0]
        members: dict[str, Any] = {
            "x": In(ArrayLayout(plan.x_shape, c)),
            "valid_in": In(1),
            "y": Out(ArrayLayout(plan.out_shapes[-1], max(plan.out_counts[-1], 1))),
            "valid_out": Out(1),
        }
        for i, (s, n) in enumerate(zip(plan.out_shapes, plan.out_counts, strict=True)):
            members[f"l{i}_y"] = Out(ArrayLayout(s, max(n, 1)))
            members[f"l{i}_valid"] = Out(1)
        super().__init__(members)

    # ---- per-layer units ---------------------------------------------------------------------
    def _window_unit(
        self, m: Module, i: int, p: AdderGraphPipeline, src: _Tensor
    ) -> tuple[Value, Value, int]:
        layer, geom = self.net.layers[i], self.plan.windows[i]
        c = src.image[0]
        gen = WindowGenerator(geom, c, p.x_shape, fill=layer.pad_value, ram_bits=self.ram_bits)
        m.submodules[f"l{i}_window"] = gen
        # the window is registered before the pipeline: the generator's position and padding
        # logic and the pipeline's first adder in one clock set Fmax to 91 MHz on ECP5
        win = Signal(len(gen.window.as_value()), name=f"l{i}_win", reset_less=True)
        win_valid = Signal(name=f"l{i}_win_valid")
        m.d.sync += [win.eq(gen.window.as_value()), win_valid.eq(gen.valid_out)]
        m.d.comb += [
            gen.x.as_value().eq(_extend(m, src.data, src.shape, p.x_shape, c, f"l{i}_px")),
            gen.valid.eq(src.valid),
            p.x.as_value().eq(win),
            p.valid_in.eq(win_valid),
        ]
        return p.y.as_value(), p.valid_out, _window_lag(geom) + WINDOW_REGISTER

    def _join_unit(
        self, m: Module, i: int, p: AdderGraphPipeline, a: _Tensor, b: _Tensor
    ) -> tuple[Value, Value, int]:
        """Residual add: each branch through a FIFO, the graph fed when both have a pixel."""
        depths = self.fifo_depths[i]
        ends = []
        names = self.net.inputs_of(i)
        for tag, t, depth, src in zip("ab", (a, b), depths, names, strict=True):
            width = t.shape.width * t.count
            if self.plan.fifo_buffered(src, depth, self.ram_bits):
                fifo: SyncFIFO | SyncFIFOBuffered = SyncFIFOBuffered(width=width, depth=depth)
            else:
                fifo = SyncFIFO(width=width, depth=depth)
            m.submodules[f"l{i}_fifo_{tag}"] = fifo
            m.d.comb += [fifo.w_data.eq(t.data), fifo.w_en.eq(t.valid)]
            if self.assertions:
                m.d.sync += [
                    Assert(
                        ~t.valid | fifo.w_rdy,
                        f"layer {self.net.layers[i].name}: FIFO {tag} (depth {depth}) overflows",
                    ),
                    Assert(
                        ~fifo.r_en | fifo.r_rdy,
                        f"layer {self.net.layers[i].name}: FIFO {tag} underflows",
                    ),
                ]
            ends.append((fifo, t))
        both = Signal(name=f"l{i}_both")
        m.d.comb += both.eq(ends[0][0].r_rdy & ends[1][0].r_rdy)
        parts = []
        for tag, (fifo, t) in zip("ab", ends, strict=True):
            m.d.comb += fifo.r_en.eq(both)
            parts.append(_extend(m, fifo.r_data, t.shape, p.x_shape, t.count, f"l{i}_{tag}"))
        m.d.comb += [p.x.as_value().eq(Cat(*parts)), p.valid_in.eq(both)]
        return p.y.as_value(), p.valid_out, max(depths) + 1

    def _collect_unit(
        self, m: Module, i: int, p: AdderGraphPipeline, src: _Tensor
    ) -> tuple[Value, Value, int]:
        """Flatten: the frame's pixels in a shift register, presented with its last pixel."""
        c, h, w = src.image
        n = h * w
        pos = Signal(range(n), name=f"l{i}_pos")
        with m.If(src.valid):
            m.d.sync += pos.eq(Mux(pos == n - 1, 0, pos + 1))
        pixel = _extend(m, src.data, src.shape, p.x_shape, c, f"l{i}_px")
        held: list[Value] = []
        prev: Value = pixel
        for k in range(n - 1):  # held[k] is the pixel k+1 valid clocks old
            reg = Signal(len(pixel), name=f"l{i}_pix{k + 1}", reset_less=True)
            with m.If(src.valid):
                m.d.sync += reg.eq(prev)
            held.append(reg)
            prev = reg
        # stream order: oldest pixel first, channels fastest
        m.d.comb += [
            p.x.as_value().eq(Cat(*reversed(held), pixel)),
            p.valid_in.eq(src.valid & (pos == n - 1)),
        ]
        return p.y.as_value(), p.valid_out, n

    # ---- top -----------------------------------------------------------------------------------
    def elaborate(self, platform: object) -> Module:
        m = Module()
        net = self.net
        c = net.input_shape[0]
        env: dict[str, _Tensor] = {
            net.input_name: _Tensor(
                self.x.as_value(),
                self.valid_in,
                self.plan.x_shape,
                c,
                tuple(net.input_shape),
            )
        }
        for i, layer in enumerate(net.layers):
            p = AdderGraphPipeline(
                layer.graph, x_shape=self.plan.x_shapes[i], y_shape=self.plan.out_shapes[i]
            )
            m.submodules[f"l{i}"] = p
            srcs = [env[t] for t in net.inputs_of(i)]
            if layer.window is not None:
                y, valid, lag = self._window_unit(m, i, p, srcs[0])
            elif layer.kind == "add":
                y, valid, lag = self._join_unit(m, i, p, srcs[0], srcs[1])
            elif layer.kind == "flatten" and srcs[0].image:
                y, valid, lag = self._collect_unit(m, i, p, srcs[0])
            else:  # a vector layer (the plan checked that it reads a vector)
                src = srcs[0]
                m.d.comb += [
                    p.x.as_value().eq(
                        _extend(m, src.data, src.shape, p.x_shape, src.count, f"l{i}_x")
                    ),
                    p.valid_in.eq(src.valid),
                ]
                y, valid, lag = p.y.as_value(), p.valid_out, 0
            lag = max(s.lag for s in srcs) + lag + p.latency
            env[layer.name] = _Tensor(
                y,
                valid,
                self.plan.out_shapes[i],
                self.plan.out_counts[i],
                self.plan.out_images[i],
                lag,
            )
            m.d.comb += [
                getattr(self, f"l{i}_y").as_value().eq(y),
                getattr(self, f"l{i}_valid").eq(valid),
            ]
        last = env[net.layers[-1].name]
        m.d.comb += [self.y.as_value().eq(last.data), self.valid_out.eq(last.valid)]
        return m

    # ---- facts for testbenches and reports ---------------------------------------------------
    def port_metadata(self, name: str) -> dict[str, Any]:
        """What the CNN testbench needs: input pixel bus, per-layer output buses and shapes."""

        def bus(shape: Shape, count: int) -> dict[str, Any]:
            return {"width": shape.width, "signed": shape.signed, "count": count}

        c, h, w = self.net.input_shape
        layers = []
        for i, layer in enumerate(self.net.layers):
            image = self.plan.out_images[i]
            layers.append(
                {
                    "name": layer.name,
                    "kind": layer.kind,
                    "port": f"l{i}_y",
                    "valid": f"l{i}_valid",
                    # per frame: pixels (raster order) of an image, else one vector
                    "per_frame": image[1] * image[2] if image else 1,
                    "image": list(image),
                    **bus(self.plan.out_shapes[i], self.plan.out_counts[i]),
                }
            )
        return {
            "toplevel": name,
            "clock": "clk",
            "reset": "rst",
            "packing": "element i at bits [i*width, (i+1)*width), two's complement if signed",
            "x": {**bus(self.plan.x_shape, c), "image": [c, h, w]},
            "y": bus(self.plan.out_shapes[-1], self.plan.out_counts[-1]),
            "layers": layers,
        }
