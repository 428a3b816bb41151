"""What the training commands (`pretrain`, `finetune`, `train-sm`) share around their run."""

from __future__ import annotations

from pathlib import Path

import typer

from masktax.errors import MasktaxError


def require_out(out: Path | None) -> Path:
    """--out is optional on the command group (for its sub-commands) but required to train."""
    if out is None:
        raise MasktaxError("give --out (the run directory)")
    return out


def finish(summary: dict, out: Path, *, say: bool = True) -> None:
    """Say how the run ended on stderr (a stop, a time budget; `say`: only the main process of a
    multi-process run speaks) and exit with its status (0: finished)."""
    from masktax.training.rundir import end_of_run

    status, line = end_of_run(summary, out)
    if line and say:
        typer.echo(f"masktax: {line}", err=True)
    if status:
        raise typer.Exit(status)
