"""The schema of report.json, in one place: :class:`Report` and the records it holds.

The compile builds a :class:`Report` (:func:`nnlcc.driver.compile_model`), writes it as
report.json (:func:`nnlcc.report.files.write_reports`), and report.md and report.html are
rendered from the :class:`Report` read back from that file, so ``nnlcc report`` reproduces
them exactly.  Each record's fields are its JSON keys in order (:mod:`nnlcc.report.record`:
``key`` renames, ``OMIT`` fields are absent when None, the others are ``null``); a record read
from a file written before a field existed gets the field's default.

============================  =====================================  ==========================
key                           record                                 made by
============================  =====================================  ==========================
``layers``                    :class:`~nnlcc.report.layer_row.LayerRow`  :func:`nnlcc.report.rows.layer_rows`
``totals``                    :class:`Totals`                        :func:`nnlcc.report.rows.layer_totals`
``accuracy_drop``             :class:`AccuracyDrop`                  :func:`nnlcc.sweep.choose_targets`
``accuracy``                  :class:`Accuracy`                      :mod:`nnlcc.report.accuracy`
``sweep``                     :class:`SweepPoint` s                  :func:`nnlcc.sweep.run_sweep`
``verification``              :class:`Verification`                  the driver (cocotb's summary)
``resources``                 :class:`Resources`                     :func:`nnlcc.boards.board_build`
============================  =====================================  ==========================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from nnlcc.report.layer_row import LayerRow
from nnlcc.report.record import OMIT, Record, key, omit

__all__ = [
    "Accuracy",
    "AccuracyDrop",
    "BiggestLayer",
    "DropPoint",
    "Estimate",
    "FitAdvice",
    "FitLever",
    "FitVerdict",
    "PartNeed",
    "Report",
    "Resources",
    "SelfTestFacts",
    "SweepPoint",
    "Totals",
    "VendorTree",
    "Verification",
]


@dataclass
class Totals(Record):
    """The network's totals over its layer rows (:func:`nnlcc.report.rows.layer_totals`)."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("adders", "weights", "adders_per_weight", "csd_adders")

    adders: int
    const_adders: int | None  # bias/rounding adders
    pre_adders: int | None  # the share pass's pre-adders
    weights: int
    adders_per_weight: float
    csd_adders: int  # plain CSD at csd_weight_bits, no sharing: the field's baseline
    csd_weight_bits: int = 8
    # nnlcc's best CSD design of every matrix layer at the layer's own error (None: a layer
    # has none, or the report was written before it existed)
    csd_best_adders: int | None = None
    csd_best_luts: int | None = None
    adder_bits: int | None = None  # sum of adder widths (~ LUTs)
    est_family: str | None = None  # the family the cost model priced on
    est_luts: int | None = None
    est_ffs: int | None = None
    # the cost model's largest out-of-sample error on the family (what the figures may be off)
    est_error: str | None = field(default=None, metadata=OMIT)


@dataclass
class Accuracy(Record):
    """Float network against the golden integer model (or, too big to lower, against the
    coded matrices: ``skipped`` says so) on the test inputs."""

    dataset: str
    samples: int
    sqnr_db: float | None  # output SQNR, golden (or coded) vs float
    argmax_agreement: float | None
    float_accuracy: float | None = field(default=None, metadata=key("float"))  # needs labels
    golden: float | None = None  # the golden model's accuracy (needs labels)
    skipped: str | None = field(default=None, metadata=OMIT)
    # an imported quantized model: the share of outputs equal to the model's own (float32)
    # arithmetic, 1.0 wherever it is integer-exact
    reference_identical: float | None = field(default=None, metadata=OMIT)


@dataclass
class Verification(Record):
    """The cocotb check of the Verilog against the golden model (``skipped``: not run)."""

    simulator: str | None
    vectors: int
    bit_exact: bool | None
    test_set_vectors: int | None = field(default=None, metadata=OMIT)
    random_vectors: int | None = field(default=None, metadata=OMIT)
    # what a streaming top's testbench measures (StreamStrategy.summary_facts)
    pixels: int | None = field(default=None, metadata=OMIT)
    clocks_to_last_output: int | None = field(default=None, metadata=OMIT)
    # what a sequence top's testbench measures (SequenceStrategy.summary_facts)
    steps: int | None = field(default=None, metadata=OMIT)
    step_clocks_measured: int | None = field(default=None, metadata=OMIT)
    sequence_latency: int | None = field(default=None, metadata=OMIT)
    skipped: str | None = field(default=None, metadata=OMIT)


@dataclass
class DropPoint(Record):
    """One point ``--accuracy-drop`` tried: per-layer targets, est. LUTs, golden accuracy."""

    targets: dict[str, float | str]  # "exact": an imported model's integers kept
    est_luts: int
    golden: float


