"""The family table: every family's facts are where the rest of nnlcc reads them, its measured
error is the calibration run's, and an unmeasured figure says so instead of borrowing one."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest

from nnlcc.errors import BadInputError, PassOptionError
from nnlcc.ir.family import (
    ECP5,
    FAMILIES,
    ICE40,
    XC7,
    AdderDelay,
    ErrorFigure,
    Family,
    NotMeasured,
    RouteDelay,
    family_option,
    get_family,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("family", FAMILIES.values(), ids=str)
def test_error_figures_are_the_calibration_runs(family: Family) -> None:
    """The stored error is what the run named by ``calibration`` measured out of sample
    (leave-one-out for LUTs, unfitted FFs) against the tool the family names, and the
    coefficients are the ones it fitted."""
    run = json.loads((ROOT / family.cost.calibration).with_suffix(".json").read_text())
    luts, ffs = family.cost.luts_error, family.cost.ffs_error
    if isinstance(luts, NotMeasured) or isinstance(ffs, NotMeasured):  # really not measured
        assert family.name not in run["stats"]
        return
    stats = run["stats"][family.name]
    assert stats["against"] == family.cost.calibrated_against
    assert (luts.mean_pct, luts.max_pct) == (
        stats["loo_luts"]["mean_pct"],
        stats["loo_luts"]["max_pct"],
    )
    assert f"{stats['loo_luts']['n']} designs" in luts.against
    assert (ffs.mean_pct, ffs.max_pct) == (stats["ffs"]["mean_pct"], stats["ffs"]["max_pct"])
    for name, value in stats["coefficients"].items():
        assert getattr(family.cost, name) == pytest.approx(value, abs=5e-4), name


def test_error_text_is_one_line_naming_what_it_was_measured_against() -> None:
    assert ECP5.cost.error == (
        "LUTs vs nextpnr-ecp5 packed, leave-one-out over 23 designs: mean 2.7 %, max 10.9 %;"
        " FFs vs nextpnr-ecp5, 23 designs, not fitted: mean 3.1 %, max 12.2 %"
    )
    assert XC7.cost.error.startswith("LUTs vs yosys synth_xilinx")
    assert ECP5.cost.margin == "±11 % LUTs, ±12 % FFs"
    unmeasured = NotMeasured("no run yet")
    text = ErrorFigure("LUTs", "yosys", 1.0, 2.0)
    cost = ECP5.cost.__class__(**{**vars(ECP5.cost), "luts_error": text, "ffs_error": unmeasured})
    assert cost.error == "LUTs vs yosys: mean 1.0 %, max 2.0 %; FFs: not measured (no run yet)"


def test_only_measured_delay_models_are_numbers() -> None:
    for family in (ECP5, ICE40):
        assert isinstance(family.adder_delay, AdderDelay)
        assert isinstance(family.route_delay, RouteDelay)
        assert (
            family.adder_delay.fitted_to.startswith("benchmarks/results/")
            and family.name in family.adder_delay.fitted_to
        )
    assert isinstance(XC7.adder_delay, NotMeasured) and XC7.adder_delay.reason
    assert isinstance(XC7.route_delay, NotMeasured) and XC7.route_delay.reason


def test_families_are_singletons_found_by_name() -> None:
    assert [f.name for f in FAMILIES.values()] == ["ecp5", "xc7", "ice40"]
    for name, family in FAMILIES.items():
        assert get_family(name) is family and get_family(f" {name.upper()} ") is family
        assert str(family) == name and name in repr(family)
    assert {ECP5: 1, XC7: 2}[ECP5] == 1  # hashable: a dict key per family
    for family in FAMILIES.values():  # copies (a deep-copied graph's settings) stay the object
        assert copy.copy(family) is family and copy.deepcopy(family) is family
        assert pickle.loads(pickle.dumps(family)) is family
        assert copy.deepcopy({"f": family})["f"] is family
    with pytest.raises(
        BadInputError, match=r"^unknown family 'stratix' \(known: ecp5, xc7, ice40\)$"
    ):
        get_family("stratix")


def test_pass_options_name_a_family_or_leave_it_to_the_board() -> None:
    assert family_option("auto", "") is None
    assert family_option("auto", "ice40") is ICE40
    with pytest.raises(PassOptionError, match=r"^circulant: unknown family 'gowin'"):
        family_option("circulant", "gowin")


def test_lut_kind_and_block_ram() -> None:
    assert (ECP5.lut_kind, XC7.lut_kind, ICE40.lut_kind) == ("LUT4", "LUT6", "LUT4")
    assert XC7.bram.blocks(512, 72) == 1 and XC7.bram.blocks(513, 72) == 2
    assert ICE40.bram.blocks(256, 17) == 2
    assert (ECP5.open_pnr, XC7.open_pnr, ICE40.open_pnr) == (True, False, True)
    assert XC7.toolchain.vendor_tree == "vivado" and ECP5.toolchain.vendor_tree is None


@pytest.mark.parametrize("family", [ECP5, ICE40], ids=str)
def test_delay_models_are_the_fit_runs(family: Family) -> None:
    """The stored adder and route delay models are what benchmarks/delay_fit.py fitted (its
    JSON beside the report ``fitted_to`` names), and say how well they matched the runs."""
    adder, route = family.adder_delay, family.route_delay
    assert isinstance(adder, AdderDelay) and isinstance(route, RouteDelay)
    report = adder.fitted_to.split(" ")[0]
    assert route.fitted_to.split(" ")[0] == report
    fit = json.loads((ROOT / report).with_suffix(".json").read_text())[family.name]
    assert (adder.fixed, adder.per_bit, adder.overhead) == (
        fit["adder"]["fixed"],
        fit["adder"]["per_bit"],
        fit["adder"]["overhead"],
    )
    assert (route.base, route.per_doubling, route.saturation) == (
        fit["route"]["base"],
        fit["route"]["per_doubling"],
        fit["route"]["saturation"],
    )
    worst = max(abs(p["error_pct"]) for p in fit["paths"])
    assert f"{worst:g} %" in adder.fitted_to  # the worst error is quoted, not hidden
