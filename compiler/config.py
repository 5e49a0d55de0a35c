"""``nnlcc.toml``: compile defaults and per-layer overrides (the way hls4ml's ``LayerName``
configuration works), read with :mod:`tomllib` and validated before anything runs.

.. code-block:: toml

    [compile]                        # defaults for `nnlcc compile` (command-line options win)
    passes = "quantize{act_bits=8},lcc{sqnr_db=45}"
    board = "ulx3s-85f"
    sweep = ["lcc{sqnr_db=35}", "lcc{sqnr_db=40}"]

    [layer_types.conv]               # every layer of a kind (dense, conv, pool, add, flatten)
    lcc = { sqnr_db = 40 }

    [layers."fc*"]                   # glob pattern over layer names
    lcc = { sqnr_db = 50 }           # options of a pass, for these layers only

    [layers.fc2]                     # an exact name wins over patterns
    csd = { weight_bits = 6 }        # options of a matrix pass also choose it for the layer
    quantize = { act_bits = 10 }     # this layer's output format

This module only parses and validates: :meth:`Config.layer_settings` gives each layer's merged
settings, and the pass runner (:mod:`nnlcc.passes.runner`) attaches and honours them.  Which
passes accept per-layer options, and which of their options stay global, is each pass's own
metadata (``per_layer``, ``global_options``).
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlcc.errors import BadInputError, NnlccError
from nnlcc.ir.matrix import MatrixGraph
from nnlcc.passes import PassKind, get_pass, names_of_kind, parse_pipeline, pass_names
from nnlcc.passes.runner import LayerSettings

#: ``[compile]`` keys: name -> (type, the CompileOptions field it sets).
COMPILE_KEYS: dict[str, tuple[type, str]] = {
    "model": (str, "model"),
    "board": (str, "board"),
    "output": (str, "outdir"),
    "passes": (str, "passes"),
    "data": (str, "data"),
    "verify": (bool, "verify"),
    "vectors": (int, "random_vectors"),
    "simulator": (str, "simulator"),
    "build": (bool, "build"),
    "report_only": (bool, "report_only"),
    "seed": (int, "seed"),
    "sweep": (list, "sweep"),
    "accuracy_drop": (float, "accuracy_drop"),
    "jobs": (int, "jobs"),
    "cluster": (str, "cluster"),
}
_PATH_KEYS = ("model", "output", "data")  # relative to the config file's directory
SECTIONS = ("compile", "layer_types", "layers")
#: ``[layer_types.KIND]`` keys (the ``kind`` of the matrix IR's layers); matrix passes code
#: only the first two.
LAYER_KINDS = ("dense", "conv", "pool", "add", "flatten")
MATRIX_KINDS = ("dense", "conv")


def _matrix_passes() -> tuple[str, ...]:
    return names_of_kind(PassKind.MATRIX)


def _per_layer_passes() -> tuple[str, ...]:
    return tuple(n for n in pass_names() if get_pass(n).per_layer)


def _toml_text(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


@dataclass(frozen=True)
class LayerRule:
    """One ``[layers.PATTERN]`` table (or ``[layer_types.KIND]`` when ``by_kind``): the
    matrix pass and pass options it sets."""

    pattern: str
    matrix: str | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_kind: bool = False

    @property
    def is_glob(self) -> bool:
        return any(ch in self.pattern for ch in "*?[")

    @property
    def table(self) -> str:
        return f"[{'layer_types' if self.by_kind else 'layers'}.{_key(self.pattern)}]"

    def matches(self, name: str, kind: str = "") -> bool:
        if self.by_kind:
            return kind == self.pattern
        return fnmatch.fnmatchcase(name, self.pattern)


@dataclass
class Config:
    """A parsed and validated ``nnlcc.toml`` (see the module docstring for its format)."""

    path: Path | None = None
    compile: dict[str, Any] = field(default_factory=dict)
    rules: list[LayerRule] = field(default_factory=list)

    def _where(self) -> str:
        return f"config {self.path}" if self.path else "config"

    # ---- per-layer settings

    def settings_for(self, name: str, kind: str = "") -> LayerSettings | None:
        """Merged settings of one layer: its layer type, then name patterns in file order,
        then its exact name (later ones override earlier ones option by option)."""
        rules = [r for r in self.rules if r.by_kind and r.matches(name, kind)]
        rules += [r for r in self.rules if not r.by_kind and r.is_glob and r.matches(name)]
        rules += [r for r in self.rules if not r.by_kind and not r.is_glob and r.pattern == name]
        matrix: str | None = None
        options: dict[str, dict[str, Any]] = {}
        for r in rules:
            if r.matrix is not None:
                matrix = r.matrix
            for pname, opts in r.options.items():
                options.setdefault(pname, {}).update(opts)
        if not rules:
            return None
        return LayerSettings(matrix, options, [r.pattern for r in rules])

    def layer_settings(self, graph: MatrixGraph) -> dict[str, LayerSettings]:
        """Each layer's merged settings by name (layers without any are left out), after
        checking that every rule matches a layer of ``graph``."""
        names = [layer.name for layer in graph.layers]
        kinds = list(dict.fromkeys(layer.kind for layer in graph.layers))
        for r in self.rules:
            if not any(r.matches(la.name, la.kind) for la in graph.layers):
                known = (
                    f"layer types: {', '.join(kinds)}"
                    if r.by_kind
                    else f"layers: {', '.join(names)}"
                )
                raise BadInputError(
                    f"{self._where()}: {r.table} matches no layer of {graph.name} ({known});"
                    " run `nnlcc inspect` to list them"
                )
        out = {}
        for layer in graph.layers:
            s = self.settings_for(layer.name, layer.kind)
            if s is not None:
                out[layer.name] = s
        return out


def _key(pattern: str) -> str:
    return pattern if pattern.replace("_", "").replace("-", "").isalnum() else f'"{pattern}"'


def _check_pass_options(where: str, pname: str, opts: Any) -> dict[str, Any]:
    """Validate ``{option: value}`` of pass ``pname`` with the pipeline parser's own rules."""
    if not isinstance(opts, dict):
        raise BadInputError(
            f"{where}: {pname} must be a table of options, e.g. {pname} = {{ key = value }}"
        )
    text = ",".join(f"{k}={_toml_text(v)}" for k, v in opts.items())
    try:
        (obj,) = parse_pipeline(f"{pname}{{{text}}}")
    except NnlccError as e:
        raise BadInputError(f"{where}: {e}") from None
    return {k: getattr(obj, k) for k in opts}


