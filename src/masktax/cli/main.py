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
    "a3",
    "card",
    "train_sm",
    "eval",
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


INTERRUPTED = 130  # the shell's status for a process ended by Ctrl-C (128 + SIGINT)
INTERRUPTED_LINE = "masktax: interrupted; rerun the same command to resume"


def _usage_error_types() -> tuple[type[BaseException], ...]:
    """The command-line usage errors of the installed typer: its own (vendored click, typer >= 0.2x)
    and click's (older typer), whichever exist."""
    types: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):
        types.append(typer.TyperException)
    try:
        import click
    except ImportError:  # typer without click
        pass
    else:
        types.append(click.exceptions.ClickException)
    return tuple(types)


def _abort_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [KeyboardInterrupt]
    if hasattr(typer, "Abort"):
        types.append(typer.Abort)
    try:
        import click
    except ImportError:
        pass
    else:
        types.append(click.exceptions.Abort)
    return tuple(types)


def error_line(err: BaseException) -> str:
    """One line for a user-facing problem that is not a MasktaxError (usage, files, encodings)."""
    if isinstance(err, _usage_error_types()):
        text = err.format_message() if hasattr(err, "format_message") else str(err)
        ctx = getattr(err, "ctx", None)
        command = getattr(ctx, "command_path", None) or "masktax"
        if getattr(err, "option_name", None) and type(err).__name__ == "NoSuchOption":
            text = f"No such option: {err.option_name}"  # without click's guesses, which can name hidden flags
        elif text.startswith("No such command") and hasattr(getattr(ctx, "command", None), "list_commands"):
            text = f"{text.rstrip('.')}; choose one of {', '.join(ctx.command.list_commands(ctx))}"
        return f"{text.strip().rstrip('.')} (see '{command} --help')"
    if isinstance(err, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({err.reason} at byte {err.start})"
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror or err}"
    return str(err)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (also used by tests).

    The one error boundary: a MasktaxError, a usage error, an OS error on a file the user named, or a
    file that is not UTF-8 becomes `masktax: error: <one line>` on stderr and exit 2; Ctrl-C becomes
    `masktax: interrupted ...` and exit 130. Anything else is a bug and keeps its traceback.
    """
    try:
        status = app(args=argv, prog_name="masktax", standalone_mode=False)
    except MasktaxError as err:
        print(f"masktax: error: {err}", file=sys.stderr)
        return 2
    except _abort_types():
        print(INTERRUPTED_LINE, file=sys.stderr)
        return INTERRUPTED
    except SystemExit as err:
        return int(err.code or 0) if not isinstance(err.code, str) else 2
    except (*_usage_error_types(), OSError, UnicodeDecodeError) as err:
        print(f"masktax: error: {error_line(err)}", file=sys.stderr)
        return 2
    if status == INTERRUPTED:  # typer turns Ctrl-C inside a command into exit status 130, silently
        print(INTERRUPTED_LINE, file=sys.stderr)
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
