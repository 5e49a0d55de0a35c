"""Block-circulant compression: the ``circulant`` pass (:mod:`.code`), its block layout and
projection (:mod:`.blocks`) and its hardware forms (:mod:`.forms`)."""

from nnlcc.passes.circulant.blocks import Layout
from nnlcc.passes.circulant.code import Circulant, CirculantCode, layout_of

__all__ = ["Circulant", "CirculantCode", "Layout", "layout_of"]
