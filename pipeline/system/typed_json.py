"""Read a JSON document into a typed dataclass, field by field, or say which field is wrong.

Records on disk (a run's ``config.json``, a chapter's ``chapter.json``) can be edited by hand.
A reader that trusts them fails far from the cause (``export`` listed the classes of
``"cat"`` as "c, a, t"); this one checks every value against its field's type hint and names
the file and the field. Supported hints: ``str``, ``int`` (not ``bool``), ``float`` (an
``int`` is accepted), ``bool``, ``Any``, ``X | None``, ``list[X]``, ``tuple[X, ...]``,
``dict[str, X]`` and nested dataclasses. Unknown fields are refused too: they mean another
writer, or a typo.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from pipeline.errors import PipelineError

T = TypeVar("T")


def read_typed(hint: type[T] | Any, document: Any, source: str, what: str = "record") -> T:
    """``document`` as a ``hint`` (a dataclass, or a hint such as ``dict[str, list[float]]``);
    a PipelineError naming ``source`` and the field when a value has the wrong type, a
    required field is missing or one is unknown."""
    try:
        return _convert(hint, document, "")
    except _Wrong as wrong:
        raise PipelineError(f"{source}: damaged {what}: {wrong}; restore the file or train the "
                            "run again") from None


class _Wrong(Exception):
    pass


def _convert(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        problems = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, path)
            except _Wrong as wrong:
                problems.append(str(wrong))
        raise _Wrong(problems[0] if len(problems) == 1 else
                     f"`{path}` is {value!r}, which is none of {_name(hint)}")
    if dataclasses.is_dataclass(hint):
        return _dataclass(hint, value, path)
    if origin in (list, tuple):
        args = typing.get_args(hint)
        if not isinstance(value, list):
            raise _Wrong(f"`{path}` should be a list, got {value!r}")
        items = [_convert(args[0] if args else Any, item, f"{path}[{i}]")
                 for i, item in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        value_hint = typing.get_args(hint)[1] if typing.get_args(hint) else Any
        if not isinstance(value, dict):
            raise _Wrong(f"`{path}` should be an object, got {value!r}")
        return {key: _convert(value_hint, item, _join(path, key)) for key, item in value.items()}
    return _scalar(hint, value, path)


def _scalar(hint: Any, value: Any, path: str) -> Any:
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise _Wrong(f"`{path}` should be {_name(hint)}, got {value!r}")
    return value


def _dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise _Wrong(f"`{path or cls.__name__}` should be an object, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise _Wrong(f"unknown field `{_join(path, unknown[0])}`")
    values = {}
    for name, field in fields.items():
        if name not in value:
            if field.default is dataclasses.MISSING and \
                    field.default_factory is dataclasses.MISSING:
                raise _Wrong(f"the field `{_join(path, name)}` is missing")
            continue
        values[name] = _convert(hints[name], value[name], _join(path, name))
    return cls(**values)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_name(option) for option in typing.get_args(hint))
    names = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))
