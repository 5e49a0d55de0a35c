"""A matrix's singular spectrum and the ranks worth trying for ``W = U·V + E``.

``W = U S V^T`` (SVD).  Keeping rank ``r`` leaves the residual ``E`` with the energy of the
dropped singular values; ``tail_db(r) = 10 log10(|W|^2 / |E|^2)`` is the SQNR the low-rank part
alone reaches.  A rank pays off when the factors are much smaller than ``W`` (``r (N + M)``
entries against ``N M``) and the residual is far below the target: ``E`` is then coded at the
few bits its share of the error budget needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nnlcc.ir.matrix import FloatArray

#: Largest rank tried, as a fraction of the factor-size break-even ``N M / (N + M)``.
MAX_RANK_SHARE = 0.5

#: Ranks tried at most (the cheapest is kept).
MAX_CANDIDATES = 4


@dataclass(frozen=True)
class Spectrum:
    """Singular values of a matrix and what each rank leaves."""

    shape: tuple[int, int]
    singular: FloatArray

    @classmethod
    def of(cls, w: FloatArray) -> Spectrum:
        s = np.linalg.svd(np.asarray(w, dtype=np.float64), compute_uv=False)
        return cls(shape=(int(w.shape[0]), int(w.shape[1])), singular=s)

    @property
    def energy(self) -> float:
        return float(np.sum(self.singular**2))

    def tail_db(self, rank: int) -> float:
        """SQNR of the best rank-``rank`` approximation (``inf`` when nothing is left)."""
        tail = float(np.sum(self.singular[rank:] ** 2))
        if tail <= 0 or self.energy <= 0:
            return math.inf
        return 10.0 * math.log10(self.energy / tail)

    @property
    def max_rank(self) -> int:
        n, m = self.shape
        return max(0, int(MAX_RANK_SHARE * n * m / (n + m)))

    def candidates(self, target_db: float) -> list[int]:
        """Ranks worth pricing: the knees of the spectrum (where the next singular value
        drops most, relative to its neighbour) among ranks small enough to pay, whose
        low-rank part reaches at least a fifth of the target: at most
        :data:`MAX_CANDIDATES`, the largest drop first."""
        s = self.singular
        top = min(self.max_rank, len(s) - 1)
        if top < 1 or s[0] <= 0:
            return []
        drops = []
        for r in range(1, top + 1):
            if s[r - 1] <= 0:
                break
            if self.tail_db(r) < target_db / 5:
                continue
            ratio = s[r] / s[r - 1] if s[r - 1] > 0 else 0.0
            drops.append((ratio, r))
        drops.sort()
        return [r for _, r in drops[:MAX_CANDIDATES]]

    def saving(self, rank: int, target_db: float) -> float:
        """Share of the coding cost rank ``rank`` saves under the linear model every coder
        roughly follows (cost proportional to entries times dB): the factors cost
        ``r (N + M)`` entries at the target, the residual ``N M`` entries at what the rank
        leaves to close, against ``N M`` entries at the target."""
        n, m = self.shape
        if target_db <= 0 or n * m == 0:
            return 0.0
        closed = min(self.tail_db(rank), target_db)
        return (n * m * closed - rank * (n + m) * target_db) / (n * m * target_db)

    def paying_rank(self, target_db: float) -> tuple[int, float]:
        """The candidate rank with the largest :meth:`saving` (``(0, 0.0)``: none saves)."""
        best = (0, 0.0)
        for r in self.candidates(target_db):
            gain = self.saving(r, target_db)
            if gain > best[1]:
                best = (r, gain)
        return best

    def facts(self, target_db: float, show: int = 8) -> dict[str, object]:
        """What ``inspect`` shows: the leading singular values (relative to the first), the
        SQNR each candidate rank leaves for the residual to close, and the rank that pays
        off with the share of the cost it saves (linear model, see :meth:`saving`)."""
        s = self.singular
        lead = [round(float(x / s[0]), 4) for x in s[:show]] if len(s) and s[0] > 0 else []
        rank, gain = self.paying_rank(target_db)
        return {
            "singular_values_rel": lead,
            "rank_candidates": {r: round(self.tail_db(r), 2) for r in self.candidates(target_db)},
            "paying_rank": rank,
            "saving_est": round(gain, 3),
        }

    def scalar_facts(self, target_db: float) -> dict[str, object]:
        """:meth:`facts` as JSON scalars (what a report row holds)."""
        f = self.facts(target_db)
        lead = f["singular_values_rel"]
        cands = f["rank_candidates"]
        assert isinstance(lead, list) and isinstance(cands, dict)
        return {
            "singular_values_rel": " ".join(f"{v:.3g}" for v in lead),
            "rank_candidates_db": ", ".join(f"{r}: {db:g}" for r, db in cands.items()),
            "paying_rank_est": f["paying_rank"],
        }
