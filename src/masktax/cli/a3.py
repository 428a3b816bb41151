"""`masktax a3 RUN_DIR... --out DIR`: [P1] appendix A.3, gain from few to many shots vs the mask drop.

    masktax a3 runs/a3-5 runs/a3-25 --out runs/a3 [--few 5 --many 25 --low-x 1 --high-x 200]

The work is `masktax.report.a3` (docs/suites.md).
"""

from __future__ import annotations

from pathlib import Path

import typer

from masktax.report.a3 import A3Config, run_a3


def a3(
    run_dirs: list[Path] = typer.Argument(..., metavar="RUN_DIR...", help="masks runs of an appendix suite (--suite, --shots)."),
    out: Path = typer.Option(None, "--out", help="Where to write a3.md, a3.csv, a3.json and a3.png."),
    few: int = typer.Option(5, "--few", help="Shots of the few-shot runs ([P1]: 5)."),
    many: int = typer.Option(25, "--many", help="Shots of the many-shot runs ([P1]: 25)."),
    low_x: int = typer.Option(1, "--low-x", help="Extra masks of the reference point ([P1]: 1)."),
    high_x: int = typer.Option(200, "--high-x", help="Extra masks of the damaged point ([P1]: 200)."),
) -> None:
    """Per task, the gain from few to many shots against the drop from low-x to high-x extra masks ([P1] A.3)."""
    cfg = A3Config(run_dirs=tuple(run_dirs), out=out, few=few, many=many, low_x=low_x, high_x=high_x)
    for line in run_a3(cfg):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("a3")(a3)
