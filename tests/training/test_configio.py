"""Reading and checking the training runs' JSON configs: the file, unknown fields, the first failed check."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from masktax.errors import MasktaxError
from masktax.training.configio import check_fields, raise_first, read_config_file, replace_given


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
