"""Entry point of the `masktax` console script.

Every command module exposes `register(app)`; `COMMAND_MODULES` lists them explicitly (no
import-time magic). A `MasktaxError` anywhere becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import sys

import typer

from masktax.errors import MasktaxError

# Modules under masktax.cli that add commands to the app, in --help order.
COMMAND_MODULES = (
    "demo",
    "suite",
    "probe",
    "report",
    "models",
    "generate",
    "pretrain",
    "finetune",
    "compare",
    "train_sm",
)

app = typer.Typer(
    name="masktax",
    help="Measure the mask tax of masked diffusion LMs, fix it, and decode around it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from masktax import __version__

        print(f"masktax {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Measure the mask tax of masked diffusion LMs, fix it, and decode around it."""


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"masktax.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"masktax.cli.{name}":
                continue  # command group not built yet
            raise
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (also used by tests)."""
    try:
        app(args=argv, standalone_mode=False)
    except MasktaxError as err:
        print(f"masktax: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("masktax: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except SystemExit as err:  # typer/click exit codes
        return int(err.code or 0)
    except Exception as err:  # click usage errors carry their own message
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            return err.exit_code
        if isinstance(err, click.exceptions.Abort):
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
