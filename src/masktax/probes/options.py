"""A probe's options are a frozen dataclass; each field is one flag of `masktax probe <name>`.

A field says how it is shown on the command line with `metadata=flag("help text")` (the flag is
"--" + the field name with dashes, unless `name=` says otherwise), and its default is the probe's
default. `__post_init__` parses and validates, so a library call (`Options(grid="0,2")` or
`Options(grid=(0, 2))`) and the command line give the same values and the same errors. The
parsers below turn a comma-separated flag value (or a sequence) into a validated tuple.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from masktax.errors import MasktaxError
from masktax.tasks.registry import SuiteChoice


def flag(help: str, *, name: str | None = None, repeat: bool = False, stored_if_set: bool = False) -> dict:
    """Field metadata: the flag's help text; its name when it is not "--" + the field name; `repeat`
    for a tuple given by repeating the flag (`--model a --model b`) instead of "a,b"; `stored_if_set`
    for an option config.json holds only when it differs from its default (an option added later:
    earlier run dirs and the default runs' config.json stay as they were)."""
    return {"help": help, "flag": name, "repeat": repeat, "stored_if_set": stored_if_set}


def flag_name(field: dataclasses.Field) -> str:
    """The command-line flag of an options field ("n_masks" -> "--n-masks")."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def to_json(options: object) -> dict:
    """The options as stored in config.json: field order, tuples as lists; a `stored_if_set` option
    only when it is not its default."""
    skip = {f.name for f in dataclasses.fields(options)  # type: ignore[arg-type]
            if f.metadata.get("stored_if_set") and getattr(options, f.name) == f.default}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items() if k not in skip}


def suite_choice(options: object) -> SuiteChoice:
    """The suite a probe's options ask for: their `suite` field and those of `shots`, `labels`, `data`
    they have (masks, locality: `--suite`), else the main suite."""
    names = {f.name for f in dataclasses.fields(options)}  # type: ignore[arg-type]
    if "suite" not in names:
        return SuiteChoice()
    values = dataclasses.asdict(options)  # type: ignore[call-overload]
    return SuiteChoice(values["suite"], values.get("shots"), values.get("labels", "words"), values.get("data"))


def share_grid(value: object, flag_text: str) -> tuple[float, ...]:
    """"0,0.05,0.2" (or a sequence) -> shares of the input length in [0, 1], no repeats."""
    values = pieces(value, flag_text, "0,0.05,0.1,0.2")
    if not values:
        raise MasktaxError(f"{flag_text} is empty; give comma-separated shares such as 0,0.05,0.1,0.2")
    out = []
    for v in values:
        try:
            share = float(v)
        except (TypeError, ValueError):
            raise MasktaxError(f"{flag_text} value '{v}' is not a number") from None
        if not 0 <= share <= 1:
            raise MasktaxError(f"{flag_text} values are shares of the input length in 0..1, got {v}")
        out.append(share)
    return _distinct(tuple(out), flag_text)


def pieces(value: object, flag_text: str, example: str) -> list:
    """"a,b" (or one int, or a sequence) -> its pieces; an empty entry is an error."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str):
        if not value.strip():
            return []
        out = [p.strip() for p in value.split(",")]
        if any(not p for p in out):
            raise MasktaxError(f"{flag_text} '{value}' has an empty entry; give comma-separated values such as {example}")
        return out
    return list(value)  # type: ignore[call-overload]


def int_grid(value: object, probe: str, *, minimum: int = 0, maximum: int | None = None) -> tuple[int, ...]:
    """A `--grid` of integer x values within [minimum, maximum], no repeats."""
    values = pieces(value, "--grid", "0,1,2")
    if not values:
        raise MasktaxError(f"--grid is empty for the {probe} probe")
    hi = "" if maximum is None else f" and at most {maximum}"
    out = _integers(values, "--grid", lambda n: n < minimum or (maximum is not None and n > maximum),
                    lambda n: f"--grid value {n} is out of range for {probe}: at least {minimum}{hi}")
    return _distinct(out, "--grid")


def name_grid(value: object, probe: str, choices: Sequence[str]) -> tuple[str, ...]:
    """A `--grid` of named x values, each one of `choices`, no repeats."""
    values = pieces(value, "--grid", ",".join(choices))
    if not values:
        raise MasktaxError(f"--grid is empty for the {probe} probe")
    for v in values:
        if str(v) not in choices:
            raise MasktaxError(f"--grid value '{v}' is not valid for {probe}; use {','.join(choices)}")
    return _distinct(tuple(str(v) for v in values), "--grid")


def int_list(value: object, flag_text: str, *, minimum: int) -> tuple[int, ...]:
    """"2,4,6" (or an int, or a sequence) -> (2, 4, 6); empty, repeated or too small values are errors."""
    values = pieces(value, flag_text, "2,4,6")
    if not values:
        raise MasktaxError(f"{flag_text} is empty; give comma-separated integers such as 2,4,6")
    out = _integers(values, flag_text, lambda n: n < minimum,
                    lambda n: f"{flag_text} values must be at least {minimum}, got {n}")
    return _distinct(out, flag_text)


def _integers(values: list, flag_text: str, bad, message) -> tuple[int, ...]:
    """The values as integers; MasktaxError for one that is not an integer or is `bad` (then `message(n)`)."""
    out = []
    for v in values:
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise MasktaxError(f"{flag_text} value '{v}' is not an integer") from None
        if bad(n):
            raise MasktaxError(message(n))
        out.append(n)
    return tuple(out)


def name_list(value: object, flag_text: str, choices: Sequence[str]) -> tuple[str, ...]:
    """"a,b" (or a sequence) of names, each one of `choices`, no repeats."""
    values = pieces(value, flag_text, ",".join(choices))
    if not values:
        raise MasktaxError(f"{flag_text} is empty; choose {' or '.join(choices)}")
    for v in values:
        if v not in choices:
            raise MasktaxError(f"{flag_text} '{v}' is unknown; choose one of {', '.join(choices)}")
    return _distinct(tuple(values), flag_text)


def one_int(value: object, flag_text: str, *, minimum: int) -> int:
    """One integer flag value at least `minimum`."""
    try:
        n = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise MasktaxError(f"{flag_text} must be an integer, got '{value}'") from None
    if n < minimum:
        raise MasktaxError(f"{flag_text} must be at least {minimum}, got {n}")
    return n


def _distinct(values: tuple, flag_text: str) -> tuple:
    if len(set(values)) != len(values):
        raise MasktaxError(f"{flag_text} has repeated values: {','.join(map(str, values))}")
    return values
