"""report.md / report.html rendering from report.json, and re-rendering a directory."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from nnlcc.errors import BadInputError
from nnlcc.report import read_report, render_markdown, rerender, write_reports
from nnlcc.report.html import render_html, resource_bars


def layer(name: str, rows: int, cols: int, adders: int) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "dense",
        "shape": [rows, cols],
        "pass": "lcc",
        "adders": adders,
        "const_adders": rows,
        "adders_per_weight": round(adders / (rows * cols), 4),
        "csd_baseline_adders": int(adders * 1.5),
        "depth": 9,
        "latency": 11,
        "in_fmt": "u8.4",
        "out_fmt": "s8.2",
        "max_bits": 25,
        "adder_bits": adders * 18,
        "weight_sqnr_db": 45.1,
    }


def sample_report(**extra: Any) -> dict[str, Any]:
    """A report.json as the driver writes it (test data for the renderers)."""
    layers = [layer("fc1", 16, 64, 1000), layer("fc<2>", 10, 16, 200)]
    r: dict[str, Any] = {
        "nnlcc_version": "0.1.0",
        "model": "examples/digits_mlp.onnx",
        "model_name": "digits_mlp",
        "board": "arty-a7",
        "passes": "quantize,lcc{sqnr_db=45.0}",
        "input_fmt": "u8.7",
        "output_fmt": "s8.2",
        "latency_cycles": 26,
        "layers": layers,
        "totals": {
            "adders": 1200,
            "const_adders": 26,
            "weights": 1184,
            "adders_per_weight": 1.0135,
            "csd_adders": 1783,
            "csd_weight_bits": 8,
            "adder_bits": 21600,
        },
        "accuracy": {
            "dataset": "digits.npz",
            "samples": 450,
            "sqnr_db": 34.9,
            "argmax_agreement": 0.99,
            "float": 0.9667,
            "golden": 0.9644,
        },
        "verification": {"simulator": "verilator", "vectors": 1450, "bit_exact": True},
        "resources": {"skipped": "report only"},
    }
    r.update(extra)
    return r


RESOURCES = {
    "device": "xc7a35ticsg324-1L",
    "tool": "yosys synth_xilinx (estimate)",
    "estimate": True,
    "luts": 22336,
    "ffs": 29749,
    "carry": 6019,
    "bram": 0,
    "dsp": 0,
    "device_luts": 20800,
    "device_ffs": 41600,
    "utilization_pct": 107.38,
    "fits": False,
}
SWEEP = [
    {"passes": "quantize,lcc{sqnr_db=45}", "pass": "lcc", "adders": 1200,
     "adders_per_weight": 1.01, "weight_sqnr_db": 45.0, "output_sqnr_db": 34.9,
     "golden": 0.9644, "chosen": True},
    {"passes": "quantize,lcc{sqnr_db=35}", "pass": "lcc", "adders": 800,
     "adders_per_weight": 0.68, "weight_sqnr_db": 35.0, "output_sqnr_db": 27.0, "golden": 0.96},
    {"passes": "quantize,csd{weight_bits=8}", "pass": "csd", "adders": 1500,
     "adders_per_weight": 1.27, "weight_sqnr_db": 41.0, "output_sqnr_db": 31.0, "golden": 0.96},
]  # fmt: skip


def images(html: str) -> dict[str, bytes]:
    found = re.findall(
        r'<figure id="fig-(\w+)"><img alt="[^"]*" src="data:image/png;base64,([^"]+)"', html
    )
    return {name: base64.b64decode(data) for name, data in found}


def test_html_is_self_contained_with_a_row_per_layer() -> None:
    html = render_html(sample_report())
    assert html.count('<tr class="layer">') == 2
    assert "fc&lt;2&gt;" in html and "fc<2>" not in html  # names are escaped
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing external
    imgs = images(html)
    assert set(imgs) == {"adders"}  # no sweep, no resources: only the adders plot
    assert imgs["adders"].startswith(b"\x89PNG")
    assert "bit-exact" in html and "1.49×" in html  # verdict, CSD ratio 1783/1200


def test_html_plots_sweep_and_resources() -> None:
    html = render_html(sample_report(sweep=SWEEP, resources=RESOURCES))
    assert set(images(html)) == {"adders", "tradeoff", "resources"}
    assert html.count('<tr class="sweep">') == 3
    assert "107.4" in html  # utilization


def test_html_verdicts() -> None:
    skipped = {"simulator": None, "vectors": 0, "bit_exact": None, "skipped": "--no-verify"}
    assert "<b>not</b> verified" in render_html(sample_report(verification=skipped))
    bad = {"simulator": "icarus", "vectors": 10, "bit_exact": False}
    assert "MISMATCH" in render_html(sample_report(verification=bad))


def test_resource_bars_pair_usage_with_capacity() -> None:
    bars = resource_bars(RESOURCES)
    assert bars[0] == ("LUTs", 22336.0, 20800)
    assert ("DSP", 0.0, None) in bars
    assert resource_bars({"skipped": "report only"}) == []


def test_markdown_keeps_its_sections_and_adds_the_sweep() -> None:
    md = render_markdown(sample_report())
    for section in ("## Layers", "## Totals", "## Accuracy", "## Verification", "## Resources"):
        assert section in md
    assert "Settings tried" not in md
    md = render_markdown(sample_report(sweep=SWEEP))
    assert "## Settings tried" in md and "(compiled)" in md


def test_write_then_rerender(tmp_path: Path) -> None:
    paths = write_reports(sample_report(sweep=SWEEP), tmp_path)
    assert [p.name for p in paths] == ["report.json", "report.md", "report.html"]
    before = (tmp_path / "report.md").read_text()
    (tmp_path / "report.md").unlink()
    (tmp_path / "report.html").unlink()
    rerender(tmp_path)
    assert (tmp_path / "report.md").read_text() == before
    assert images((tmp_path / "report.html").read_text())


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "has no report.json"), ("[1,", "is not valid JSON"), ('{"model": 1}', "missing")],
)
def test_read_report_errors(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "report.json").write_text(content)
    with pytest.raises(BadInputError, match=message):
        read_report(tmp_path)


def test_report_json_roundtrips_numpy_values(tmp_path: Path) -> None:
    import numpy as np

    r = sample_report()
    r["totals"]["adders"] = np.int64(1200)
    r["accuracy"]["sqnr_db"] = np.float32(34.5)
    write_reports(r, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["totals"]["adders"] == 1200
