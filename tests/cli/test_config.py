"""nnlcc.toml: parsing, validation messages, per-layer merging and what reaches the passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnlcc.config import Config, load_config, parse_config
from nnlcc.driver import (
    EXAMPLE_MODEL,
    CompileOptions,
    load_data,
    load_model,
    resolve_pipeline,
    run_passes,
)
from nnlcc.errors import BadInputError
from nnlcc.passes import attach_layer_settings, layer_pass
from nnlcc.passes.csd import Csd
from nnlcc.passes.lcc import Lcc


def apply_config(cfg: Config, graph: object, passes: list[object]) -> tuple[list[object], dict]:
    return attach_layer_settings(graph, passes, cfg.layer_settings(graph))  # type: ignore[arg-type]


def configured(text: str, pipeline: str = "quantize,lcc") -> tuple[object, list[object]]:
    """The example graph after the config and the pipeline's passes."""
    cfg = parse_config(text, Path("nnlcc.toml"))
    graph = load_model(EXAMPLE_MODEL)
    passes, _ = apply_config(cfg, graph, resolve_pipeline(pipeline))
    run_passes(graph, passes, load_data(graph, EXAMPLE_MODEL, None, 0))
    return graph, passes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[compile\n", "config nnlcc.toml: invalid TOML"),
        ("[boards]\n", "unknown section or key 'boards'"),
        ("[compile]\nboardd = 'x'\n", "[compile]: unknown key 'boardd'; known keys: model"),
        ("[compile]\nvectors = 'many'\n", "[compile]: vectors must be int"),
        ("[compile]\nverify = 1\n", "[compile]: verify must be bool"),
        ("[compile]\npasses = 'lcc{x=1}'\n", "[compile]: passes: pass lcc: unknown option 'x'"),
        ("[compile]\nsweep = 'lcc'\n", "sweep must be a list of pipeline strings"),
        ("[layers.fc1]\nsize = 3\n", "[layers.fc1]: unknown key 'size'"),
        ("[layers.fc1]\nlcc = { sqnr = 40 }\n", "[layers.fc1]: pass lcc: unknown option 'sqnr'"),
        ("[layers.fc1]\nlcc = { sqnr_db = -1 }\n", "[layers.fc1]: lcc: sqnr_db must be in"),
        ("[layers.fc1]\nlcc = 45\n", "lcc must be a table of options"),
        ("[layers.fc1]\nmatrix = 'fft'\n", "matrix = 'fft' is not a matrix pass"),
        ("[layers.fc1]\nquantize = { input_bits = 6 }\n", "input_bits is global"),
        (
            "[layers.fc1]\ncsd = { weight_bits = 6 }\nlcc = { sqnr_db = 40 }\n",
            'say which implements the layer with matrix = "csd"',
        ),
    ],
)
def test_invalid_configs_name_the_file_and_key(text: str, message: str) -> None:
    with pytest.raises(BadInputError) as e:
        parse_config(text, Path("nnlcc.toml"))
    assert message in str(e.value)
    assert str(e.value).startswith("config nnlcc.toml")
    assert "\n" not in str(e.value)


def test_unknown_layer_or_empty_pattern_is_refused() -> None:
    graph = load_model(EXAMPLE_MODEL)
    for pattern in ("fc3", '"conv*"'):
        cfg = parse_config(f"[layers.{pattern}]\nlcc = {{ sqnr_db = 40 }}\n", Path("x.toml"))
        with pytest.raises(BadInputError, match=r"matches no layer of digits_mlp \(layers: fc1"):
            apply_config(cfg, graph, resolve_pipeline(None))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_exact_name_beats_pattern_and_later_patterns_win() -> None:
    cfg = parse_config(
        '[layers.fc2]\nlcc = { sqnr_db = 50 }\n[layers."fc*"]\nlcc = { sqnr_db = 30, nonzeros = 3 }\n'
        '[layers."f*"]\nlcc = { nonzeros = 4 }\n'
    )
    fc1, fc2 = cfg.settings_for("fc1"), cfg.settings_for("fc2")
    assert fc1 is not None and fc1.options == {"lcc": {"sqnr_db": 30.0, "nonzeros": 4}}
    assert fc2 is not None and fc2.options == {"lcc": {"sqnr_db": 50.0, "nonzeros": 4}}
    assert cfg.settings_for("out") is None


