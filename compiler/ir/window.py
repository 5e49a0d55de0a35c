"""Sliding-window geometry of convolutions and pools, and the window vectors they read.

Layout conventions (shared by the IR, the golden model and the streaming hardware):

* An image tensor has the *shape* ``(C, H, W)`` (ONNX's order, what users read) but is *stored*
  channels-last: a batch of images is a numpy array ``(batch, H, W, C)``, and the hardware
  stream carries one pixel (all ``C`` channels in parallel) per clock in raster order (row by
  row, left to right).
* The **window vector** of output pixel ``(oy, ox)`` has ``kh * kw * C`` elements in
  *tap-major, channel-fastest* order::

      index(i, j, c) = (i * kw + j) * C + c      # i: kernel row, j: kernel column, c: channel
      value          = x[oy * sh + i - pad_top, ox * sw + j - pad_left, c]

  i.e. the ``kh * kw`` pixel vectors of the window concatenated in raster order.  Taps that fall
  in the padding read ``fill`` (0 for convolutions and average pools: a real zero in any
  fixed-point format; max pools ignore padding, which equals reading the format's minimum).
  A line buffer produces exactly this vector from the unpadded stream: it holds the last
  ``(kh - 1) * W + kw - 1`` pixels (the newest pixel is the stream input itself), reads the
  ``kh * kw`` taps at their ages, and a position controller substitutes ``fill`` for taps in
  the padding (see :mod:`nnlcc.hdl.line_buffer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Window"]


@dataclass(frozen=True)
class Window:
    """Kernel ``(kh, kw)``, stride ``(sh, sw)`` and pads ``(top, left, bottom, right)``.

    Output size follows ONNX/torch floor mode: ``Ho = (H + top + bottom - kh) // sh + 1``.
    """

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self) -> None:
        if min(self.kernel) < 1 or min(self.stride) < 1 or min(self.pads) < 0:
            raise ValueError(f"bad window {self}")

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        """Output height and width for an ``h x w`` input (raises if the kernel does not fit)."""
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.pads
        if h + pt + pb < kh or w + pl + pr < kw:
            raise ValueError(f"kernel {kh}x{kw} larger than the padded input {h}x{w}")
        return (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1

    def line_buffer_pixels(self, w: int) -> int:
        """Pixels a streaming line buffer holds to form every window of an ``? x w`` input:
        ``(kh - 1)`` rows of ``w`` plus ``kw - 1`` (padding is generated, not stored)."""
        return (self.kernel[0] - 1) * w + self.kernel[1] - 1

    def windows(self, x: npt.NDArray[np.generic], fill: float | int = 0) -> npt.NDArray[np.generic]:
        """Window vectors of a channels-last batch ``(batch, H, W, C)``:
        ``(batch, Ho, Wo, kh * kw * C)`` in the module's window order (a copy)."""
        b, h, w, c = x.shape
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.pads
        ho, wo = self.out_hw(h, w)
        if any(self.pads):
            xp = np.full((b, h + pt + pb, w + pl + pr, c), fill, dtype=x.dtype)
            xp[:, pt : pt + h, pl : pl + w, :] = x
        else:
            xp = x
        out = np.empty((b, ho, wo, kh, kw, c), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                out[:, :, :, i, j, :] = xp[
                    :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw, :
                ]
        return out.reshape(b, ho, wo, kh * kw * c)

    def to_text(self) -> str:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        return f"k={kh}x{kw} s={sh}x{sw} p={','.join(map(str, self.pads))}"
