"""The ``lowrank`` coder: ``W ≈ U·V + E``, each factor coded by the best coder.

- :mod:`.spectrum`: singular values and the ranks worth pricing;
- :mod:`.terms`: lowering a factor's code on signed shifted input terms;
- :mod:`.code`: :class:`LowRankCode` and the search over ranks and factor coders;
- :mod:`.text_form`: its IR text; :mod:`.coder`: its room in the registry (``auto``'s design);
- :mod:`.lowrank_pass`: the ``lowrank`` pass.
"""

from nnlcc.passes.lowrank.code import LowRankCode, build
from nnlcc.passes.lowrank.lowrank_pass import Lowrank
from nnlcc.passes.lowrank.spectrum import Spectrum

__all__ = ["LowRankCode", "Lowrank", "Spectrum", "build"]