def test_per_layer_options_reach_the_passes() -> None:
    graph, passes = configured(
        "[layers.fc2]\ncsd = { weight_bits = 5 }\nquantize = { act_bits = 12 }\n"
        '[layers."fc1"]\nlcc = { sqnr_db = 30 }\n'
    )
    fc1, fc2 = graph.layers
    assert [p.name for p in passes] == ["quantize", "lcc", "csd"]  # csd added for fc2
    assert fc1.code.name == "lcc" and fc1.code.target_db == 30.0
    assert fc2.code.name == "csd" and fc2.code.summary()["weight_frac_bits"] <= 4
    assert fc2.out_fmt.bits == 12 and fc1.out_fmt.bits == 8


def test_layer_pass_helper() -> None:
    graph = load_model(EXAMPLE_MODEL)
    cfg = parse_config("[layers.fc2]\ncsd = { weight_bits = 6 }\n")
    apply_config(cfg, graph, resolve_pipeline("quantize,lcc"))
    fc1, fc2 = graph.layers
    assert layer_pass(Lcc(), fc1) == Lcc()
    assert layer_pass(Lcc(), fc2) is None  # fc2 is csd's
    assert layer_pass(Csd(), fc2) == Csd(weight_bits=6)
    assert layer_pass(Csd(), fc1) is None  # fc1 is pinned to the pipeline's lcc


def test_options_merge_command_line_over_file(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(EXAMPLE_MODEL.read_bytes())
    cfg_path = tmp_path / "nnlcc.toml"
    cfg_path.write_text('[compile]\nmodel = "m.onnx"\nboard = "icebreaker"\nvectors = 7\n')
    opts = CompileOptions.from_config(load_config(cfg_path), board="ulx3s", passes=None)
    assert isinstance(opts, CompileOptions)
    assert opts.model == tmp_path / "m.onnx"  # relative to the config file
    assert opts.board == "ulx3s" and opts.random_vectors == 7 and opts.passes is None
    assert CompileOptions.from_config(Config()).config is None


def test_layer_types_rank_below_names_and_patterns() -> None:
    cnn = EXAMPLE_MODEL.with_name("digits_cnn.onnx")
    cfg = parse_config(
        "[layer_types.conv]\nlcc = { sqnr_db = 30 }\nquantize = { act_bits = 6 }\n"
        "[layer_types.pool]\nquantize = { act_bits = 7 }\n"
        "[layers.conv2]\nlcc = { sqnr_db = 40 }\n"
    )
    graph = load_model(cnn)
    passes, applied = apply_config(cfg, graph, resolve_pipeline("quantize,lcc"))
    run_passes(graph, passes, load_data(graph, cnn, None, 0))
    by_name = {layer.name: layer for layer in graph.layers}
    assert by_name["conv1"].code.target_db == 30.0
    assert by_name["conv2"].code.target_db == 40.0  # the name wins over the type
    assert by_name["fc"].code.target_db == 45.0  # dense: the pipeline's default
    assert by_name["conv1"].out_fmt.bits == 6
    assert "pool1" in applied and applied["pool1"]["matrix"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[layer_types.lstm]\nlcc = { sqnr_db = 40 }\n", "unknown layer type; use one of dense"),
        ("[layer_types.pool]\nlcc = { sqnr_db = 40 }\n", "pool layers have no matrix"),
    ],
)
def test_invalid_layer_types(text: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        parse_config(text, Path("nnlcc.toml"))


def test_layer_type_missing_from_the_model() -> None:
    cfg = parse_config("[layer_types.conv]\nlcc = { sqnr_db = 40 }\n", Path("x.toml"))
    with pytest.raises(BadInputError, match=r"\[layer_types.conv\] matches no layer.*types: dense"):
        apply_config(cfg, load_model(EXAMPLE_MODEL), resolve_pipeline(None))
