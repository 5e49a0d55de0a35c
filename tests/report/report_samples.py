"""Report data for the renderer tests: a report.json as the driver writes it."""

from __future__ import annotations

import base64
import re
from typing import Any

from nnlcc.report.schema import Report


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
        "out_bits": 8,
        "max_bits": 25,
        "adder_bits": adders * 18,
        "weight_sqnr_db": 45.1,
    }


def sample_report(**extra: Any) -> Report:
    """A report as the driver writes it (test data for the renderers); ``extra``: JSON."""
    return Report.from_json(sample_json(**extra))


def sample_json(**extra: Any) -> dict[str, Any]:
    """A report.json as the driver writes it."""
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