def _parse_layer_rule(where: str, pattern: str, table: Any, by_kind: bool = False) -> LayerRule:
    section = "layer_types" if by_kind else "layers"
    where = f"{where}: [{section}.{_key(pattern)}]"
    if not isinstance(table, dict):
        raise BadInputError(f"{where} must be a table, e.g. [{section}.{_key(pattern)}]")
    if by_kind and pattern not in LAYER_KINDS:
        raise BadInputError(f"{where}: unknown layer type; use one of {', '.join(LAYER_KINDS)}")
    matrix_names = _matrix_passes()
    matrix = table.get("matrix")
    if matrix is not None and matrix not in matrix_names:
        raise BadInputError(
            f"{where}: matrix = {matrix!r} is not a matrix pass; use one of "
            f"{', '.join(matrix_names)}"
        )
    options: dict[str, dict[str, Any]] = {}
    for key, value in table.items():
        if key == "matrix":
            continue
        per_layer = _per_layer_passes()
        if key not in per_layer:
            raise BadInputError(
                f'{where}: unknown key {key!r}; use matrix = "csd"/"lcc" or a table of'
                f" options of {', '.join(sorted(per_layer))}"
                + (" (this pass has no per-layer options)" if key in pass_names() else "")
            )
        options[key] = _check_pass_options(where, key, value)
        glob = sorted(get_pass(key).global_options & set(options[key]))
        if glob:
            raise BadInputError(
                f"{where}: {key} option {glob[0]} is global; set it in [compile] passes"
            )
    if matrix is None:
        given = [k for k in options if k in matrix_names]
        if len(given) > 1:
            raise BadInputError(
                f"{where}: options for {' and '.join(given)}; say which implements the layer"
                f' with matrix = "{given[0]}"'
            )
        matrix = given[0] if given else None
    if by_kind and pattern not in MATRIX_KINDS and (matrix or set(options) & set(matrix_names)):
        raise BadInputError(f"{where}: {pattern} layers have no matrix; only quantize applies")
    return LayerRule(pattern=pattern, matrix=matrix, options=options, by_kind=by_kind)


