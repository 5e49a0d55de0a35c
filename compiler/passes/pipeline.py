"""Pass objects and the pipeline text that names them.

A pass is a frozen dataclass: its fields are its options, ``name`` is how a pipeline writes it,
``apply(graph, ctx)`` transforms the :class:`~nnlcc.ir.matrix.MatrixGraph` in place.  The text
form ``"quantize{act_bits=8},lcc{sqnr_db=45,algo=fp}"`` round-trips through
:func:`parse_pipeline` and :func:`format_pipeline` and is stored in every report.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any

from nnlcc.errors import PassOptionError
from nnlcc.passes.base import Pass
from nnlcc.passes.registry import get_pass, pass_names

_ITEM_RE = re.compile(r"\s*([A-Za-z_][\w-]*)\s*(?:\{([^{}]*)\})?\s*")


def _convert(value: str, typ: Any, where: str) -> Any:
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        for t in args:
            if t is type(None):
                continue
            try:
                return _convert(value, t, where)
            except PassOptionError:
                continue
        raise PassOptionError(f"{where}: cannot read {value!r} as {typ}")
    if origin is typing.Literal:
        if value not in args:
            raise PassOptionError(f"{where}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    try:
        if typ is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ is int:
            return int(value)
        if typ is float:
            return float(value)
        if typ is str:
            return value
    except ValueError:
        raise PassOptionError(f"{where}: {value!r} is not a valid {typ.__name__}") from None
    raise PassOptionError(f"{where}: unsupported option type {typ}")


def parse_pipeline(text: str) -> list[Pass]:
    """``"a{x=1,y=2},b"`` -> ``[A(x=1, y=2), B()]``; unknown names/options raise."""
    passes: list[Pass] = []
    text = text.strip()
    pos = 0
    while pos < len(text):
        m = _ITEM_RE.match(text, pos)
        if not m or m.end() == pos:
            raise PassOptionError(f"cannot parse pass pipeline at {text[pos:]!r}")
        name, body = m.group(1), m.group(2)
        if name not in pass_names():
            raise PassOptionError(
                f"unknown pass {name!r}; known passes: {', '.join(sorted(pass_names()))}"
            )
        cls = get_pass(name)
        hints = typing.get_type_hints(cls)
        fields = set(cls.option_names())
        kwargs: dict[str, Any] = {}
        for item in filter(None, (s.strip() for s in (body or "").split(","))):
            if "=" not in item:
                raise PassOptionError(f"pass {name}: option {item!r} needs a value (key=value)")
            key, value = (s.strip() for s in item.split("=", 1))
            if key not in fields:
                raise PassOptionError(
                    f"pass {name}: unknown option {key!r}; options: {', '.join(sorted(fields))}"
                )
            kwargs[key] = _convert(value, hints[key], f"pass {name} option {key}")
        try:
            passes.append(cls(**kwargs))
        except (ValueError, TypeError) as e:
            raise PassOptionError(f"pass {name}: {e}") from None
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise PassOptionError(f"expected ',' between passes at {text[pos:]!r}")
            pos += 1
    return passes


def format_pass(p: Pass) -> str:
    opts = ",".join(f"{f.name}={getattr(p, f.name)}" for f in dataclasses.fields(p))  # type: ignore[arg-type]
    return f"{p.name}{{{opts}}}" if opts else p.name


def format_pipeline(passes: list[Pass]) -> str:
    return ",".join(format_pass(p) for p in passes)
