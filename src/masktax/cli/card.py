"""`masktax card --model M [--model M2 ...] --out DIR [--budget quick|paper]`: the mask-sensitivity card.

    masktax card --model embedded-mdlm --out runs/card --budget quick

The protocol, its two budgets and every number of the card: docs/card.md; the work is
`masktax.report.card.run_card` (one probe run dir per step under --out, resumed on a rerun).
"""

from __future__ import annotations

import typer


def card(
    model: list[str] = typer.Option(..., "--model", help="Model name, card name or checkpoint dir; repeatable "
                                                          "(the models go side by side)."),
    out: str = typer.Option(..., "--out", help="Directory for the probe runs, card.json, card.md and card.png "
                                               "(resumed if it holds the same protocol)."),
    budget: str = typer.Option("quick", "--budget", help="quick (a CPU in minutes) or paper ([P1]'s sizes)."),
    batch_size: str = typer.Option("auto", "--batch-size", help="'auto' (from free memory) or a number."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run a checkpoint's own code."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Run the fixed mask-sensitivity protocol on the models; write card.md, card.json and card.png."""
    from masktax.report.card import CardConfig, run_card

    cfg = CardConfig(models=tuple(model), out=out, budget=budget, batch_size=batch_size, device=device,
                     trust_remote_code=trust_remote_code, progress=progress)
    root = run_card(cfg)
    typer.echo(f"masktax: card at {root / 'card.md'}")


def register(app: typer.Typer) -> None:
    app.command("card")(card)
