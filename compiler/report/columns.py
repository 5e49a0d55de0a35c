"""Column specifications shared by every report format (report.md and report.html).

A :class:`Column` names its header, how to get its cell from a row, whether it is text (the
HTML page left-aligns leading text columns) and, per writer, whether it is shown: always,
never, or only when some row "says something" in it.  Each writer formats the cell values
itself (``–`` for None, 4 significant digits for floats, ...).  The layer table, the accuracy
table and the resources table are defined here once; where the two formats differ today
(report.md lists compression as one column, report.html as optional ones), the difference is
a flag of the column, not a second list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from nnlcc.report.layer_row import LayerRow
from nnlcc.report.schema import Accuracy, Report, Resources, Totals

__all__ = [
    "ACCURACY_COLUMNS",
    "LAYER_COLUMNS",
    "RESOURCE_COLUMNS",
    "Column",
    "Show",
    "Table",
    "Writer",
    "estimate_totals",
    "resource_notes",
    "table",
]

R = TypeVar("R")


class Writer(Enum):
    MARKDOWN = "markdown"
    HTML = "html"


class Show(Enum):
    ALWAYS = "always"
    NEVER = "never"
    SAYS = "when some row says something"  # Column.says of any row


def _always(_: Any) -> bool:
    return True


@dataclass(frozen=True)
class Column(Generic[R]):
    header: str
    value: Callable[[R], Any]
    text: bool = False  # a text column (left-aligned in HTML)
    markdown: Show = Show.ALWAYS
    html: Show = Show.ALWAYS
    says: Callable[[R], bool] = _always  # for Show.SAYS: does this row's cell say something
    markdown_header: str | None = None  # report.md's header where it differs

    def show(self, writer: Writer, rows: Sequence[R]) -> bool:
        how = self.markdown if writer is Writer.MARKDOWN else self.html
        return how is Show.ALWAYS or (how is Show.SAYS and any(map(self.says, rows)))

    def title(self, writer: Writer) -> str:
        if writer is Writer.MARKDOWN and self.markdown_header is not None:
            return self.markdown_header
        return self.header


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[Any]]
    left: int  # leading text columns


def table(columns: Sequence[Column[R]], rows: Sequence[R], writer: Writer) -> Table:
    """The columns ``writer`` shows for ``rows``, their headers and cells."""
    shown = [c for c in columns if c.show(writer, rows)]
    left = next((i for i, c in enumerate(shown) if not c.text), len(shown))
    return Table(
        [c.title(writer) for c in shown], [[c.value(row) for c in shown] for row in rows], left
    )


# ------------------------------------------------------------------------------ layers


def _compression(row: LayerRow) -> str:
    """``used→shared (pre-adders)`` of a layer (pruning and weight sharing), ``–`` if absent."""
    if row.kept_columns is None:
        return "–"
    return f"{row.kept_columns}→{row.shared_columns} ({row.pre_adders})"


def _imported(row: LayerRow) -> str:
    """``exact``, or why the layer does not compute an imported model's integers exactly."""
    if row.imported_exact is None:
        return "–"
    return "exact" if row.imported_exact else f"not exact: {row.imported_inexact}"


def _estimated(header: str, value: Callable[[LayerRow], int | None]) -> Column[LayerRow]:
    """A cost-model figure, next to the adders in both formats when some row has one (a
    report.json written before the model had none)."""
    return Column(
        header, value, markdown=Show.SAYS, html=Show.SAYS, says=lambda row: value(row) is not None
    )


def _estimated_sqnr() -> Column[LayerRow]:
    """The SQNR after truncation (the hardware's), beside the coding SQNR, when some row has
    it (a report.json written before it existed, or a code-only report, has none)."""
    return Column(
        "hardware SQNR dB",
        lambda row: row.hw_sqnr_db,
        markdown=Show.SAYS,
        html=Show.SAYS,
        says=lambda row: row.hw_sqnr_db is not None,
    )


