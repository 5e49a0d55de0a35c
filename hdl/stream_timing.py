"""The clock of every valid output of a streaming CNN top, and from it the exact depth of every
residual-join FIFO.

:class:`~nnlcc.hdl.stream.StreamTop` has no stalls, so when each tensor's pixels appear is a
fixed function of when the input pixels arrive. This module computes those clocks the way the
hardware makes them, for input pixels on every clock and frames back to back (the self-test and
the testbench drive it so; the fastest stream is the one that fills a FIFO most):

* a window layer (:class:`~nnlcc.hdl.line_buffer.WindowGenerator`) ticks on every valid pixel
  and, after a frame's last pixel, on up to ``flush`` idle clocks before the next frame starts;
  the window of stride-1 position ``(R, C)`` is read at tick ``delay + R * W + C`` of its
  frame and leaves the layer's pipeline ``latency`` clocks later;
* a join reads both FIFOs on the first clock both hold a pixel: ``fifo_latency`` clocks after
  the later write, at most one read per clock; its pipeline adds ``latency``;
* a flatten emits a frame's vector with its last pixel; dense and flatten layers add their
  pipeline latency.

A join's FIFO must hold every pixel written and not yet read: :func:`fifo_depth` is the largest
such count at any write, plus the one being written, so a FIFO one entry shallower overflows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .line_buffer import StreamWindow

__all__ = ["FRAMES", "fifo_depth", "join_times", "window_times"]

I64 = npt.NDArray[np.int64]

FRAMES = 3
"""Frames the model follows: the first fills the pipeline, later ones see the previous frame's
flush overlap their first pixels (the steady state)."""


def window_times(geom: StreamWindow, t_in: I64, latency: int, frames: int) -> I64:
    """Clocks of a window layer's valid outputs, given the clocks ``t_in`` of its input's
    valid pixels (``frames`` frames of ``h * w``)."""
    h, w = geom.h, geom.w
    px = h * w
    ticks: list[int] = []
    starts: list[int] = []  # index in ticks of every frame's first pixel
    for f in range(frames):
        frame = t_in[f * px : (f + 1) * px]
        starts.append(len(ticks))
        ticks.extend(int(t) for t in frame)
        nxt = int(t_in[(f + 1) * px]) if f + 1 < frames else None
        last = int(frame[-1])
        for k in range(1, geom.flush + 1):  # idle flush ticks until the next frame starts
            if nxt is not None and last + k >= nxt:
                break
            ticks.append(last + k)
    sh, sw = geom.window.stride
    ho, wo = geom.out_hw
    tick_arr = np.array(ticks, dtype=np.int64)
    offsets = np.array(
        [geom.delay + r * sh * w + c * sw for r in range(ho) for c in range(wo)], dtype=np.int64
    )
    # a frame's flush may run into the next frame's pixels: ticks are counted in one sequence
    idx = np.concatenate([s + offsets for s in starts])
    if idx.size and idx[-1] >= len(tick_arr):
        raise AssertionError("window timing ran past its ticks (flush count wrong)")
    out: I64 = tick_arr[idx] + latency
    return out


def join_times(t_a: I64, t_b: I64, fifo_latency: tuple[int, int]) -> I64:
    """Clocks both FIFOs of a join are read (one pixel from each): the first clock both hold
    the pixel, one read per clock."""
    ready = np.maximum(t_a + fifo_latency[0], t_b + fifo_latency[1])
    # r_k = max(ready_k, r_{k-1} + 1): a running maximum of ready_k - k, shifted back
    k = np.arange(len(ready), dtype=np.int64)
    out: I64 = np.maximum.accumulate(ready - k) + k
    return out


def fifo_depth(t_write: I64, t_read: I64) -> int:
    """Entries a FIFO written at ``t_write`` and read at ``t_read`` needs: at every write, the
    pixels written before it and not yet read, plus itself."""
    written_before = np.arange(len(t_write), dtype=np.int64)
    read_before = np.searchsorted(t_read, t_write, side="left")
    return int((written_before - read_before).max(initial=0)) + 1