def _parse_compile(where: str, table: Any, base: Path) -> dict[str, Any]:
    where = f"{where}: [compile]"
    if not isinstance(table, dict):
        raise BadInputError(f"{where} must be a table")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in COMPILE_KEYS:
            raise BadInputError(
                f"{where}: unknown key {key!r}; known keys: {', '.join(COMPILE_KEYS)}"
            )
        typ = COMPILE_KEYS[key][0]
        ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
        if key == "sweep":
            ok = ok and all(isinstance(v, str) for v in value)
        if not ok:
            want = "a list of pipeline strings" if key == "sweep" else typ.__name__
            raise BadInputError(f"{where}: {key} must be {want}, not {value!r}")
        if key == "passes" or key == "sweep":
            for text in [value] if key == "passes" else value:
                try:
                    parse_pipeline(text)
                except NnlccError as e:
                    raise BadInputError(f"{where}: {key}: {e}") from None
        if key in _PATH_KEYS:
            value = base / value
        out[key] = value
    return out


def parse_config(text: str, path: Path | None = None) -> Config:
    """Parse and validate config text (``path`` names it in errors and anchors relative paths)."""
    where = f"config {path}" if path else "config"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BadInputError(f"{where}: invalid TOML ({e}); fix the syntax") from None
    for key in data:
        if key not in SECTIONS:
            raise BadInputError(
                f"{where}: unknown section or key {key!r}; known sections: "
                + ", ".join(f"[{s}]" for s in SECTIONS)
            )
    base = path.parent if path else Path()
    compile_opts = _parse_compile(where, data.get("compile", {}), base)
    layers = data.get("layers", {})
    if not isinstance(layers, dict):
        raise BadInputError(f"{where}: layers must be tables like [layers.fc1]")
    types = data.get("layer_types", {})
    if not isinstance(types, dict):
        raise BadInputError(f"{where}: layer_types must be tables like [layer_types.conv]")
    rules = [_parse_layer_rule(where, kind, table, by_kind=True) for kind, table in types.items()]
    rules += [_parse_layer_rule(where, pattern, table) for pattern, table in layers.items()]
    return Config(path=path, compile=compile_opts, rules=rules)


def load_config(path: str | Path) -> Config:
    """Read and validate ``nnlcc.toml``; every problem is one :class:`BadInputError` line."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"config file '{p}' not found; pass an existing .toml file")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"config file '{p}' cannot be read ({e})") from None
    return parse_config(text, p)


def describe(settings: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Per layer, its settings as text (``matrix=csd csd{weight_bits=6}``) for reports."""
    out: dict[str, str] = {}
    for layer, s in settings.items():
        parts = [f"matrix={s['matrix']}"] if s.get("matrix") else []
        for pname, opts in s.items():
            if pname != "matrix" and opts:
                body = ",".join(f"{k}={v}" for k, v in opts.items())
                parts.append(f"{pname}{{{body}}}")
        out[layer] = " ".join(parts)
    return out
