"""Reading and checking the frozen JSON configs of the training runs (pretrain, finetune, train-sm).

Each run config is a frozen dataclass validated in `__post_init__`; these helpers hold what the
three share: reading the JSON file (one-line errors, `_comment` ignored), rejecting unknown
fields, raising the first failed check, and `replace` that ignores the flags a user left unset.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from masktax.errors import MasktaxError

T = TypeVar("T")
COMMENT = "_comment"  # a free-text key every config file may carry


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The JSON object in `path`, without its `_comment`; MasktaxError if missing, invalid or not an object."""
    file = Path(path)
    if not file.is_file():
        raise MasktaxError(f"config file '{path}' does not exist")
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise MasktaxError(f"config '{path}' is not valid JSON ({err.msg} at line {err.lineno})") from err
    if not isinstance(data, dict):
        raise MasktaxError(f"config '{path}' must hold a JSON object")
    data.pop(COMMENT, None)
    return data


def check_fields(cls: type, data: Mapping[str, Any], what: str) -> None:
    """MasktaxError naming the first key of `data` that is not a field of dataclass `cls`."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise MasktaxError(f"unknown {what} config field '{unknown[0]}'")


def raise_first(checks: Iterable[tuple[bool, str]]) -> None:
    """Raise MasktaxError with the message of the first (ok, message) pair whose ok is False."""
    for ok, msg in checks:
        if not ok:
            raise MasktaxError(msg)


def replace_given(cfg: T, changes: Mapping[str, Any]) -> T:
    """A copy of frozen dataclass `cfg` with the non-None `changes` applied (unset CLI flags are None)."""
    return dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[type-var]
