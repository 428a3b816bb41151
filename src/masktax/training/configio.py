"""Reading and checking the frozen JSON configs of the training runs (pretrain, finetune, train-sm).

Each run config is a frozen dataclass validated in `__post_init__`; these helpers hold what the
three share: reading the JSON file (one-line errors, `_comment` ignored), `build` (the one
validation path of every training config: unknown fields refused, each value checked against its
field's annotation, lists turned into the tuples the annotations name, nested configs built the
same way), raising the first failed check, and `replace` that ignores the flags a user left unset.

Consent to run a checkpoint's own code is given only on the command line of the person running
the command (`--trust-remote-code`): a config file is input like a data file, so one that sets
`trust_remote_code` is refused (`read_config_file`) rather than obeyed.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from masktax.errors import MasktaxError
from masktax.results.store import parse_json_file

T = TypeVar("T")
COMMENT = "_comment"  # a free-text key every config file may carry
CONSENT = "trust_remote_code"  # never taken from a file: only the command line's --trust-remote-code grants it


def read_config_file(path: str | Path, *, consent_flag: str | None = None) -> dict[str, Any]:
    """The JSON object in `path`, without its `_comment`; MasktaxError if missing, not UTF-8,
    invalid, not an object, or if it sets `trust_remote_code` (module docstring; the error points
    to `consent_flag`, the command's own flag, when it has one)."""
    file = Path(path)
    if not file.is_file():
        raise MasktaxError(f"config file '{path}' does not exist")
    data = parse_json_file(file, f"config '{path}'")
    if not isinstance(data, dict):
        raise MasktaxError(f"config '{path}' must hold a JSON object")
    if data.get(CONSENT) not in (None, False):
        hint = f" and pass {consent_flag} on the command line" if consent_flag else " (this command never runs it)"
        raise MasktaxError(
            f"config '{path}' sets {CONSENT}; a config file cannot consent to running a checkpoint's own code: "
            f"remove it from the file{hint}"
        )
    data.pop(COMMENT, None)
    return data


def check_fields(cls: type, data: Mapping[str, Any], what: str) -> None:
    """MasktaxError naming the first key of `data` that is not a field of dataclass `cls`."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise MasktaxError(f"unknown {what} config field '{unknown[0]}'")


def build(cls: type[T], data: Any, *, source: str, what: str, prefix: str = "") -> T:
    """An instance of config dataclass `cls` from the JSON value `data`: `values`, then every required
    field present, then `cls(**values)` (whose `__post_init__` checks ranges and choices)."""
    kw = values(cls, data, source=source, what=what, prefix=prefix)
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and f.name not in kw:
            raise MasktaxError(f"{source}: {what} config field '{prefix}{f.name}' is missing")
    return cls(**kw)


def values(cls: type, data: Any, *, source: str, what: str, prefix: str = "") -> dict[str, Any]:
    """The fields in JSON object `data`, checked against config dataclass `cls` (some may be absent).

    Refuses unknown fields and any value whose type is not its field's annotation: int (not a
    bool), float (an int is accepted and made a float), bool, str, None in an optional, tuples
    (`tuple[X, Y]` of that length, `tuple[X, ...]` of any), unions, and nested config dataclasses
    (built by `build`). Lists become tuples. Errors are one line naming `source` (the file), the
    field (dotted for nested ones) and the expected type.
    """
    if not isinstance(data, dict):
        what_it = f"{source}: field '{prefix.rstrip('.')}'" if prefix else source
        raise MasktaxError(f"{what_it} must be a JSON object, got {_shown(data)}")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise MasktaxError(f"{source}: unknown {what} config field '{prefix}{unknown[0]}'")
    hints = typing.get_type_hints(cls)
    return {k: _value(hints[k], v, source=source, what=what, name=f"{prefix}{k}") for k, v in data.items()}


def _value(tp: Any, value: Any, *, source: str, what: str, name: str) -> Any:
    """`value` checked against annotation `tp` (and converted: lists to tuples, ints to floats)."""
    ok, out = _convert(tp, value, source=source, what=what, name=name)
    if not ok:
        raise MasktaxError(f"{source}: field '{name}' must be {_expected(tp)}, got {_shown(value)}")
    return out


def _convert(tp: Any, value: Any, *, source: str, what: str, name: str) -> tuple[bool, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True, value
    if tp is type(None):
        return value is None, None
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            ok, out = _convert(arm, value, source=source, what=what, name=name)
            if ok:
                return True, out
        return False, None
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), float(value) if _number(value) else None
    if tp is str:
        return isinstance(value, str), value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False, None
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                return False, None
            parts = list(zip(args, value, strict=True))
        else:
            parts = [(args[0] if args else Any, v) for v in value]
        items = []
        for i, (arm, v) in enumerate(parts):
            ok, out = _convert(arm, v, source=source, what=what, name=f"{name}[{i}]")
            if not ok:
                return False, None
            items.append(out)
        return True, tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp):
        # a nested config: its own errors name the nested field, so they are raised, not folded in
        return True, build(tp, value, source=source, what=what, prefix=f"{name}.")
    return True, value  # an annotation these configs do not use: left to __post_init__


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _expected(tp: Any) -> str:
    """`tp` in words: "an integer", "a number or null", "a list of 2 numbers", ..."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        words = [_expected(a) for a in args if a is not type(None)]
        return " or ".join(words) + (" or null" if type(None) in args else "")
    if origin in (tuple, list):
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            kinds = {_plural(a) for a in args}
            return f"a list of {len(args)} {kinds.pop()}" if len(kinds) == 1 else f"a list of {len(args)} values"
        return f"a list of {_plural(args[0]) if args else 'values'}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if tp in names:
        return names[tp]
    return "a JSON object" if dataclasses.is_dataclass(tp) else str(tp)


def _plural(tp: Any) -> str:
    names = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
    return names.get(tp, "objects" if dataclasses.is_dataclass(tp) else "values")


def _shown(value: Any) -> str:
    """A JSON value as the user wrote it, shortened to fit one line."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def raise_first(checks: Iterable[tuple[bool, str]]) -> None:
    """Raise MasktaxError with the message of the first (ok, message) pair whose ok is False."""
    for ok, msg in checks:
        if not ok:
            raise MasktaxError(msg)


def replace_given(cfg: T, changes: Mapping[str, Any]) -> T:
    """A copy of frozen dataclass `cfg` with the non-None `changes` applied (unset CLI flags are None)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[type-var]
