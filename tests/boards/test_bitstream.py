"""End-to-end board builds with the YoWASP tools (slow: each runs yosys, most run nextpnr;
the too-big check stops before any tool).

The tiny network of conftest.py fits the iCE40UP5K with room to spare, so CI builds a real
iCEBreaker bitstream in about 15 s (after YoWASP's one-time ≈30 s compile per tool).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nnlcc.boards import DesignTooLargeError, board_build
from nnlcc.ir.lowered import LoweredNetwork

pytestmark = pytest.mark.slow


def _check_common(res: dict, out: Path) -> None:
    for f in res["files"]:
        assert (out / f).is_file(), f
    assert json.loads((out / "board" / "resources.json").read_text()) == res
    assert res["luts"] > 0 and res["ffs"] > 0
    assert res["device_luts"] > 0 and res["fits"] is True
    assert res["utilization_pct"] == pytest.approx(100 * res["luts"] / res["device_luts"], abs=0.01)


def test_icebreaker_bitstream(tiny_net: LoweredNetwork, tmp_path: Path) -> None:
    x = np.full((3, tiny_net.n_inputs), tiny_net.input_fmt.hi, dtype=np.int64)
    msgs: list[str] = []
    res = board_build("icebreaker", tiny_net, tmp_path, x_int=x, run_pnr=True, progress=msgs.append)
    _check_common(res, tmp_path)
    assert res["estimate"] is False and res["tool"] == "nextpnr-ice40"
    bit = tmp_path / res["bitstream"]
    assert bit.suffix == ".bin" and bit.stat().st_size > 100_000  # a full UP5K image is ~104 kB
    assert res["fmax_mhz"] > 12.0 and res["timing_met"] is True
    assert res["utilization"]["ICESTORM_LC"]["used"] == res["luts"]
    assert res["selftest"]["vectors"] == 3  # the given data, not random vectors
    assert res["network_estimate"]["luts"] <= res["luts"]  # the self-test adds ROMs + checker
    assert set(res["timings_s"]) >= {"synth", "pnr", "pack", "estimate"}
    assert any("nextpnr" in m for m in msgs)
    # the extracted tree is the one a user with native tools can rebuild from
    assert (tmp_path / "board/selftest/build_nnlcc_selftest.sh").is_file()
    assert "set_io led_g_0" in (tmp_path / "board/selftest/nnlcc_selftest.pcf").read_text()


def test_ulx3s_bitstream(tiny_net: LoweredNetwork, tmp_path: Path) -> None:
    res = board_build("ulx3s-25f", tiny_net, tmp_path, run_pnr=True)
    _check_common(res, tmp_path)
    assert res["estimate"] is False and res["tool"] == "nextpnr-ecp5"
    assert res["device"] == "LFE5U-25F"
    assert (tmp_path / res["bitstream"]).stat().st_size > 10_000
    assert res["fmax_mhz"] > 25.0
    assert res["utilization"]["TRELLIS_COMB"]["used"] == res["luts"]
    assert res["selftest"]["vectors"] == 64


def test_arty_vivado_tree_and_estimate(tiny_net: LoweredNetwork, tmp_path: Path) -> None:
    res = board_build("arty-a7", tiny_net, tmp_path, run_pnr=True)
    _check_common(res, tmp_path)
    assert res["estimate"] is True and "estimate" in res["tool"]
    assert res["carry"] > 0 and res["fmax_mhz"] is None
    assert "no open place-and-route" in res["note"]
    vdir = tmp_path / "board" / "vivado"
    for name in ("build.sh", "build_nnlcc_selftest.sh", "nnlcc_selftest.tcl",
                 "nnlcc_selftest.xdc", "nnlcc_selftest.v"):  # fmt: skip
        assert (vdir / name).is_file(), name
    tcl = (vdir / "nnlcc_selftest.tcl").read_text()
    assert "-part xc7a35ticsg324-1L" in tcl and "write_bitstream" in tcl
    assert "create_clock" in (vdir / "nnlcc_selftest.xdc").read_text()


def test_estimate_only_ice40(tiny_net: LoweredNetwork, tmp_path: Path) -> None:
    res = board_build("icebreaker", tiny_net, tmp_path, synth=True)  # --synth: yosys runs
    _check_common(res, tmp_path)
    assert res["estimate"] is True and res["fmax_mhz"] is None
    assert res["tool"] == "yosys synth_ice40 (estimate)" and res["carry"] > 0
    assert (tmp_path / "board" / "network_synth.log").is_file()
    # the cost model (calibrated against yosys on iCE40) agrees within its measured error
    model = res["model_estimate"]
    assert model["luts"] == pytest.approx(res["luts"], rel=0.15)
    assert not (tmp_path / "board" / "selftest").exists()


def test_too_large_for_icebreaker(
    make_tiny_network: Callable[..., LoweredNetwork], tmp_path: Path
) -> None:
    net = make_tiny_network((16, 32, 8))  # ~540 adders: ~6.6k LUT4 and ~8k FFs, over the UP5K
    with pytest.raises(DesignTooLargeError) as e:
        board_build("icebreaker", net, tmp_path, run_pnr=True)
    msg = str(e.value)
    assert msg.startswith("design does not fit iCE40UP5K (icebreaker): ")
    assert "LUT4s of 5,280" in msg and "\n" not in msg
    assert "[cost model]" in msg and not (tmp_path / "board" / "selftest").exists()


def test_digits_mlp_fits_ulx3s(tmp_path: Path) -> None:
    """The shipped digits MLP, with the default pipeline, fits the ULX3S-85F (yosys estimate,
    as ``--synth`` makes it; benchmarks/resources.py places and routes it)."""
    from nnlcc.driver import load_data, load_model, resolve_pipeline, run_passes
    from nnlcc.ir.lower import lower_network

    model = Path(__file__).resolve().parents[2] / "examples" / "digits_mlp.onnx"
    graph = load_model(model)
    run_passes(graph, resolve_pipeline(None), load_data(graph, model, None, 0), board="ulx3s")
    res = board_build("ulx3s", lower_network(graph), tmp_path, synth=True)
    assert res["estimate"] is True and res["fits"] is True
    assert 1000 < res["luts"] < res["device_luts"] // 2
    assert res["model_estimate"]["luts"] < res["device_luts"] // 2  # the default's figure


def test_cnn_ulx3s_bitstream(tmp_path: Path) -> None:
    """A small CNN (conv, max pool, residual block with join FIFOs, flatten, dense) streamed
    from a ROM of images: a real ECP5 bitstream of its self-test, figures parsed as for MLPs."""
    from conftest import small_stream_cnn

    net = small_stream_cnn()
    res = board_build("ulx3s-25f", net, tmp_path, run_pnr=True)
    _check_common(res, tmp_path)
    assert res["estimate"] is False and res["tool"] == "nextpnr-ecp5"
    assert (tmp_path / res["bitstream"]).stat().st_size > 10_000
    assert res["fmax_mhz"] > 25.0 and res["timing_met"] is True
    assert res["selftest"]["images"] == 16 and res["selftest"]["outputs"] == 16
    assert "16 images (576 pixels)" in res["design"]
    assert res["utilization"]["TRELLIS_COMB"]["used"] == res["luts"]


def test_cnn_line_buffers_in_block_ram_bit_exact(tmp_path: Path) -> None:
    """A CNN whose line buffers exceed the memory threshold: through yosys and nextpnr with
    them in DP16KD (the network alone has exactly those block RAMs; the self-test adds its
    ROMs), and its Verilog, memories and FIFO assertions included, bit-exact in Verilator."""
    from conftest import wide_line_cnn

    from nnlcc.boards.stream_selftest import selftest_inputs, simulate_stream_selftest
    from nnlcc.hdl.stream import StreamPlan
    from nnlcc.sim import available_simulators
    from nnlcc.sim.verify import verify_network

    net = wide_line_cnn()
    rams = StreamPlan(net).line_rams()
    assert rams == {"c2": [(38, 128), (38, 128)]}  # two 4,864-bit row gaps
    res = board_build("ulx3s", net, tmp_path, run_pnr=True)
    _check_common(res, tmp_path)
    assert res["network_estimate"]["bram"] == 8  # 2 runs x ceil(128 / 36) DP16KD
    assert res["model_estimate"]["bram"] == 8 and res["bram"] >= 8
    assert res["utilization"]["DP16KD"]["used"] == res["bram"]
    x = selftest_inputs(net)[:3]
    assert simulate_stream_selftest(net, x).passed
    if "verilator" in available_simulators():
        sim = verify_network(net, x, tmp_path / "sim")
        assert sim.bit_exact and sim.vectors == 3
