"""Typed JSON records: dataclasses whose fields are the keys of a JSON object, in order.

A :class:`Record` writes itself with :meth:`Record.to_json` and reads itself back with
:meth:`Record.from_json`, nested records (and lists, tuples and dicts of them) by the field's
annotation.  Field metadata says where a field's JSON differs from plain ``name: value``:

- ``key("pass")``: its JSON key (a field cannot be called ``pass`` or ``float``);
- :data:`OMIT`: left out when None (otherwise written, ``null`` when None); ``omit(when)``:
  left out when None and ``when(record)`` holds;
- :data:`FLATTEN`: a dict whose items are merged into the object (where report.json has
  open-ended keys: a layer's code facts); unknown keys read back into it.

Reading checks what it can name: a key no field has (and no flattened dict takes), a missing
key of :attr:`Record.REQUIRED`, a value of the wrong JSON type, each a one-line
:class:`~nnlcc.errors.BadInputError` naming the record and the key.  A field missing from the
JSON gets its default (None where it has none: a report written before the field existed).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, get_args, get_origin

from nnlcc.errors import BadInputError

__all__ = ["FLATTEN", "OMIT", "Record", "key", "omit"]

#: field metadata: left out of the JSON when None
OMIT: Mapping[str, Any] = {"omit": True}
#: field metadata: a dict merged into the object (unknown keys read back into it)
FLATTEN: Mapping[str, Any] = {"flatten": True}


def key(name: str, **more: Any) -> dict[str, Any]:
    """Field metadata: the field's JSON key is ``name`` (plus ``more`` metadata)."""
    return {"json": name, **more}


def omit(when: Callable[[Any], bool]) -> dict[str, Any]:
    """Field metadata: left out when None and ``when(record)`` holds."""
    return {"omit": when}


class Record:
    """Base of the typed records of report.json (subclasses are dataclasses)."""

    #: JSON keys :meth:`from_json` requires (the others default when missing)
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this record, keys in field order."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("flatten"):
                out.update({k: _encode(v) for k, v in value.items()})
                continue
            drop = f.metadata.get("omit")
            if value is None and (drop is True or (callable(drop) and drop(self))):
                continue
            out[f.metadata.get("json", f.name)] = _encode(value)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        """The record :meth:`to_json` wrote (see the module docstring for the checks)."""
        name = cls.__name__
        klass: type = cls  # (a type, hashable: the cached layouts' key)
        if not isinstance(obj, Mapping):
            raise BadInputError(f"report.json: {name} must be a JSON object, not {obj!r:.60}")
        missing = [k for k in cls.REQUIRED if k not in obj]
        if missing:
            raise BadInputError(
                f"report.json: {name} lacks {', '.join(missing)}; re-run nnlcc compile to"
                " rewrite it"
            )
        fields, flat = _layout(klass)
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, value in obj.items():
            found = fields.get(k)
            if found is not None:
                kwargs[found.name] = _decode(_hints(klass)[found.name], value, f"{name}.{k}")
            elif flat is not None:
                item = get_args(_hints(klass)[flat.name])[1]
                extra[k] = _decode(item, value, f"{name}.{k}")
            else:
                raise BadInputError(
                    f"report.json: {name} has no key {k!r}; re-run nnlcc compile to rewrite it"
                )
        for f in fields.values():
            if f.name not in kwargs and _no_default(f):
                kwargs[f.name] = None
        if flat is not None:
            kwargs[flat.name] = extra
        return cls(**kwargs)


def _no_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _layout(cls: type) -> tuple[dict[str, dataclasses.Field[Any]], dataclasses.Field[Any] | None]:
    """JSON key -> field of the plain fields, and the flattened field (if any)."""
    plain: dict[str, dataclasses.Field[Any]] = {}
    flat = None
    for f in dataclasses.fields(cls):
        if f.metadata.get("flatten"):
            flat = f
        else:
            plain[f.metadata.get("json", f.name)] = f
    return plain, flat


def _encode(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


_SCALARS: dict[type, tuple[type, ...]] = {
    str: (str,),
    int: (int,),
    float: (int, float),
    bool: (bool,),
}


def _decode(tp: Any, value: Any, where: str) -> Any:
    """``value`` (parsed JSON) as type ``tp``; BadInputError naming ``where`` otherwise."""
    origin = get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in get_args(tp):
            return None
        options = [a for a in get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return _decode(options[0], value, where)
        for option in options:  # e.g. a bool or a string: the first that takes it
            try:
                return _decode(option, value, where)
            except BadInputError:
                continue
        raise BadInputError(f"report.json: {where} has an unexpected value {value!r:.60}")
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_json(value)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise BadInputError(f"report.json: {where} must be a list, not {value!r:.60}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise BadInputError(f"report.json: {where} must have {len(args)} items")
            return tuple(_decode(a, v, where) for a, v in zip(args, value, strict=True))
        items = [_decode(args[0], v, where) for v in value] if args else list(value)
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise BadInputError(f"report.json: {where} must be an object, not {value!r:.60}")
        item = get_args(tp)[1] if get_args(tp) else Any
        return {k: _decode(item, v, f"{where}.{k}") for k, v in value.items()}
    allowed = _SCALARS.get(tp)
    if allowed is not None:
        if value is None or isinstance(value, bool) is not (tp is bool):
            raise BadInputError(f"report.json: {where} must be a {tp.__name__}, not {value!r}")
        if not isinstance(value, allowed):
            raise BadInputError(f"report.json: {where} must be a {tp.__name__}, not {value!r}")
        return value
    raise TypeError(f"{where}: no JSON reading for type {tp!r}")
