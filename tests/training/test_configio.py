"""Reading and checking the training runs' JSON configs: the file, consent, unknown fields, each value's type,
the first failed check."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from masktax.errors import MasktaxError
from masktax.training.configio import (
    build,
    check_fields,
    raise_first,
    read_config_file,
    replace_given,
    values,
)


@dataclass(frozen=True)
class _Cfg:
    a: int = 1
    b: str = "x"


def test_config_helpers(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"_comment": "why", "a": 2}))
    assert read_config_file(f) == {"a": 2}
    for text, message in (("[1]", "must hold a JSON object"), ("{oops", "is not valid JSON")):
        f.write_text(text)
        with pytest.raises(MasktaxError, match=message):
            read_config_file(f)
    with pytest.raises(MasktaxError, match="does not exist"):
        read_config_file(tmp_path / "none.json")
    with pytest.raises(MasktaxError, match="unknown demo config field 'c'"):
        check_fields(_Cfg, {"a": 1, "c": 2}, "demo")
    with pytest.raises(MasktaxError, match="^second$"):
        raise_first([(True, "first"), (False, "second"), (False, "third")])
    assert replace_given(_Cfg(), {"a": 5, "b": None}) == _Cfg(a=5, b="x")


@dataclass(frozen=True)
class _Inner:
    n: int = 1


@dataclass(frozen=True)
class _Typed:
    name: str
    rate: float = 0.1
    flag: bool = False
    pair: tuple[float, float] = (0.0, 1.0)
    names: tuple[str, ...] = ()
    cap: int | None = None
    either: int | tuple[int, int] = 0
    inner: _Inner = field(default_factory=_Inner)


def test_build_checks_each_value_against_its_annotation() -> None:
    cfg = build(_Typed, {"name": "x", "rate": 1, "pair": [0, 2], "names": ["a"], "either": [2, 3], "inner": {"n": 4}},
                source="config 'c.json'", what="demo")
    assert cfg == _Typed(name="x", rate=1.0, pair=(0.0, 2.0), names=("a",), either=(2, 3), inner=_Inner(4))
    assert isinstance(cfg.rate, float) and build(_Typed, {"name": "x", "cap": None}, source="s", what="demo").cap is None
    bad = {
        "rate": ("abc", "field 'rate' must be a number, got \"abc\""),
        "flag": (1, "field 'flag' must be true or false, got 1"),
        "pair": (0.5, "field 'pair' must be a list of 2 numbers, got 0.5"),
        "names": (["a", 1], "field 'names' must be a list of strings"),
        "cap": (True, "field 'cap' must be an integer or null, got true"),
        "either": ([1], "field 'either' must be an integer or a list of 2 integers"),
        "inner": ({"n": "4"}, "field 'inner.n' must be an integer"),
        "extra": (1, "unknown demo config field 'extra'"),
    }
    for key, (value, message) in bad.items():
        with pytest.raises(MasktaxError, match=f"^config 'c.json': {re.escape(message)}"):
            build(_Typed, {"name": "x", key: value}, source="config 'c.json'", what="demo")
    with pytest.raises(MasktaxError, match="field 'name' is missing"):
        build(_Typed, {}, source="s", what="demo")
    assert values(_Typed, {"rate": 2}, source="s", what="demo") == {"rate": 2.0}  # some fields only


def test_a_config_file_cannot_consent_to_remote_code(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"trust_remote_code": True}))
    with pytest.raises(MasktaxError, match="pass --trust-remote-code on the command line"):
        read_config_file(f, consent_flag="--trust-remote-code")
    with pytest.raises(MasktaxError, match="this command never runs it"):
        read_config_file(f)
    f.write_text(json.dumps({"trust_remote_code": False}))  # declining is fine
    assert read_config_file(f) == {"trust_remote_code": False}
    f.write_bytes(b'{"a": "caf\xe9"}')
    with pytest.raises(MasktaxError, match="is not UTF-8 text"):
        read_config_file(f)
