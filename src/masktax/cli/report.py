"""`masktax report DIR`: rebuild summary, plots and report.md from a run dir's items.jsonl."""

from __future__ import annotations

from pathlib import Path

import typer


def report(run_dir: str = typer.Argument(..., metavar="DIR", help="A probe run dir, or a demo dir of runs.")) -> None:
    """Rebuild summary.json, summary.csv, plots/*.png and report.md from the stored items."""
    from masktax.errors import MasktaxError
    from masktax.report.build import is_run_dir, rebuild, rebuild_combined

    root = Path(run_dir)
    if not root.is_dir():
        raise MasktaxError(f"{root} is not a directory")
    if is_run_dir(root):
        rebuild(root)
    else:
        rebuild_combined(root)
    print(f"masktax: report at {root / 'report.md'}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
