"""What a coder is: the room of one matrix code, as the registry (:mod:`nnlcc.passes.registry`)
knows it.

A :class:`Coder` says

- how its code reads back from the IR text: :attr:`Coder.kind` is the word after ``code``,
  :meth:`Coder.parse` reads the block (the code object prints it: ``text_lines``), and
  :attr:`Coder.blocks` parses the layer blocks of the block notes it owns
  (:class:`~nnlcc.ir.notes.BlockNote`; share: its ``plan``);
- which designs it offers the ``auto`` pass for a layer at a target error
  (:meth:`Coder.candidates`), when :attr:`Coder.in_auto`: auto codes the layer with each, to
  the same SQNR, prices them and keeps the cheapest.  On a layer too big to lower and price
  whole, a design with a :attr:`Design.sample` is priced on a sample of the matrix
  (:mod:`nnlcc.passes.sampled`) and only the cheapest is coded whole.

Adding a coder is one module (or folder) with its code class and its :class:`Coder`, plus one
line in the registry's table; ``docs/architecture.md`` walks through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from nnlcc.ir.code_text import BlockParser, CodeReader
from nnlcc.ir.matrix import FloatArray, MatrixCode, MatrixLayer
from nnlcc.ir.text_syntax import Line
from nnlcc.passes.pricing import Pricing
from nnlcc.passes.sampled import SampledCost

__all__ = ["Coder", "CoderContext", "Design"]


@dataclass(frozen=True)
class Design:
    """One design a coder offers a layer: ``label`` (how auto's record and the report name it,
    e.g. ``lcc{transpose=no}``) and ``build`` (codes a matrix: the layer's weight, or the
    reduced matrix of its share plan).  ``refuse`` says why a finished code (wrapped in the
    share code when the layer is shared) does not count, or None when it does.  ``sample``
    prices the design of a matrix on a sample of it (:func:`nnlcc.passes.sampled.sampled_cost`;
    its code is refused like a whole one), for a layer too big to price whole; a design without
    one is trusted unpriced there."""

    label: str
    build: Callable[[FloatArray], MatrixCode]
    refuse: Callable[[MatrixCode], str | None] | None = None
    sample: Callable[[FloatArray], SampledCost] | None = None


@dataclass(frozen=True)
class CoderContext:
    """What auto asks every coder to meet for one layer.

    ``sqnr_db`` is the layer's whole-matrix SQNR after truncation, ``truncate`` auto's
    ``truncate`` option (``auto``: the partial sums are truncated after coding), and
    ``coding_db`` the SQNR a code must reach before truncation (``sqnr_db`` plus the truncation
    reserve).  ``matrix`` is what a design codes: the weight, or the share plan's reduced
    matrix.  ``priced`` is False for a layer too big to lower and price whole (above auto's
    ``full_entries``): a coder then offers designs priced on a sample (with a
    :attr:`Design.sample`), or one trusted unpriced, or none.  ``pricing`` is the layer's
    input range and power and the family priced (what a coder's own design search prices
    with, :mod:`nnlcc.passes.pricing`).
    ``peer_entries`` and ``fs_entries`` are auto's limits of the largest layer a peer tool's
    solver and lcc's ``algo=fs`` are tried on (compile time).  ``exact``: the integer matrix
    and its fractional bits an imported quantized model gave the layer, which it keeps
    (:mod:`nnlcc.ir.imported`): a design then codes exactly those integers, untruncated (auto
    refuses any code that does not compute them), or the coder offers none."""

    sqnr_db: float
    truncate: str
    coding_db: float
    matrix: FloatArray
    priced: bool = True
    peer_entries: int = 4096
    fs_entries: int = 2048
    pricing: Pricing = field(default_factory=Pricing)
    exact: tuple[npt.NDArray[np.int64], int] | None = None


class Coder:
    """Base of every coder (one instance per registry entry; subclasses set the class
    variables and override :meth:`parse`, and :meth:`candidates` when ``in_auto``)."""

    #: the word after ``code`` in the IR text, and the coder's name in auto's ``coders``
    kind: ClassVar[str]
    #: whether ``auto`` tries this coder's designs (and accepts its name in ``coders``)
    in_auto: ClassVar[bool] = False
    #: layer-block keyword -> parser, for the block notes this coder owns
    blocks: ClassVar[Mapping[str, BlockParser]] = {}

    def parse(self, line: Line, shape: tuple[int, int], reader: CodeReader) -> MatrixCode:
        """The code of the ``code KIND ...`` block ``line`` for a matrix of ``shape``;
        ``reader`` reads nested codes and keeps the notes the layer shares."""
        raise NotImplementedError

    def candidates(self, layer: MatrixLayer, ctx: CoderContext) -> list[Design]:
        """The designs auto tries on ``layer`` (none: the coder does not fit this layer)."""
        return []
