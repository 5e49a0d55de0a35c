"""Imported quantization: the facts a quantized model (QONNX ``Quant``, ONNX QDQ, Brevitas)
brings with its layers, in one typed layer note per layer (:class:`ImportedQuant`, key
``imported``: ``layer.notes.get(ImportedQuant)``; :mod:`nnlcc.ir.notes`).

Semantics.  An imported quantizer ``q = clamp(round(x / scale) + zero_point, qmin, qmax)``
stands for the real value ``scale * (q - zero_point)``.  nnlcc carries the *centered* integer
``q - zero_point`` (zero points are thus exact and free: they only move the clamp bounds), and
splits every scale into a power of two and a *gain* in [1, 2): ``scale = gain * 2**-frac``.  The
power of two is a fixed-point format (:attr:`ActQuant.fmt`); a gain other than 1 is never
rounded into the integers but folded, with the weight scales' own gains, into the next
requantization (:mod:`nnlcc.ir.rescale`).  So a matrix layer of the IR computes
``y_ir = W_ir @ x_ir + b_ir`` on dyadic integers (``layer.weight`` holds the imported integers
times ``2**-frac`` exactly) and the model's value is ``y = gain * y_ir`` per output row.

A model is *integer-exact* where every scale is a power of two and every bias lies on a
power-of-two grid: then the golden model equals the float model (onnxruntime, qonnx) bit for
bit.  :meth:`ImportedQuant.inexact` lists why a layer is not.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from nnlcc.ir.facts import ImportedFacts
from nnlcc.ir.fixed_point import FixedFormat, bits_for_range
from nnlcc.ir.notes import JsonNote

__all__ = [
    "MAX_BITS",
    "ActQuant",
    "ImportedQuant",
    "Rounding",
    "WeightQuant",
    "imported_ints",
    "split_scale",
]

#: Widest imported weight or activation quantizer nnlcc maps (bias quantizers may be wider).
MAX_BITS = 24


class Rounding(enum.Enum):
    """Rounding of an activation quantizer on the data path (QONNX ``rounding_mode`` names;
    ``ROUND`` is numpy's and ONNX's round half to even)."""

    ROUND = "ROUND"
    FLOOR = "FLOOR"
    CEIL = "CEIL"
    BIPOLAR = "BIPOLAR"  # BipolarQuant (and 1-bit signed Quant): +1 where x >= 0, else -1
    # round half to odd: QONNX's ROUND of x/scale + zero_point, seen on the centered value
    # x/scale when the zero point is odd (internal, not a QONNX name)
    ROUND_ODD = "ROUND_ODD"

    @classmethod
    def parse(cls, text: str) -> Rounding | None:
        """The mode named ``text`` (``HALF_EVEN`` is ``ROUND``), None if nnlcc has no rule."""
        t = text.upper()
        if t == "HALF_EVEN":
            t = "ROUND"
        return cls.__members__.get(t) if t in ("ROUND", "FLOOR", "CEIL") else None


def split_scale(scale: float) -> tuple[float, int]:
    """``scale = gain * 2**-frac`` with ``gain`` in [1, 2) (1.0 exactly for powers of two)."""
    m, e = math.frexp(scale)  # scale = m * 2**e, m in [0.5, 1)
    return 2.0 * m, 1 - e


@dataclass(frozen=True)
class ActQuant:
    """An imported quantizer of a tensor: ``q = clamp(round(x / scale) + zero_point, qmin,
    qmax)``, value ``scale * (q - zero_point)``; nnlcc's integer is ``q - zero_point`` in
    ``[lo, hi]``.  ``nodes`` are the ONNX nodes it came from (Quant, or QuantizeLinear, Clip
    and DequantizeLinear)."""

    scale: float
    zero_point: int
    qmin: int
    qmax: int
    rounding: Rounding
    nodes: tuple[str, ...] = ()
    #: QONNX rounds ``x / scale + zero_point``; ONNX QuantizeLinear rounds ``x / scale``
    zp_in_rounding: bool = False

    @property
    def bipolar(self) -> bool:
        return self.rounding is Rounding.BIPOLAR

    @property
    def centered_rounding(self) -> Rounding:
        """The rounding of the centered value ``x / scale`` (half to even of ``x / scale +
        zero_point`` is half to odd of ``x / scale`` when the zero point is odd)."""
        if self.rounding is Rounding.ROUND and self.zp_in_rounding and self.zero_point % 2:
            return Rounding.ROUND_ODD
        return self.rounding

    @property
    def lo(self) -> int:
        return -1 if self.bipolar else self.qmin - self.zero_point

    @property
    def hi(self) -> int:
        return 1 if self.bipolar else self.qmax - self.zero_point

    @property
    def frac(self) -> int:
        return split_scale(self.scale)[1]

    @property
    def gain(self) -> float:
        return split_scale(self.scale)[0]

    @property
    def fmt(self) -> FixedFormat:
        """The fixed-point format holding every centered integer at the scale's power of two."""
        bits, signed = bits_for_range(self.lo, self.hi)
        return FixedFormat(bits=bits, frac=self.frac, signed=signed)

    def quantize(self, x: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """The centered integers of real inputs, computed as onnxruntime and qonnx do: the
        input as float32, ``x / scale`` in float32, then rounding and saturation."""
        x32 = np.asarray(x, dtype=np.float32)
        if self.bipolar:
            return np.where(x32 >= 0, 1, -1).astype(np.int64)
        r: dict[Rounding, Callable[[npt.NDArray[Any]], npt.NDArray[Any]]] = {
            Rounding.ROUND: np.round,
            Rounding.FLOOR: np.floor,
            Rounding.CEIL: np.ceil,
        }
        y = x32 / np.float32(self.scale)
        if self.zp_in_rounding:  # qonnx: clamp(x / scale + zero_point), then round
            y = np.clip(y + np.float32(self.zero_point), self.qmin, self.qmax)
            return r[self.rounding](y).astype(np.int64) - self.zero_point
        q = r[self.rounding](y).astype(np.int64) + self.zero_point  # onnxruntime
        return np.clip(q, self.qmin, self.qmax) - self.zero_point

    def describe(self) -> str:
        """``u6 x0.015625 (2^-6) ROUND`` style text for inspect and reports."""
        f = self.fmt
        zp = f" zp={self.zero_point}" if self.zero_point else ""
        pow2 = f"2^{-f.frac}" if self.gain == 1.0 else f"{self.gain:.6g}*2^{-f.frac}"
        span = "±1" if self.bipolar else f"[{self.lo}, {self.hi}]"
        return f"{f} {span} x{self.scale:.6g} ({pow2}){zp} {self.rounding.value}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["rounding"] = self.rounding.value
        d["nodes"] = list(self.nodes)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ActQuant:
        return cls(
            scale=float(d["scale"]),
            zero_point=int(d["zero_point"]),
            qmin=int(d["qmin"]),
            qmax=int(d["qmax"]),
            rounding=Rounding(d["rounding"]),
            nodes=tuple(d.get("nodes", ())),
            zp_in_rounding=bool(d.get("zp_in_rounding", False)),
        )


@dataclass(frozen=True)
class WeightQuant:
    """An imported weight quantizer: ``bits`` (signed, narrow) integers whose IR value is
    ``layer.weight * 2**frac`` (exact integers); ``scales`` are the imported scales (one per
    tensor, or one per output row/channel), whose gains :attr:`ImportedQuant.gain` holds."""

    bits: int
    signed: bool
    narrow: bool
    frac: int
    scales: tuple[float, ...]
    nodes: tuple[str, ...] = ()

    def describe(self) -> str:
        kind = "per tensor" if len(self.scales) == 1 else f"per channel ({len(self.scales)})"
        lo, hi = min(self.scales), max(self.scales)
        span = f"x{lo:.6g}" if lo == hi else f"x{lo:.6g}..{hi:.6g}"
        sign = "s" if self.signed else "u"
        narrow = " narrow" if self.narrow else ""
        return f"{sign}{self.bits}{narrow} {span} {kind}"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["scales"] = list(self.scales)
        d["nodes"] = list(self.nodes)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> WeightQuant:
        return cls(
            bits=int(d["bits"]),
            signed=bool(d["signed"]),
            narrow=bool(d["narrow"]),
            frac=int(d["frac"]),
            scales=tuple(float(s) for s in d["scales"]),
            nodes=tuple(d.get("nodes", ())),
        )


@dataclass
class ImportedQuant(JsonNote):
    """What a quantized model says about one matrix layer (its layer note, recorded by the ONNX
    frontend, :mod:`nnlcc.frontends.onnx.quant`).

    ``weight``: its imported integers (None: float weights); ``input``: the quantizer of the
    graph input, on the layer that reads it; ``output``: the quantizer of its output (None: the
    output is kept exact, the format :meth:`exact_format` gives); ``gain``: per output row,
    the non-power-of-two factor between the IR's value and the model's (empty: all 1);
    ``folded``: the ONNX nodes folded into the layer; ``caveats``: why parts are not exact
    (a float bias, a BatchNormalization folded into the scales, ...).
    """

    key: ClassVar[str] = "imported"

    weight: WeightQuant | None = None
    input: ActQuant | None = None
    output: ActQuant | None = None
    gain: tuple[float, ...] = ()
    folded: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)

    def row_gain(self, row: int) -> float:
        return self.gain[row] if self.gain else 1.0

    def inexact(self) -> list[str]:
        """Why the layer is not integer-exact (empty: it is)."""
        why = list(self.caveats)
        if self.weight is None:
            why.append("float weights")
        if any(split_scale(g)[0] != 1.0 for g in self.gain):
            why.append("non-power-of-two scales folded into the requantization")
        return why

    def fold(self, *nodes: str) -> None:
        for n in nodes:
            if n not in self.folded:
                self.folded.append(n)

    def to_json(self) -> dict[str, Any]:
        return {
            "weight": self.weight.to_json() if self.weight else None,
            "input": self.input.to_json() if self.input else None,
            "output": self.output.to_json() if self.output else None,
            "gain": list(self.gain),
            "folded": list(self.folded),
            "caveats": list(self.caveats),
        }

    @classmethod
    def from_json(cls, obj: Any) -> ImportedQuant:
        if not isinstance(obj, dict):
            raise ValueError("imported must be a JSON object")
        try:
            return cls(
                weight=WeightQuant.from_json(obj["weight"]) if obj.get("weight") else None,
                input=ActQuant.from_json(obj["input"]) if obj.get("input") else None,
                output=ActQuant.from_json(obj["output"]) if obj.get("output") else None,
                gain=tuple(float(g) for g in obj.get("gain", ())),
                folded=[str(n) for n in obj.get("folded", ())],
                caveats=[str(n) for n in obj.get("caveats", ())],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"imported: bad record ({type(e).__name__}: {e})") from None

    def report_facts(self, coded_exactly: bool = True) -> ImportedFacts:
        """The report's facts of the layer; ``coded_exactly``: the layer's code computes its
        imported integers exactly, untruncated."""
        why = self.inexact()
        if self.weight is not None and not coded_exactly:
            why.append("its code approximates the imported integers")
        return ImportedFacts(
            input=self.input.describe() if self.input is not None else None,
            weights=self.weight.describe() if self.weight else "float",
            output=self.output.describe() if self.output else "exact",
            exact=not why,
            inexact="; ".join(why) if why else None,
        )


def imported_ints(layer: Any) -> tuple[npt.NDArray[np.int64], int] | None:
    """The layer's imported integer matrix and its fractional bits, when the layer's weights
    are still exactly those integers (a prune keeps them; anything that moved a weight off
    the grid drops them)."""
    notes = getattr(layer, "notes", None)
    facts = notes.get(ImportedQuant) if notes is not None else None
    if facts is None or facts.weight is None:
        return None
    scaled = np.ldexp(np.asarray(layer.weight, dtype=np.float64), facts.weight.frac)
    ints = np.round(scaled)
    if not np.array_equal(ints, scaled) or np.max(np.abs(ints), initial=0) >= 2**52:
        return None
    return ints.astype(np.int64), facts.weight.frac
