"""`masktax compare`: several probe runs' curves in one plot and one table, or two points paired.

    masktax compare RUN_A RUN_B ... --out DIR [--label A --label B] [--overlay]
    masktax compare --paired RUN_DIR:SERIES:X RUN_DIR:SERIES:X [--model NAME] [--out DIR]

The work is `masktax.report.compare` (relative degradation per curve, paired 95% CI over datasets).
"""

from __future__ import annotations

from pathlib import Path

import typer

from masktax.report.compare import CompareConfig
from masktax.report.compare import compare as run_compare


def compare(
    run_dirs: list[Path] = typer.Argument(None, metavar="RUN_DIR...", help="Probe run dirs holding summary.json."),
    out: Path = typer.Option(None, "--out", help="Where to write compare.png, compare.csv, compare.md."),
    label: list[str] = typer.Option(None, "--label", help="Names for the runs, in order (default: dir names)."),
    overlay: bool = typer.Option(False, "--overlay", help="One panel per series with every run's curves in it."),
    paired: tuple[str, str] | None = typer.Option(
        None, "--paired", metavar="RUN_DIR:SERIES:X RUN_DIR:SERIES:X",
        help="Two points of runs on the same items: A - B with its paired 95% CI over datasets (with --out and "
             "no RUN_DIR, also compare their runs)."),
    model: str = typer.Option(None, "--model", help="The model of the --paired points (when a run has several)."),
) -> None:
    """Put several probe runs' curves in one plot and one table, with each curve's relative degradation;
    or difference two points of runs on the same items."""
    cfg = CompareConfig(run_dirs=tuple(run_dirs or ()), out=out, labels=tuple(label or ()), overlay=overlay,
                        paired=paired, model=model)
    for line in run_compare(cfg):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
