"""A synthetic, jet-like tabular data set with the shape of hls4ml's jet-tagging benchmark.

hls4ml's and da4ml's jet-substructure benchmark (Duarte et al., JINST 13 P07027, 2018) tags
jets as gluon, light quark, W, Z or top from 16 high-level features.  Its data (on Zenodo)
cannot be fetched here, so this module *generates* a stand-in, deterministically: per class a
latent groomed mass (W, Z and top peaks at 80.4, 91.2 and 173 GeV, broad low masses for
quarks and gluons, and a share of 2- and 3-prong jets whose grooming lost a prong), a
constituent multiplicity (gluons and tops wider) and a prong count; the 16 features are
noisy, correlated functions of those, named after the original ones (zlogz, the
energy-correlation ratios C1, C2, D2, M2, N2 at beta 1 and 2, the mmdt mass, the
multiplicity).  It is *not* physics: it only reproduces the benchmark's shape (16 inputs,
5 classes, overlapping classes, a 64-32-32 MLP reaching about 75 %), so hardware figures are
comparable and accuracies are not comparable with the papers'.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["CLASSES", "FEATURES", "make_jets"]

CLASSES = ("g", "q", "W", "Z", "t")
FEATURES = (
    "zlogz",
    "c1_b0_mmdt",
    "c1_b1_mmdt",
    "c1_b2_mmdt",
    "c2_b1_mmdt",
    "c2_b2_mmdt",
    "d2_b1_mmdt",
    "d2_b2_mmdt",
    "d2_a1_b1_mmdt",
    "d2_a1_b2_mmdt",
    "m2_b1_mmdt",
    "m2_b2_mmdt",
    "n2_b1_mmdt",
    "n2_b2_mmdt",
    "mass_mmdt",
    "multiplicity",
)

# per class: mass peak and width (GeV; lognormal for g and q), multiplicity mean, prongs,
# share of jets whose grooming lost a prong (their mass falls to a light-jet mass)
_MASS = {
    "g": (38.0, 0.55),
    "q": (24.0, 0.6),
    "W": (80.4, 9.0),
    "Z": (91.2, 9.5),
    "t": (173.0, 18.0),
}
_MULT = {"g": 48.0, "q": 30.0, "W": 36.0, "Z": 38.0, "t": 56.0}
_PRONGS = {"g": 1, "q": 1, "W": 2, "Z": 2, "t": 3}
_LOST = {"g": 0.0, "q": 0.0, "W": 0.2, "Z": 0.2, "t": 0.3}


def _one_class(rng: np.random.Generator, cls: str, n: int) -> npt.NDArray[np.float64]:
    peak, width = _MASS[cls]
    if cls in ("g", "q"):
        mass = peak * np.exp(width * rng.standard_normal(n))
    else:
        mass = peak + width * rng.standard_normal(n)
    prongs = np.full(n, float(_PRONGS[cls]))
    lost = rng.random(n) < _LOST[cls]
    prongs[lost] -= 1.0
    mass[lost] = 30.0 * np.exp(0.5 * rng.standard_normal(lost.sum()))
    mult = rng.poisson(_MULT[cls], n).astype(np.float64)
    pt = np.exp(0.15 * rng.standard_normal(n))  # a nuisance shared by the shape variables
    e = rng.standard_normal((n, 16))
    lm, lmult = np.log(np.maximum(mass, 1.0)), np.log(mult + 1.0)
    p = prongs + 0.35 * e[:, 0]
    x = np.empty((n, 16))
    x[:, 0] = lmult * (1.0 + 0.08 * e[:, 1]) + 0.1 * p  # zlogz
    for k, beta in enumerate((0.0, 1.0, 2.0)):  # C1: grows with mass, multiplicity
        x[:, 1 + k] = (0.3 + 0.1 * beta) * lm + 0.05 * lmult + 0.2 * e[:, 2 + k] * pt
    for k, beta in enumerate((1.0, 2.0)):  # C2 and D2: low for 2-prong jets
        two = np.abs(p - 2.0)
        x[:, 4 + k] = 0.4 * two + 0.1 * beta * lm / 5 + 0.25 * e[:, 5 + k]
        x[:, 6 + k] = 1.2 * two + 0.3 * np.abs(p - 1.0) + 0.4 * e[:, 7 + k] * pt
    for k in range(2):  # D2 alpha=1: sensitive to three prongs
        x[:, 8 + k] = 0.9 * np.abs(p - 3.0) + 0.2 * lm / 5 + 0.35 * e[:, 9 + k]
    for k in range(2):  # M2, N2: prong counting
        x[:, 10 + k] = 0.5 * p + 0.3 * e[:, 11 + k] * pt
        x[:, 12 + k] = 0.3 * p * lm / 4 + 0.3 * e[:, 13 + k]
    x[:, 14] = mass * (1.0 + 0.05 * e[:, 15])
    x[:, 15] = mult
    return x


def make_jets(n: int, seed: int = 0) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """``n`` jets (classes balanced, shuffled): standardized features (float32) and labels."""
    rng = np.random.default_rng(seed)
    per = [n // len(CLASSES) + (1 if k < n % len(CLASSES) else 0) for k in range(len(CLASSES))]
    xs = [_one_class(rng, c, m) for c, m in zip(CLASSES, per, strict=True)]
    y = np.concatenate([np.full(m, k, dtype=np.int64) for k, m in enumerate(per)])
    x = np.concatenate(xs)
    order = rng.permutation(n)
    x, y = x[order], y[order]
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x.astype(np.float32), y
