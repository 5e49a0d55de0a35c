"""Typed facts about a matrix layer that the compile finds out and the report renders.

- :class:`AutoChoice`: the design ``auto`` chose and what the others cost (from the record
  the pass leaves, :func:`nnlcc.passes.auto.auto_choice`);
- :class:`Compression`: the columns the layer uses and what sharing left of them
  (:func:`nnlcc.passes.share.compression_facts`);
- :class:`CsdBest`: the baseline every layer is compared with, nnlcc's best CSD design at the
  layer's own error (a compile step of its own: :mod:`nnlcc.baselines`);
- :class:`ImportedFacts`: a quantized model's layer: its imported formats and whether the
  layer computes the model's integers exactly
  (:meth:`nnlcc.ir.imported.ImportedQuant.report_facts`).

:class:`LayerFacts` carries them from the compile (:func:`nnlcc.baselines.layer_facts`) to the
report rows (:func:`nnlcc.report.rows.layer_rows`), which render them and compute nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AutoChoice", "Compression", "CsdBest", "ImportedFacts", "LayerFacts"]


@dataclass(frozen=True)
class AutoChoice:
    """``auto``'s choice for a layer: the candidate's label, the SQNR every candidate met and
    the runners-up (``label N LUTs`` or ``label failed: why``, joined by ``; ``; ``none``)."""

    coder: str
    sqnr_db: float | None
    runners_up: str


@dataclass(frozen=True)
class Compression:
    """Used columns, distinct columns after sharing (the used ones without it) and pre-adders
    (the part of the layer's adders that sums shared inputs)."""

    kept_columns: int
    shared_columns: int
    pre_adders: int


@dataclass(frozen=True)
class CsdBest:
    """nnlcc's best CSD design of a layer at the layer's own error: its label (e.g.
    ``csd{weight_bits=9}``), adders and estimated LUTs on the board's family."""

    coder: str
    adders: int
    est_luts: int


@dataclass(frozen=True)
class ImportedFacts:
    """A layer of an imported quantized model: its input quantizer (the layer reading the
    graph input; None otherwise), weight and output formats as text (``float``: float
    weights, ``exact``: the output is kept exact), ``exact`` when the layer computes the
    model's integers bit for bit, else ``inexact`` says why."""

    input: str | None
    weights: str
    output: str
    exact: bool
    inexact: str | None = None


@dataclass(frozen=True)
class LayerFacts:
    """What the report shows of a matrix layer beyond its code and its lowered graph;
    ``hw_sqnr_db``: its SQNR as the hardware computes it, after truncation
    (:func:`nnlcc.ir.truncate.hardware_sqnr`; None: not lowered)."""

    compression: Compression
    auto: AutoChoice | None = None
    csd_best: CsdBest | None = None
    hw_sqnr_db: float | None = None
    imported: ImportedFacts | None = None
