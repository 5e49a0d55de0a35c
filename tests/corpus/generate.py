"""The corpus of bad and adversarial inputs to ``nnlcc``: models, data files, configs, option
strings and output paths, each with the exit status and a fragment of the one error line it
must give.  ``generate(root)`` writes the input files under ``root`` and returns the cases;
their command lines are relative to ``root`` (run them with ``root`` as the working directory).

Run as a script to write a corpus and list it: ``python tests/corpus/generate.py DIR``.
"""

from __future__ import annotations

import json
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: OUTDIR of every case that does not test the output path itself.
OUT = "out/design"


@dataclass(frozen=True)
class Case:
    name: str
    argv: list[str]
    fragment: str  # must appear in the error line
    exit_code: int = 2


def mlp(
    names: tuple[str, str] = ("fc1", "fc2"),
    w1: np.ndarray | None = None,
    in_dims: list[int | str] | None = None,
    b1: np.ndarray | None = None,
    extra_op: str | None = None,
) -> onnx.ModelProto:
    """A 4-3-2 MLP (Gemm, Relu, Gemm) with the given layer names and first weight."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((3, 4)) if w1 is None else w1
    b1 = np.zeros(w1.shape[0]) if b1 is None else b1
    w2 = rng.standard_normal((2, w1.shape[0]))
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], name=names[0], transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], name=names[1], transB=1),
    ]
    out = "y"
    if extra_op:
        nodes.append(helper.make_node(extra_op, ["y"], ["z"], name="odd_one"))
        out = "z"
    graph = helper.make_graph(
        nodes,
        "corpus",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_dims or ["N", w1.shape[1]])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 2])],
        [
            numpy_helper.from_array(w1.astype(np.float32), "W1"),
            numpy_helper.from_array(b1.astype(np.float32), "B1"),
            numpy_helper.from_array(w2.astype(np.float32), "W2"),
            numpy_helper.from_array(np.zeros(2, np.float32), "B2"),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def bn_eps0() -> onnx.ModelProto:
    """The MLP with a BatchNormalization of epsilon 0 and a zero variance after fc1."""
    m = mlp()
    g = m.graph
    g.node.insert(
        1,
        helper.make_node(
            "BatchNormalization", ["h", "s", "bb", "mu", "var"], ["hb"], name="bn", epsilon=0.0
        ),
    )
    g.node[2].input[0] = "hb"
    for name, v in [("s", [1, 1, 1]), ("bb", [0, 0, 0]), ("mu", [0, 0, 0]), ("var", [0, 1, 1])]:
        g.initializer.append(numpy_helper.from_array(np.array(v, np.float32), name))
    return m


def two_inputs() -> onnx.ModelProto:
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add")],
        "two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _save(path: Path, model: onnx.ModelProto | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(model, bytes):
        path.write_bytes(model)
    else:
        onnx.save(model, str(path))
    return str(path)


def _npz(path: Path, **arrays: object) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    return str(path)


def _text(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def _models(root: Path) -> list[Case]:
    m = root / "models"
    rng = np.random.default_rng(1)
    good = mlp()
    nan_w = rng.standard_normal((3, 4))
    nan_w[1, 2] = np.nan
    inf_w = rng.standard_normal((3, 4))
    inf_w[0, 0] = np.inf
    raw = good.SerializeToString()
    cases = {
        "model_missing": ("models/nope.onnx", "not found"),
        "model_empty": (_save(m / "empty.onnx", b""), "empty.onnx"),
        "model_text": (_save(m / "text.onnx", b"this is not a model\n" * 10), "ONNX"),
        "model_truncated": (_save(m / "trunc.onnx", raw[: len(raw) // 2]), "trunc.onnx"),
        "model_random_bytes": (_save(m / "noise.onnx", rng.bytes(4096)), "noise.onnx"),
        "model_is_directory": (str(m), "models"),
        "model_unsupported_op": (_save(m / "sin.onnx", mlp(extra_op="Sin")), "Sin"),
        "model_nan_weights": (_save(m / "nan.onnx", mlp(w1=nan_w)), "fc1"),
        "model_inf_weights": (_save(m / "inf.onnx", mlp(w1=inf_w)), "fc1"),
        "model_zero_rows": (_save(m / "zero_rows.onnx", mlp(w1=np.zeros((0, 4)))), "fc1"),
        "model_zero_size_input": (
            _save(m / "zero_in.onnx", mlp(w1=np.zeros((3, 0)), in_dims=["N", 0])),
            "size 0",
        ),
        "model_dynamic_feature": (
            _save(m / "dyn.onnx", mlp(in_dims=["N", "F"])),
            "dynamic",
        ),
        "model_batchnorm_eps0": (_save(m / "bn0.onnx", bn_eps0()), "bn"),
        "model_two_inputs": (_save(m / "two.onnx", two_inputs()), "input"),
        "model_bad_extension_dir": (_save(m / "sub" / "x.onnx", b"\x08\x07"), "x.onnx"),
    }
    return [Case(n, ["compile", p, "-o", OUT], frag) for n, (p, frag) in cases.items()]


def _data(root: Path) -> list[Case]:
    d = root / "data"
    model = _save(root / "good" / "mlp.onnx", mlp())
    x = np.random.default_rng(2).uniform(0, 1, size=(10, 4))
    y = np.arange(10) % 2
    zip_no_npy = d / "zip.npz"
    d.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_no_npy, "w") as z:
        z.writestr("readme.txt", "hello")
    np.save(d / "plain.npy", x)
    nan_x = x.copy()
    nan_x[0, 0] = np.nan
    cases = {
        "data_missing": ("data/none.npz", "not found"),
        "data_text": (_text(d / "text.npz", "x_test = 1,2,3\n"), "not an .npz"),
        "data_npy": (str(d / "plain.npy"), "not an .npz"),
        "data_zip_without_arrays": (str(zip_no_npy), "zip.npz"),
        "data_no_x_test": (_npz(d / "nox.npz", x_train=x), "x_test"),
        "data_wrong_shape": (_npz(d / "shape.npz", x_test=np.zeros((10, 5))), "4 input features"),
        "data_strings": (_npz(d / "str.npz", x_test=np.array([["a"] * 4] * 3)), "real numbers"),
        "data_pickled_objects": (
            _npz(d / "obj.npz", x_test=np.array([{"a": 1}] * 4, dtype=object)),
            "obj.npz",
        ),
        "data_complex": (_npz(d / "cplx.npz", x_test=x + 1j), "real numbers"),
        "data_nan_inputs": (_npz(d / "nanx.npz", x_test=nan_x), "NaN"),
        "data_empty": (_npz(d / "empty.npz", x_test=np.zeros((0, 4))), "shape"),
        "data_nan_labels": (_npz(d / "nany.npz", x_test=x, y_test=y + np.nan), "NaN"),
        "data_huge_labels": (_npz(d / "hugey.npz", x_test=x, y_test=y + 10**12), "labels in"),
        "data_negative_labels": (_npz(d / "negy.npz", x_test=x, y_test=y - 5), "labels in"),
        "data_label_beyond_outputs": (_npz(d / "y7.npz", x_test=x, y_test=y * 7), "0..1"),
        "data_fractional_labels": (_npz(d / "fracy.npz", x_test=x, y_test=y + 0.5), "fractional"),
        "data_string_labels": (_npz(d / "stry.npz", x_test=x, y_test=y.astype(str)), "y_test"),
        "data_label_count": (_npz(d / "county.npz", x_test=x, y_test=y[:3]), "3 labels"),
        "data_bad_x_train": (
            _npz(d / "train.npz", x_test=x, x_train=np.zeros((5, 3))),
            "x_train",
        ),
    }
    return [
        Case(n, ["compile", model, "--data", p, "-o", OUT, "--report-only"], frag)
        for n, (p, frag) in cases.items()
    ]


def _configs(root: Path) -> list[Case]:
    c = root / "configs"
    model = "good/mlp.onnx"
    cases = {
        "config_missing": ("configs/none.toml", "not found"),
        "config_invalid_toml": (_text(c / "bad.toml", "[compile\n"), "invalid TOML"),
        "config_unknown_section": (_text(c / "sec.toml", "[compyle]\n"), "compyle"),
        "config_unknown_key": (_text(c / "key.toml", '[compile]\nboardd = "x"\n'), "boardd"),
        "config_vectors_string": (_text(c / "vs.toml", '[compile]\nvectors = "9"\n'), "vectors"),
        "config_negative_vectors": (_text(c / "nv.toml", "[compile]\nvectors = -5\n"), "-5"),
        "config_negative_seed": (_text(c / "ns.toml", "[compile]\nseed = -1\n"), "seed"),
        "config_float_seed": (_text(c / "fs.toml", "[compile]\nseed = 1.5\n"), "seed"),
        "config_bad_simulator": (
            _text(c / "sim.toml", '[compile]\nsimulator = "modelsim"\n'),
            "modelsim",
        ),
        "config_bad_passes": (_text(c / "p.toml", '[compile]\npasses = "nope"\n'), "nope"),
        "config_layer_matches_nothing": (
            _text(c / "layer.toml", "[layers.fc9]\nlcc = { sqnr_db = 40 }\n"),
            "fc9",
        ),
        "config_output_dot": (_text(c / "dot.toml", '[compile]\noutput = "."\n'), "never"),
        "config_output_empty": (_text(c / "empty.toml", '[compile]\noutput = ""\n'), "never"),
        "config_output_parent": (_text(c / "up.toml", '[compile]\noutput = ".."\n'), "never"),
        "config_not_utf8": (str(_bytes(c / "latin.toml", b"[compile]\nboard = '\xff'\n")), ""),
    }
    out = []
    for n, (p, frag) in cases.items():
        argv = ["compile", model, "-c", p, "--report-only"]
        if "output" not in n:
            argv += ["-o", OUT]
        out.append(Case(n, argv, frag or p.split("/")[-1]))
    return out


def _bytes(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _options(root: Path) -> list[Case]:
    model = "good/mlp.onnx"
    markup = _save(root / "markup" / "markup.onnx", mlp(names=("[bold]fc1[/bold]", "[/]")))
    long = "L" * 300
    cases = [
        ("opt_negative_vectors", ["--vectors", "-1"], "-1"),
        ("opt_huge_vectors", ["--vectors", str(10**9)], "--vectors"),
        ("opt_unknown_simulator", ["--simulator", "modelsim"], "modelsim"),
        ("opt_unknown_board", ["--board", "nope-board"], "nope-board"),
        ("opt_unknown_pass", ["--passes", "bogus"], "bogus"),
        ("opt_bad_pass_value", ["--passes", "lcc{sqnr_db=abc}"], "sqnr_db"),
        ("opt_zero_headroom", ["--passes", "quantize{headroom=0}"], "headroom"),
        ("opt_tiny_headroom", ["--passes", "quantize{headroom=1e-300}"], "headroom"),
        ("opt_nan_headroom", ["--passes", "quantize{headroom=nan}"], "headroom"),
        ("opt_unbalanced_braces", ["--passes", "lcc{sqnr_db=40"], "{sqnr_db=40"),
        ("opt_bad_sweep", ["--sweep", "nope"], "nope"),
        ("opt_layer_unknown", ["--layer", "fc9"], "fc9"),
        ("opt_layer_long", ["--layer", long], "no matrix layer"),
        ("opt_layer_markup", ["--layer", "[red]x[/red]"], "[red]x[/red]"),
    ]
    out = [Case(n, ["compile", model, *a, "-o", OUT], f) for n, a, f in cases]
    out += [
        Case(
            "opt_markup_model_bad_layer", ["compile", markup, "--layer", "[/]x", "-o", OUT], "[/]x"
        ),
        Case("inspect_csd_bits", ["inspect", "--csd-bits", "40", model], "--csd-bits"),
        Case("inspect_sqnr", ["inspect", "--sqnr-db", "0", model], "--sqnr-db"),
        Case("inspect_missing", ["inspect", "models/nope.onnx"], "not found"),
        Case("report_missing", ["report", "nowhere"], "does not exist"),
        Case("sim_not_outdir", ["sim", "good"], "nnlcc compile"),
    ]
    return out


def _outdirs(root: Path) -> list[Case]:
    model = "good/mlp.onnx"
    user = root / "userdir"
    _text(user / "thesis.tex", "years of work\n")
    _text(root / "afile.txt", "not a directory\n")
    link = root / "link_to_userdir"
    if not link.is_symlink():
        link.symlink_to("userdir", target_is_directory=True)
    _text(root / "build" / "notes.txt", "the user's build folder\n")
    cases = {
        "out_dot": (".", "never"),
        "out_empty": ("", "never"),
        "out_cwd_absolute": (str(root), "never"),
        "out_model_folder": ("good", "never"),
        "out_parent": ("..", "never"),
        "out_root": ("/", "never"),
        "out_user_dir": ("userdir", "--force"),
        "out_existing_file": ("afile.txt", "existing file"),
        "out_inside_file": ("afile.txt/sub", "which is a file"),
        "out_symlink": ("link_to_userdir", "symbolic link"),
        "out_proc": ("/proc/nnlcc/out", "cannot be written"),
        "out_long_name": ("o" * 300, "bytes long"),
        "out_build_dir": ("build", "--force"),
    }
    out = [Case(n, ["compile", model, "-o", p, "--report-only"], f) for n, (p, f) in cases.items()]
    out += [
        Case("force_cwd", ["compile", model, "-o", ".", "--force", "--report-only"], "never"),
        Case(
            "force_model_folder",
            ["compile", model, "-o", "good", "--force", "--report-only"],
            "never",
        ),
        Case("force_ancestor", ["compile", model, "-o", "..", "--force", "--report-only"], "never"),
        Case(
            "layer_out_user_dir",
            ["compile", model, "--layer", "fc1", "-o", "userdir", "--no-verify"],
            "--force",
        ),
    ]
    return out


def generate(root: Path) -> list[Case]:
    """Write the corpus's input files under ``root``; return its cases (at least 60)."""
    root.mkdir(parents=True, exist_ok=True)
    cases = [*_models(root), *_data(root), *_configs(root), *_options(root), *_outdirs(root)]
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "case names are unique"
    return cases


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/corpus/generate.py DIR")
    for case in generate(Path(sys.argv[1])):
        print(json.dumps(case.__dict__))
