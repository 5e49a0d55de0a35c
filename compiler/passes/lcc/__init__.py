"""The ``lcc`` pass (linear computation coding) and its algorithms.

- :mod:`.code`: the pass, :class:`LccCode` (a layer as sums of sparse signed-power-of-two
  factor products, straight or transposed) and the tiling of big matrices;
- :mod:`.fp`: fully parallel matching pursuit (and the published plain FP);
- :mod:`.fs`: fully sequential codebook growth;
- :mod:`.budget`: FP with a global error budget across slices;
- :mod:`.options`: :class:`LccOptions`, the objective and search knobs they all read.
"""

from nnlcc.passes.lcc._cache import ensure_numba_cache_dir

ensure_numba_cache_dir()  # before numba loads: it reads NUMBA_CACHE_DIR once

from nnlcc.passes.lcc.code import (  # noqa: E402
    TILE_ROWS,
    Lcc,
    LccCode,
    LccOptions,
    column_slices,
    slice_width,
)

__all__ = ["TILE_ROWS", "Lcc", "LccCode", "LccOptions", "column_slices", "slice_width"]