@dataclass
class AccuracyDrop(Record):
    """``--accuracy-drop``'s search (:func:`nnlcc.sweep.choose_targets`): the allowed drop in
    accuracy points, the float accuracy and its floor, the chosen point and every point."""

    drop_points: float
    float_accuracy: float = field(metadata=key("float"))
    floor: float
    golden: float
    est_luts: int
    family: str
    targets: dict[str, float | str]  # "exact": an imported model's integers kept
    points: list[DropPoint]
    # what the choice was made on (float, floor, golden and the points are on it); with
    # separate validation data, the test set's float and golden accuracy of the choice
    chosen_on: str | None = field(default=None, metadata=OMIT)
    optimistic: bool | None = field(default=None, metadata=OMIT)
    default_drop: bool | None = field(default=None, metadata=OMIT)  # not --accuracy-drop's
    test_float: float | None = field(default=None, metadata=OMIT)
    test_golden: float | None = field(default=None, metadata=OMIT)


@dataclass
class SweepPoint(Record):
    """One setting of ``--sweep`` (or the compiled one, ``chosen``) on the trade-off."""

    passes: str
    setting: str | None  # the pipeline with its non-default options only
    pass_name: str | None = field(metadata=key("pass"))  # the matrix pass(es)
    adders: int
    adders_per_weight: float
    weight_sqnr_db: float | None
    output_sqnr_db: float | None = None
    golden: float | None = None
    chosen: bool | None = field(default=None, metadata=OMIT)


# ---------------------------------------------------------------------------- resources


@dataclass
class Estimate(Record):
    """Resource counts and how they were made: the cost model's (its calibration and measured
    error) or a tool's (``tool``)."""

    tool: str | None = field(default=None, metadata=OMIT)
    calibration: str | None = field(default=None, metadata=OMIT)
    model_error: str | None = field(default=None, metadata=OMIT)
    luts: int | None = field(default=None, metadata=OMIT)
    ffs: int | None = field(default=None, metadata=OMIT)
    carry: int | None = field(default=None, metadata=OMIT)
    bram: int | None = field(default=None, metadata=OMIT)
    dsp: int | None = field(default=None, metadata=OMIT)
    line_buffer_ffs: int | None = field(default=None, metadata=OMIT)
    line_buffer_ram_bits: int | None = field(default=None, metadata=OMIT)


@dataclass
class BiggestLayer(Record):
    name: str
    luts: int
    ffs: int


@dataclass
class FitLever(Record):
    lever: str
    effect: str


@dataclass
class FitAdvice(Record):
    """Why the design does not fit, and the levers (:func:`nnlcc.boards.fit.fit_advice`)."""

    message: str
    source: str
    biggest_layers: list[BiggestLayer]
    levers: list[FitLever]


@dataclass
class FitVerdict(Record):
    """The cost model's verdict on the board (:func:`nnlcc.boards.headroom.fit_verdict`):
    network and self-test wrapper, the measured error as a margin, "fits", "tight" or "does
    not fit", the biggest layers and (unless it fits) the levers."""

    verdict: str
    message: str
    luts: int
    ffs: int
    bram: int
    wrapper_luts: int | None
    wrapper_ffs: int | None
    wrapper_bram: int | None
    luts_margin_pct: float | None
    ffs_margin_pct: float | None
    biggest_layers: list[BiggestLayer]
    levers: list[FitLever]


@dataclass
class SelfTestFacts(Record):
    """The on-board self-test of a bitstream: its inputs, latency, cycles and LEDs."""

    images: int | None = field(default=None, metadata=OMIT)
    outputs: int | None = field(default=None, metadata=OMIT)
    vectors: int | None = field(default=None, metadata=OMIT)
    latency: int | None = None
    cycles: int | None = None
    leds: dict[str, str] = field(default_factory=dict)


@dataclass
class VendorTree(Record):
    """A vendor build tree nnlcc wrote (Vivado's): where it is and how to run it."""

    tree: str
    script: str
    note: str


@dataclass
class PartNeed(Record):
    """A network too big to lower on one family (:func:`nnlcc.boards.code_fit.code_fit`):
    its estimated resources and how many of the family's largest part it would take."""

    luts: int
    ffs: int
    bram: int
    largest_part: str
    parts_needed: int
    part_source: str


def _not_placed(r: Resources) -> bool:
    return r.estimate is not False  # timing_met is written (null: unknown) after placement


