"""The imported, quantized jet-tagging example end to end: compiled from its QCDQ export with
the default pipeline, the generated Verilog is bit-exact with the golden model in cocotb, and
the golden model with the model's own arithmetic (onnxruntime) on its test set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnlcc import examples
from nnlcc.driver import CompileOptions, compile_model
from nnlcc.sim import available_simulators

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("verilator" not in available_simulators(), reason="no verilator"),
]


def test_jet_qdq_compiles_bit_exact(tmp_path: Path) -> None:
    with np.load(examples.JET_DATA) as z:  # a slice of the test set keeps the run short
        np.savez(tmp_path / "jet.npz", x_test=z["x_test"][:400], y_test=z["y_test"][:400])
    r = compile_model(
        CompileOptions(
            model=examples.JET_QDQ,
            data=tmp_path / "jet.npz",
            board="ulx3s",
            outdir=tmp_path / "out",
            random_vectors=200,
        )
    )
    assert r.verification is not None
    assert r.verification.bit_exact is True and r.verification.vectors == 600
    acc = r.accuracy
    assert acc is not None
    assert acc.reference_identical == 1.0 and acc.golden == acc.float_accuracy
    assert r.input_fmt == "s8.5"
    for layer in r.layers:
        assert layer.imported_exact is True
        assert layer.imported_weights is not None and layer.imported_weights.startswith("s6")
    assert r.accuracy_drop is None  # nothing traded by default
