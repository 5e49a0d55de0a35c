"""The ONNX operator table: one op module per family fills it, the importer dispatches through
it, ``inspect`` reads it, and an op missing from it is one line naming the node."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import helper
from test_onnx import assert_clean, build, rand, save

from nnlcc import inspect as im
from nnlcc.errors import UnsupportedModelError
from nnlcc.frontends.onnx import inspect_onnx, load_onnx, registry, supported_ops
from nnlcc.frontends.onnx.importer import Importer
from nnlcc.frontends.onnx.values import Step, Value

ROOT = Path(__file__).resolve().parents[2]

# Which module of nnlcc.frontends.onnx handles (h) or folds (f) each op.
FAMILIES = {
    "dense": {"Gemm": "h", "MatMul": "h"},
    "conv": {"Conv": "h"},
    "batchnorm": {"BatchNormalization": "h"},
    "pool": {"MaxPool": "h", "AveragePool": "h", "GlobalAveragePool": "h", "GlobalMaxPool": "h"},
    "residual": {"Add": "h"},
    "activation": {"Relu": "h"},
    "reshape": {"Flatten": "h", "Reshape": "h", "Identity": "h", "Dropout": "h"},
    "recurrent": {"LSTM": "h", "GRU": "h", "Transpose": "h", "Gather": "h", "Squeeze": "h"},
    "constants": {
        "Shape": "h",
        "Constant": "f",
        "Identity": "f",
        "Transpose": "f",
        "Cast": "f",
        "Gather": "f",
        "Unsqueeze": "f",
        "Squeeze": "f",
        "Concat": "f",
    },
    "quant": {
        "Quant": "h",
        "BipolarQuant": "h",
        "QuantizeLinear": "h",
        "Clip": "h",
        "DequantizeLinear": "h",
    },
    "quant_spec": {
        "Quant": "f",
        "BipolarQuant": "f",
        "QuantizeLinear": "f",
        "Clip": "f",
        "DequantizeLinear": "f",
    },
}


def test_every_handled_op_is_listed_by_its_family_module() -> None:
    listed = set(supported_ops())
    for family, ops in FAMILIES.items():
        for op, role in ops.items():
            assert op in listed, op
            entry = registry.lookup(op)
            assert entry is not None
            fn = entry.handler if role == "h" else entry.folder
            assert fn is not None and fn.__module__ == f"nnlcc.frontends.onnx.{family}", op
    assert listed == {op for ops in FAMILIES.values() for op in ops}
    assert list(supported_ops()) == sorted(listed)
    for op in listed:  # no entry without a way to import the op
        entry = registry.lookup(op)
        assert entry is not None and (entry.handler or entry.folder)


def test_importing_the_frontend_registers_every_op_module() -> None:
    """``import nnlcc.frontends`` alone loads every module of the ONNX package (so the table
    is complete), and only Add may join two computed tensors."""
    code = (
        "import pkgutil, sys, nnlcc.frontends as f\n"
        "import nnlcc.frontends.onnx as o\n"
        "missing = [m.name for m in pkgutil.iter_modules(o.__path__)"
        " if f'{o.__name__}.{m.name}' not in sys.modules]\n"
        "print(missing)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
    joins = {op for op in supported_ops() if (e := registry.lookup(op)) and e.joins > 1}
    assert joins == {"Add"}


def test_a_registered_handler_is_all_the_importer_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The importer and inspect read the table: an op registered there (here Softsign passed
    through like Identity, on a copy of the table) imports and is listed, with no other list
    to edit."""
    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1),
        helper.make_node("Softsign", ["h"], ["y"], name="squash"),
    ]
    path = save(build(nodes, {"w": rand(rng, 3, 4), "b": rand(rng, 3)}, ["N", 4]), tmp_path)
    assert "Softsign" not in supported_ops()
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(path)
    assert (
        str(err.value)
        == "node 'squash' (Softsign): operator Softsign is not supported by nnlcc yet"
    )

    monkeypatch.setattr(registry, "_TABLE", dict(registry._TABLE))

    @registry.onnx_handler("Softsign")
    def passthrough(imp: Importer, step: Step) -> Value:
        return imp.through(step.value, step.live[0])

    assert "Softsign" in supported_ops()
    assert [r["supported"] for r in inspect_onnx(path)] == [True, True]
    assert [layer.kind for layer in load_onnx(path).layers] == ["dense"]


def test_unregistered_op_is_one_line_naming_the_node(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1),
        helper.make_node("Softsign", ["h"], ["y"], name="squash"),
    ]
    path = save(build(nodes, {"w": rand(rng, 3, 4), "b": rand(rng, 3)}, ["N", 4]), tmp_path)
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(path)
    assert_clean(err, "node 'squash' (Softsign)", "operator Softsign is not supported by nnlcc yet")
    # an op the table knows only as a constant folder is refused on the data path
    nodes[1] = helper.make_node("Cast", ["h"], ["y"], name="turn", to=1)
    path = save(build(nodes, {"w": rand(rng, 3, 4), "b": rand(rng, 3)}, ["N", 4]), tmp_path)
    with pytest.raises(UnsupportedModelError) as err:
        load_onnx(path)
    assert_clean(err, "node 'turn' (Cast)", "Cast of the data path is not supported")


def test_inspect_shows_the_registry_ops(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1),
        helper.make_node("Softsign", ["h"], ["y"], name="squash"),
    ]
    path = save(build(nodes, {"w": rand(rng, 3, 4), "b": rand(rng, 3)}, ["N", 4]), tmp_path)
    info = im.inspect_model(path, lcc=False)
    assert info["supported_ops"] == list(supported_ops())
    assert not info["supported"]
    text = " ".join(im.render_text(info).split())  # the console wraps long lines
    assert f"ONNX ops nnlcc imports: {', '.join(supported_ops())}" in text


def test_readme_names_only_supported_ops() -> None:
    """The README's frontend bullet lists ops in prose; none may be one nnlcc refuses."""
    readme = (ROOT / "README.md").read_text()
    bullet = re.search(r"^- `frontends/`.*?(?=^- `)", readme, re.M | re.S)
    assert bullet is not None
    listed = re.search(r"\((Gemm.*?)\)", bullet.group(0), re.S)
    assert listed is not None
    named = set(re.findall(r"\b[A-Z][A-Za-z]+\b", listed.group(1)))
    assert {"Gemm", "Conv", "MaxPool", "Dropout"} <= named
    assert named <= set(supported_ops())