@dataclass
class Resources(Record):
    """The board figures (:func:`nnlcc.boards.board_build`): the cost model's estimate, a
    yosys estimate (``--synth``) or place-and-route (``--build``), the device's capacity, the
    fit verdict, and the files written; ``skipped`` alone when not computed."""

    skipped: str | None = field(default=None, metadata=OMIT)
    board: str | None = field(default=None, metadata=OMIT)
    device: str | None = field(default=None, metadata=OMIT)
    family: str | None = field(default=None, metadata=OMIT)
    clock_mhz: float | None = field(default=None, metadata=OMIT)
    pnr_target_mhz: float | None = field(default=None, metadata=OMIT)  # the clock nextpnr met
    estimate: bool | None = field(default=None, metadata=OMIT)  # False: placed and routed
    tool: str | None = field(default=None, metadata=OMIT)
    calibration: str | None = field(default=None, metadata=OMIT)
    model_error: str | None = field(default=None, metadata=OMIT)
    design: str | None = field(default=None, metadata=OMIT)  # what was synthesized
    fmax_mhz: float | None = None
    luts: int | None = field(default=None, metadata=OMIT)
    ffs: int | None = field(default=None, metadata=OMIT)
    carry: int | None = field(default=None, metadata=OMIT)
    bram: int | None = field(default=None, metadata=OMIT)
    dsp: int | None = field(default=None, metadata=OMIT)
    line_buffer_ffs: int | None = field(default=None, metadata=OMIT)
    line_buffer_ram_bits: int | None = field(default=None, metadata=OMIT)
    timing_met: bool | None = field(default=None, metadata=omit(_not_placed))
    utilization: dict[str, dict[str, int]] | None = field(default=None, metadata=OMIT)
    bitstream: str | None = field(default=None, metadata=OMIT)
    selftest: SelfTestFacts | None = field(default=None, metadata=OMIT)
    network_estimate: Estimate | None = field(default=None, metadata=OMIT)
    model_estimate: Estimate | None = field(default=None, metadata=OMIT)
    device_luts: int | None = field(default=None, metadata=OMIT)
    device_ffs: int | None = field(default=None, metadata=OMIT)
    fits: bool | None = field(default=None, metadata=OMIT)
    utilization_pct: float | None = field(default=None, metadata=OMIT)
    fit_advice: FitAdvice | None = field(default=None, metadata=OMIT)
    verdict: FitVerdict | None = field(default=None, metadata=OMIT)
    vivado: VendorTree | None = field(default=None, metadata=OMIT)
    timings_s: dict[str, float] | None = field(default=None, metadata=OMIT)
    note: str | None = field(default=None, metadata=OMIT)
    files: list[str] | None = field(default=None, metadata=OMIT)
    # --report-only on a network too big to lower: the verdict per family, from the codes
    families: dict[str, PartNeed] | None = field(default=None, metadata=OMIT)
    sampled_layers: list[str] | None = field(default=None, metadata=OMIT)
    scaled_adders_pct: float | None = field(default=None, metadata=OMIT)
    message: str | None = field(default=None, metadata=OMIT)

    def to_json(self) -> dict[str, Any]:
        if self.skipped is not None:
            return {"skipped": self.skipped}
        return super().to_json()


# ------------------------------------------------------------------------------- report


@dataclass
class Report(Record):
    """report.json.  ``outdir`` is not in the file: :func:`~nnlcc.driver.compile_model` sets
    it on the report it returns (and ``nnlcc compile --json`` prints it)."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("model", "board", "passes", "layers", "totals")

    nnlcc_version: str | None
    model: str
    model_name: str | None
    board: str
    passes: str  # the completed pipeline
    input_fmt: str | None
    output_fmt: str | None
    latency_cycles: int | None  # None: not the end-to-end latency, or not measured
    layers: list[LayerRow]
    totals: Totals
    throughput: str | None = field(default=None, metadata=OMIT)  # a streaming top's rate
    # a recurrent top: time steps per second at the placed Fmax, else at the board's clock
    steps_per_second: float | None = field(default=None, metadata=OMIT)
    steps_per_second_at: str | None = field(default=None, metadata=OMIT)
    accuracy_drop: AccuracyDrop | None = field(default=None, metadata=OMIT)
    config: str | None = field(default=None, metadata=OMIT)  # the nnlcc.toml used
    # the per-layer settings applied: layer -> {"matrix": pass, pass: {option: value}}
    layer_config: dict[str, dict[str, Any]] | None = field(default=None, metadata=OMIT)
    accuracy: Accuracy | None = field(default=None, metadata=OMIT)
    sweep: list[SweepPoint] | None = field(default=None, metadata=OMIT)
    verification: Verification | None = field(default=None, metadata=OMIT)
    resources: Resources | None = field(default=None, metadata=OMIT)
    seconds: float | None = field(default=None, metadata=OMIT)
    # values strict JSON cannot hold, written as null (nnlcc.report.files.strict)
    json_notes: list[str] | None = field(default=None, metadata=OMIT)
    outdir: str | None = field(default=None, metadata=OMIT)
