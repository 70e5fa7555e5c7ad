"""Typed configuration from YAML or the command line: fill a frozen dataclass, checking every value.

Task files, metric options and per-run overrides are plain data; a value of the wrong type ("hot" for a
temperature, `maybe` for a flag, `[null]` for stop strings) must be a one-line error naming the key, never
a silent coercion or a traceback deep inside a model call. Supported field types: bool, int, float, str,
``X | None``, ``tuple[X, ...]`` (a YAML list, or one scalar), ``Mapping[str, ...]`` and ``Any``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Iterable, Mapping

from mmbench.errors import MMBenchError

MAX_DEPTH = 64  # nesting beyond this in a config or data file is refused (hostile input, not a real file)


def fill(cls: type, raw: Mapping[str, Any], where: str, ignore: Iterable[str] = (), noun: str = "key") -> Any:
    """An instance of the frozen dataclass ``cls`` from ``raw``; keys in ``ignore`` are skipped, any other
    unknown key gets "did you mean", every value is checked against its field's type."""
    if not isinstance(raw, Mapping):
        raise MMBenchError(f"{where}: expected a mapping of keys, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    ignore = set(ignore)
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        if key in ignore:
            continue
        if key not in fields:
            names = sorted(set(fields) | ignore)
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else (f"accepted: {', '.join(names)}" if names else
                                                               f"it takes no {noun}s")
            raise MMBenchError(f"{where}: unknown {noun} {key!r}; {hint}")
        values[key] = coerce(value, hints[key], f"{where}: {noun} {key!r}")
    try:
        return cls(**values)
    except TypeError as exc:  # a required field missing
        raise MMBenchError(f"{where}: {exc}") from exc


def coerce(value: Any, hint: Any, what: str) -> Any:
    """``value`` checked (and lists turned into tuples) against the type ``hint``; MMBenchError if it does
    not fit."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        check_plain(value, what)
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return coerce(value, option, what)
            except MMBenchError as exc:
                errors.append(str(exc))
        raise MMBenchError(errors[0] if len(errors) == 1 else f"{what} must be one of "
                           f"{' / '.join(_name(o) for o in options)}, got {value!r}")
    if origin is tuple:
        item = args[0] if args else Any
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise MMBenchError(f"{what} must be a list, got {_short(value)}")
        return tuple(coerce(v, item, f"{what} entry") for v in value)
    if origin in (Mapping, dict, typing.Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise MMBenchError(f"{what} must be a mapping, got {_short(value)}")
        check_plain(value, what)
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise MMBenchError(f"{what} must be true or false, got {_short(value)}")
        return value
    if hint in (int, float):
        kind = "an integer" if hint is int else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MMBenchError(f"{what} must be {kind}, got {_short(value)}")
        if isinstance(value, int) and abs(value) >= 2 ** 63:  # (also: float() of it would overflow)
            raise MMBenchError(f"{what} is out of range, got {_short(value)}")
        if not math.isfinite(value):
            raise MMBenchError(f"{what} must be finite, got {value!r}")
        if hint is int and value != int(value):
            raise MMBenchError(f"{what} must be {kind}, got {value!r}")
        return hint(value)
    if hint is str:
        if not isinstance(value, str):
            raise MMBenchError(f"{what} must be a string, got {_short(value)}")
        return value
    return value


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_plain(value: Any, what: str, depth: int = 0, seen: set[int] | None = None) -> None:
    """Refuse self-referencing (YAML anchors pointing at themselves) or absurdly deep structures: one line
    instead of a RecursionError later."""
    if depth > MAX_DEPTH:
        raise MMBenchError(f"{what} is nested more than {MAX_DEPTH} levels deep; a task or data file never is")
    if isinstance(value, (list, tuple, dict)):
        seen = set() if seen is None else seen
        if id(value) in seen:
            raise MMBenchError(f"{what} refers to itself (a YAML anchor used inside itself); write it out")
        seen.add(id(value))
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            check_plain(child, what, depth + 1, seen)
        seen.discard(id(value))


def check_range(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise MMBenchError(f"{where}: {message}")
