"""masktax.cli.flags: a documented dataclass becomes typer options (switches, ints, comma-separated and
repeated tuples, required fields), and `given` keeps what was given on the command line."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import typer
from typer.testing import CliRunner

from masktax.cli.flags import dataclass_parameters, given, with_parameters
from masktax.probes.options import flag


@dataclass(frozen=True)
class Example:
    name: str = field(metadata=flag("A required string."))
    on: bool = field(default=True, metadata=flag("A switch that defaults to true."))
    off: bool = field(default=False, metadata=flag("A switch that defaults to false."))
    count: int = field(default=3, metadata=flag("An integer."))
    sizes: tuple[int, ...] = field(default=(1, 2), metadata=flag("Comma-separated sizes."))
    tags: tuple[str, ...] | None = field(default=None, metadata=flag("A tag; repeatable.", name="--tag", repeat=True))


def app_and_calls() -> tuple[typer.Typer, list[dict]]:
    calls: list[dict] = []

    def command(**values) -> None:
        calls.append(values)

    app = typer.Typer()
    app.command()(with_parameters(command, dataclass_parameters(Example)))
    return app, calls


def invoke(args: list[str]) -> tuple[object, list[dict]]:
    app, calls = app_and_calls()
    return CliRunner().invoke(app, args, env={"COLUMNS": "300"}), calls  # wide: help lines unwrapped


def test_every_kind_of_field_is_parsed():
    result, calls = invoke(["--name", "x", "--no-on", "--off", "--count", "5", "--sizes", "4,5",
                            "--tag", "a", "--tag", "b"])
    assert result.exit_code == 0, result.output
    (values,) = calls
    assert values == {"name": "x", "on": False, "off": True, "count": 5, "sizes": "4,5", "tags": ["a", "b"]}
    assert given(values, Example) == {**values, "tags": ("a", "b")}  # a repeated flag becomes a tuple
    assert Example(**given(values, Example)).tags == ("a", "b")


def test_flags_left_out_mean_the_dataclass_defaults():
    result, calls = invoke(["--name", "x"])
    assert result.exit_code == 0, result.output
    (values,) = calls
    assert values["on"] is True and values["off"] is False  # switches carry their defaults
    assert values["count"] is None and values["sizes"] is None and not values["tags"]  # None = not given
    assert Example(**given(values, Example)) == Example(name="x")
    assert given({**values, "other": 1}, Example) == {k: v for k, v in values.items() if v is not None and k != "tags"}


def test_a_required_field_and_wrong_types_are_usage_errors():
    result, calls = invoke([])
    assert result.exit_code == 2 and "--name" in result.output and not calls
    result, calls = invoke(["--name", "x", "--count", "many"])
    assert result.exit_code == 2 and "--count" in result.output and not calls
    result, calls = invoke(["--name", "x", "--colour", "red"])
    assert result.exit_code == 2 and "--colour" in result.output and not calls


def test_help_shows_each_flag_with_its_help_and_default():
    result, _ = invoke(["--help"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    for part in ("--name", "--on", "--no-on", "--off", "--count", "--sizes", "--tag", "A required string.",
                 "Comma-separated sizes. (default: 1,2)", "An integer. (default: 3)"):
        assert part in text, part
    assert "--no-off" not in text and "--tags" not in text


def test_parameters_follow_the_fields():
    params = dataclass_parameters(Example)
    assert [p.name for p in params] == [f.name for f in dataclasses.fields(Example)]
    assert [p.annotation for p in params] == [str, bool, bool, int | None, str | None, list[str] | None]
