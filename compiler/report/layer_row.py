"""The report's per-layer row, typed: what report.json's ``layers`` holds, and what report.md
and report.html render (after reading it back with :meth:`LayerRow.from_json`).

The rows are built in one place, :func:`nnlcc.report.rows.layer_row`.  Fields marked
``omit`` are left out of the JSON when they are None (a layer without weights has no weight
SQNR, a dense layer no kernel); the others are always written, null when unknown (a code-only
row of ``--report-only`` has no lowered graph, so no depth or widths).  ``extras`` holds the
pass-specific facts of the layer's matrix code (:meth:`MatrixCode.summary`: reached SQNR,
factors, CSD digits, clusters, ...); they are flattened into the JSON object after the
compression columns, as report.json has always had them, before the compile step's facts
(auto's choice, the CSD baseline, a quantized model's imported formats).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from nnlcc.errors import BadInputError
from nnlcc.report.record import FLATTEN, OMIT, Record, key

__all__ = ["ROW_KEYS", "Extra", "LayerRow", "extra"]

Extra = str | int | float | bool | None
"""A value of :attr:`LayerRow.extras` (a pass summary's fact): a JSON scalar."""


def extra(key: str, value: Any) -> Extra:
    """``value`` as a JSON scalar (numpy scalars become Python ones)."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        value = item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"report fact {key!r} is not a JSON scalar: {type(value).__name__}")


@dataclass
class LayerRow(Record):
    """One layer of report.json.  Field order is the JSON key order."""

    #: keys every row has a value for (what the builder always knows)
    REQUIRED: ClassVar[tuple[str, ...]] = (
        "name", "kind", "shape", "pass", "adders", "in_fmt", "out_fmt", "out_bits"
    )  # fmt: skip

    name: str
    kind: str  # dense, conv, pool, add, flatten
    shape: tuple[int, int]  # matrix rows x cols; else the graph's outputs x inputs
    pass_name: str = field(metadata=key("pass"))  # matrix code, pool op, or the kind
    adders: int
    const_adders: int | None  # bias/rounding adders (None: not lowered)
    adders_per_weight: float | None  # matrix layers only
    depth: int | None
    latency: int | None
    in_fmt: str
    out_fmt: str
    out_bits: int
    max_bits: int | None
    adder_bits: int | None  # sum of adder widths (~ LUTs)
    # the cost model's LUTs and synthesized flip-flops on the board's family (None: unknown,
    # e.g. a code-only row of --report-only); see nnlcc.ir.cost
    est_luts: int | None = None
    est_ffs: int | None = None
    # matrix layers only
    weight_sqnr_db: float | None = field(default=None, metadata=OMIT)  # the code's (coding)
    # after truncation, as the hardware computes it (nnlcc.ir.truncate.hardware_sqnr)
    hw_sqnr_db: float | None = field(default=None, metadata=OMIT)
    relu: bool | None = field(default=None, metadata=OMIT)
    csd_baseline_adders: int | None = field(default=None, metadata=OMIT)
    kept_columns: int | None = field(default=None, metadata=OMIT)
    shared_columns: int | None = field(default=None, metadata=OMIT)
    pre_adders: int | None = field(default=None, metadata=OMIT)
    extras: dict[str, Extra] = field(default_factory=dict, metadata=FLATTEN)
    # matrix layers the compile step has facts of (nnlcc.baselines): auto's choice (auto-coded
    # layers) and nnlcc's best CSD design at the layer's error (the baseline)
    auto_coder: str | None = field(default=None, metadata=OMIT)
    auto_sqnr_db: float | None = field(default=None, metadata=OMIT)
    auto_runners_up: str | None = field(default=None, metadata=OMIT)
    csd_best: str | None = field(default=None, metadata=OMIT)
    csd_best_adders: int | None = field(default=None, metadata=OMIT)
    csd_best_luts: int | None = field(default=None, metadata=OMIT)
    # layers of an imported quantized model (nnlcc.ir.imported): the formats it brought, and
    # whether the layer computes its integers exactly (inexact: why not)
    imported_input: str | None = field(default=None, metadata=OMIT)
    imported_weights: str | None = field(default=None, metadata=OMIT)
    imported_output: str | None = field(default=None, metadata=OMIT)
    imported_exact: bool | None = field(default=None, metadata=OMIT)
    imported_inexact: str | None = field(default=None, metadata=OMIT)
    # window layers (conv, pool) only
    kernel: tuple[int, ...] | None = field(default=None, metadata=OMIT)
    stride: tuple[int, ...] | None = field(default=None, metadata=OMIT)
    line_buffer_bits: int | None = field(default=None, metadata=OMIT)
    window_delay: int | None = field(default=None, metadata=OMIT)  # streaming hardware only

    def __post_init__(self) -> None:
        clash = set(self.extras) & set(_JSON_NAMES)
        if clash:
            raise ValueError(f"layer {self.name}: extras {sorted(clash)} shadow row fields")

    @classmethod
    def from_json(cls, obj: Any) -> LayerRow:
        """The row of a report.json ``layers`` entry (unknown keys become extras)."""
        if isinstance(obj, Mapping):
            missing = [k for k in cls.REQUIRED if k not in obj]
            if missing:
                raise BadInputError(
                    f"layer {obj.get('name', '?')!r} of report.json lacks {', '.join(missing)};"
                    " re-run nnlcc compile to rewrite it"
                )
            try:  # a code's facts: JSON scalars (numpy's become Python's)
                obj = {k: v if k in _JSON_NAMES else extra(k, v) for k, v in obj.items()}
            except TypeError as e:
                raise BadInputError(f"report.json: {e}") from None
        return super().from_json(obj)


#: JSON key -> field name of every typed field (``extras`` is not one: it is flattened).
_JSON_NAMES = {
    f.metadata.get("json", f.name): f.name
    for f in fields(LayerRow)
    if not f.metadata.get("flatten")
}
ROW_KEYS = frozenset(_JSON_NAMES)
"""report.json keys of the typed fields (a code summary's ``adders`` or ``depth`` is the row's
own, not an extra)."""