#: The layer table: report.md shows compression as one column; report.html shows the CSD
#: baseline and adder bits, and the compression and line-buffer facts only where they say
#: something.  "est. LUTs" and "est. FFs" are the calibrated cost model's figures on the
#: board's family (:mod:`nnlcc.ir.cost`); "adder bits" sums every adder's width.
LAYER_COLUMNS: tuple[Column[LayerRow], ...] = (
    Column("layer", lambda row: row.name, text=True),
    Column("shape", lambda row: "×".join(map(str, row.shape)), text=True),
    Column("pass", lambda row: row.pass_name, text=True),
    Column("adders", lambda row: row.adders),
    _estimated("est. LUTs", lambda row: row.est_luts),
    _estimated("est. FFs", lambda row: row.est_ffs),
    Column("adders/weight", lambda row: row.adders_per_weight),
    Column("columns used→shared (pre-adders)", _compression, html=Show.NEVER),
    Column("CSD baseline", lambda row: row.csd_baseline_adders, markdown=Show.NEVER),
    Column("coding SQNR dB", lambda row: row.weight_sqnr_db),
    _estimated_sqnr(),
    Column("depth", lambda row: row.depth),
    Column("latency", lambda row: row.latency),
    Column("in", lambda row: row.in_fmt),
    Column("out", lambda row: row.out_fmt),
    Column("max bits", lambda row: row.max_bits),
    Column("adder bits (≈LUTs)", lambda row: row.adder_bits, markdown=Show.NEVER),
    Column(
        "pre-adders",
        lambda row: row.pre_adders,
        markdown=Show.NEVER,
        html=Show.SAYS,
        says=lambda row: bool(row.pre_adders),
    ),
    Column(
        "kept columns",
        lambda row: row.kept_columns,
        markdown=Show.NEVER,
        html=Show.SAYS,
        says=lambda row: row.kept_columns not in (None, row.shape[1]),
    ),
    Column(
        "line buffer bits",
        lambda row: row.line_buffer_bits,
        markdown=Show.NEVER,
        html=Show.SAYS,
        says=lambda row: bool(row.line_buffer_bits),
    ),
    # a layer of an imported quantized model: its integers kept exactly, or why not
    Column(
        "imported integers",
        _imported,
        markdown=Show.SAYS,
        html=Show.SAYS,
        says=lambda row: row.imported_exact is not None,
    ),
)

# ---------------------------------------------------------------------------- accuracy


#: The accuracy table (one row: report.json's ``accuracy``).
ACCURACY_COLUMNS: tuple[Column[Accuracy], ...] = (
    Column("dataset", lambda a: a.dataset, text=True),
    Column("samples", lambda a: a.samples),
    Column("float", lambda a: a.float_accuracy),
    Column("golden (integer)", lambda a: a.golden),
    Column("output SQNR dB", lambda a: a.sqnr_db),
    Column("argmax agreement", lambda a: a.argmax_agreement),
    # an imported quantized model: outputs equal to its own arithmetic (1.0: bit-exact)
    Column(
        "identical to the model",
        lambda a: a.reference_identical,
        markdown=Show.SAYS,
        html=Show.SAYS,
        says=lambda a: a.reference_identical is not None,
    ),
)

# --------------------------------------------------------------------------- resources


def _resource(
    name: str,
    header: str | None = None,
    html: Show = Show.SAYS,
    says: Callable[[Resources], bool] | None = None,
) -> Column[Resources]:
    """A figure of report.json's ``resources``, shown when the report has it (report.html
    shows utilization and fit always, ``–`` when unknown)."""

    def value(r: Resources) -> Any:
        return getattr(r, name)

    return Column(
        header or name,
        value,
        markdown=Show.SAYS,
        html=html,
        says=says or (lambda r: value(r) is not None),
        markdown_header=name if header else None,
    )


#: The resources table (one row: report.json's ``resources``); ``fmax_mhz`` is in every
#: computed one (``null`` for an estimate).
RESOURCE_COLUMNS: tuple[Column[Resources], ...] = (
    *(_resource(k) for k in ("luts", "ffs", "carry", "bram", "dsp")),
    _resource("fmax_mhz", says=lambda r: r.skipped is None),
    _resource("device_luts"),
    _resource("utilization_pct", "utilization %", html=Show.ALWAYS),
    _resource("fits", html=Show.ALWAYS),
)


def estimate_totals(totals: Totals) -> list[tuple[str, Any]]:
    """The totals table's cost-model columns (header, value): none when the report has no
    estimate (a code-only report, or one written before the model)."""
    if totals.est_luts is None:
        return []
    fam = f" ({totals.est_family})" if totals.est_family else ""
    if totals.est_family and totals.est_error:
        fam = f" ({totals.est_family}, {totals.est_error})"
    return [(f"est. LUTs{fam}", totals.est_luts), (f"est. FFs{fam}", totals.est_ffs)]


