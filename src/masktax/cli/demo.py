"""`masktax demo`: every probe on the embedded models, one combined report (runs/demo/report.md).

The steps, their quick options and the models are masktax.report.demo's; this module parses and calls.
"""

from __future__ import annotations

from pathlib import Path

import typer

from masktax.report.demo import DEMO_N_ITEMS


def demo(
    out: str = typer.Option("runs/demo", "--out", help="Directory for the runs and the combined report."),
    n_items: int = typer.Option(DEMO_N_ITEMS, "--n-items", help="Test points per dataset."),
    full: bool = typer.Option(False, "--full", help="The whole suite: 1000 items per dataset (slow on CPU)."),
    datasets: str = typer.Option(None, "--datasets", help="Comma-separated dataset names (default: all 16)."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Run every probe on the embedded models (a subset of the suite unless --full); write one report."""
    from masktax.report.demo import run_demo

    report = run_demo(Path(out), n_items=n_items, full=full, datasets=datasets, seed=seed, progress=progress,
                      device=device)
    print(f"masktax demo: report at {report}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
