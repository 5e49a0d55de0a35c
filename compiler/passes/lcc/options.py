"""What LCC codes a matrix to and how it searches: one record that the pass, the code builder
(:meth:`nnlcc.passes.lcc.code.LccCode.build`) and the algorithms
(:func:`nnlcc.passes.lcc.budget.budget_fp`) all read.

The :class:`~nnlcc.passes.lcc.code.Lcc` pass *is* an :class:`LccOptions` (its first options are
these fields, in this order) plus what only the pass needs (``truncate``, ``seed``), so a
default or a new knob is written once.  A new objective or search knob is a field here; the
functions that use it read it from the record they already get.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nnlcc.errors import PassOptionError
from nnlcc.passes.lcc.fp import GUARD_BITS
from nnlcc.passes.lcc.seeds import SEEDS_MIN_DB

Algo = Literal["fp", "fs", "plain"]
Objective = Literal["luts", "area", "adders"]

#: The objectives of the design search (:mod:`nnlcc.passes.lcc.search`).
OBJECTIVES: tuple[Objective, ...] = ("luts", "area", "adders")

#: Rows factored together at most (``tile_rows``).  Measured on a 512x4608 Gaussian matrix
#: (transposed: 4608 rows) at 45 dB on 2 cores: 1024 -> 0.821 additions/entry in 16.6 s,
#: 1152 -> 0.807 in 16.8 s, 1536 -> 0.781 in 20 s, 2304 -> 0.748 in 23 s, untiled 0.700 in
#: about 60 s; 1152 also keeps a 128x1152 conv (transposed) in one tile (0.804 vs 0.876).
TILE_ROWS = 1152


@dataclass(frozen=True)
class LccOptions:
    """The objective, the shape of the code and the search (the ``lcc`` pass documents each
    option for users).

    * objective: ``sqnr_db``, the whole-matrix SQNR the exact factor product must reach;
    * code: ``algo`` (``fp``, ``fs``, ``plain``), ``nonzeros`` terms per factor row, ``slice``
      width (``auto``: log2 of the rows), coefficient exponents in ``[exp_min, exp_max]``,
      ``guard_bits`` of precision below the target (bounds the adder widths);
    * search: at most ``max_factors`` factors; for ``fp``: ``history`` earlier factors whose
      codewords stay candidates, ``budget`` (one global error budget, exact stop),
      ``subrounds`` (row groups per factor), ``lookahead`` (candidates judged one step ahead);
      ``transpose`` (``auto``, ``yes``, ``no``) and ``tile_rows`` (rows factored together);
      ``seeds`` (``fp``: the two-term sums of a slice's inputs as candidate codewords from the
      first round, :mod:`~nnlcc.passes.lcc.seeds`; ``auto``: from
      :data:`~nnlcc.passes.lcc.seeds.SEEDS_MIN_DB` up);
    * design search: ``objective`` (``luts``, ``area``: the orientation and slice width the
      cost model prices cheapest, :mod:`~nnlcc.passes.lcc.search`; ``adders``: the published
      choice, fewest adders).
    """

    sqnr_db: float = 45.0
    algo: Algo = "fp"
    nonzeros: int = 2
    slice: str = "auto"
    exp_min: int = -12
    exp_max: int = 2
    max_factors: int = 32
    history: int = 64
    budget: bool = True
    guard_bits: int = GUARD_BITS
    subrounds: int = 4
    lookahead: int = 2
    transpose: Literal["auto", "yes", "no"] = "auto"
    tile_rows: int = TILE_ROWS
    seeds: Literal["auto", "yes", "no"] = "auto"
    objective: Objective = "luts"

    def __post_init__(self) -> None:
        """Refuses a knob out of range; ``sqnr_db`` is the caller's to bound (the pass takes
        (0, 150], the code builder whatever a pass derives from it)."""
        if self.algo not in ("fp", "fs", "plain"):
            raise PassOptionError("lcc: algo must be fp, fs or plain")
        if not 2 <= self.nonzeros <= 8:
            raise PassOptionError("lcc: nonzeros must be in 2..8")
        if self.slice != "auto" and not (self.slice.isdigit() and int(self.slice) >= 1):
            raise PassOptionError("lcc: slice must be 'auto' or a positive integer")
        if not -30 <= self.exp_min <= self.exp_max <= 8:
            raise PassOptionError("lcc: need -30 <= exp_min <= exp_max <= 8")
        if not 1 <= self.max_factors <= 256:
            raise PassOptionError("lcc: max_factors must be in 1..256")
        if self.history < 1:
            raise PassOptionError("lcc: history must be >= 1")
        if not 0 <= self.guard_bits <= 40:
            raise PassOptionError("lcc: guard_bits must be in 0..40")
        if not 1 <= self.subrounds <= 16:
            raise PassOptionError("lcc: subrounds must be in 1..16")
        if not 1 <= self.lookahead <= 16:
            raise PassOptionError("lcc: lookahead must be in 1..16")
        if self.transpose not in ("no", "auto", "yes"):
            raise PassOptionError(f"lcc: transpose must be auto, yes or no, not {self.transpose!r}")
        if self.tile_rows < 0:
            raise PassOptionError("lcc: tile_rows must be >= 0 (0: no row tiles)")
        if self.seeds not in ("auto", "yes", "no"):
            raise PassOptionError("lcc: seeds must be auto, yes or no")
        if self.objective not in OBJECTIVES:
            raise PassOptionError(f"lcc: objective must be one of {', '.join(OBJECTIVES)}")

    @property
    def use_seeds(self) -> bool:
        """Whether ``fp`` starts from the seeds (``auto``: at ``sqnr_db`` >= SEEDS_MIN_DB)."""
        return self.seeds == "yes" or (self.seeds == "auto" and self.sqnr_db >= SEEDS_MIN_DB)