def _fewer(base: Any, ours: Any) -> str | None:
    if not isinstance(base, int | float) or not isinstance(ours, int | float) or not ours:
        return None
    return f"{base / ours:.2f}× fewer"


def csd_totals(totals: Totals) -> list[tuple[str, Any]]:
    """The totals table's CSD comparisons (header, value): first nnlcc's best CSD design at
    the same error (``csd_best_*``: CSD with shared subexpressions at the fewest weight bits
    reaching each layer's SQNR), in adders and, when estimated, LUTs; then plain
    ``csd_weight_bits``-bit CSD without sharing, the field's customary baseline."""
    cols: list[tuple[str, Any]] = []
    if totals.csd_best_adders is not None:
        cols += [
            ("best CSD, same SQNR", totals.csd_best_adders),
            ("vs CSD", _fewer(totals.csd_best_adders, totals.adders)),
        ]
        if totals.csd_best_luts is not None and totals.est_luts is not None:
            cols.append(("vs CSD (est. LUTs)", _fewer(totals.csd_best_luts, totals.est_luts)))
    bits = totals.csd_weight_bits
    cols += [
        (f"plain CSD {bits}-bit", totals.csd_adders),
        (f"vs plain CSD {bits}-bit", _fewer(totals.csd_adders, totals.adders)),
    ]
    return cols


def resource_notes(res: Resources) -> list[str]:
    """Sentences under the resources table: where the cost model's figures come from (its
    calibration and measured error), the model's figures when a tool's replace them, and the
    fit verdict with its advice when the design does not fit."""
    notes: list[str] = []
    model = res.model_estimate
    if model is not None:
        notes.append(
            f"{model.tool or 'cost model'}: {model.luts:,} LUTs,"
            f" {model.ffs:,} FFs (the estimate before the tool ran)."
        )
    calibration, error = (
        (model.calibration, model.model_error)
        if model is not None
        else (res.calibration, res.model_error)
    )
    if calibration:
        notes.append(
            f"The cost model is calibrated against yosys and nextpnr in {calibration};"
            f" measured error: {error}."
        )
    if res.line_buffer_ffs:
        notes.append(f"Flip-flops include {res.line_buffer_ffs:,} line-buffer bits (registers).")
    if res.verdict is not None:
        notes.append(f"Fit verdict (cost model, before any tool): {res.verdict.message}.")
    if res.fit_advice is not None:
        notes.append(f"Does not fit: {res.fit_advice.message}")
    return notes


def accuracy_drop_lines(r: Report) -> tuple[str, list[str], list[list[Any]]]:
    """``--accuracy-drop``'s section: a sentence, and the per-layer targets as a table
    (headers, rows); empty when the report has none."""
    d = r.accuracy_drop
    if d is None:
        return "", [], []
    given = " (the default: --accuracy-drop not given)" if d.default_drop else ""
    text = (
        f"Allowed drop {d.drop_points} points{given}: float accuracy {d.float_accuracy}, floor"
        f" {d.floor}, golden {d.golden} at {d.est_luts:,} estimated LUTs"
        f" ({d.family}); {len(d.points)} points tried (greedy, one layer one step at a"
        " time)"
    )
    if d.chosen_on is not None:
        text += (
            f", chosen on the {d.chosen_on}"
            if d.chosen_on.startswith("validation")
            else (f", chosen on {d.chosen_on}")
        )
    if d.test_golden is not None:
        text += f". On the test set: float {d.test_float}, golden {d.test_golden}."
        if d.test_float is not None and d.float_accuracy - d.test_float > 0.01:
            text += (
                f" The float network scores {d.float_accuracy} on the validation data against"
                f" {d.test_float} on the test set: it has fit that data (taken from training),"
                " so the choice may give up more than the allowed drop on unseen data; a --val"
                " file the model was not trained on makes it trustworthy."
            )
    elif d.optimistic:
        text += (
            ". Chosen and measured on the same test samples, so this accuracy is optimistic"
            " (no separate validation data: give x_train and y_train in --data, or --val)."
        )
    else:
        text += "."
    return text, ["layer", "SQNR target dB"], [[k, v] for k, v in d.targets.items()]
