"""Typer parameters from documented dataclass fields (`masktax.probes.options.flag` metadata).

A command whose flags are a config dataclass's fields gets them from here, so the dataclass is the
one place a flag's name, type, default and help are written. Types on the command line: a bool is
a switch (`--x`, or `--x/--no-x` when it defaults to true), an int an integer, a tuple a
comma-separated string (or a repeated flag with `repeat=True`), anything else a string; the
dataclass's `__post_init__` parses and validates. A flag left out means the dataclass default.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import typer

from masktax.probes.options import flag_name


def _cli_type(field: dataclasses.Field) -> type:
    text = str(field.type).replace(" ", "")
    if field.metadata.get("repeat"):
        return list[str]
    if text == "bool":
        return bool
    if text in ("int", "int|None"):
        return int
    return str


def _default_text(field: dataclasses.Field) -> str:
    value = field.default
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def field_parameter(field: dataclasses.Field, *, required: bool = False) -> inspect.Parameter:
    """The typer parameter of one field (default None = not given, except for switches)."""
    cli_type = _cli_type(field)
    name = flag_name(field)
    help_text = field.metadata.get("help", "")
    if cli_type is bool:
        decl = f"{name}/--no-{name[2:]}" if field.default is True else name
        option = typer.Option(field.default, decl, help=help_text)
    elif required:
        option = typer.Option(..., name, help=help_text)
    else:
        shown = "" if field.default in (None, dataclasses.MISSING) else f" (default: {_default_text(field)})"
        option = typer.Option(None, name, help=help_text + shown, show_default=False)
    annotation = cli_type if cli_type is bool or required else cli_type | None
    return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def dataclass_parameters(*types: type) -> list[inspect.Parameter]:
    """One parameter per field of each dataclass, fields without a default required."""
    return [
        field_parameter(f, required=f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        for t in types for f in dataclasses.fields(t)
    ]


def with_parameters(func: Callable[..., None], params: list[inspect.Parameter]) -> Callable[..., None]:
    """`func(**values)` with the given parameters as its signature (what typer reads)."""
    func.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    func.__annotations__ = {p.name: p.annotation for p in params}
    return func


def given(values: dict, data_type: type) -> dict:
    """The values of `data_type`'s fields that were given on the command line (None = not given)."""
    names = {f.name for f in dataclasses.fields(data_type)}
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in names and v is not None}
