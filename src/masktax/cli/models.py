"""`masktax models`: the table of known model names (MODEL_CARDS) and whether embedded weights exist."""

from __future__ import annotations

import typer

from masktax.models.catalog import models_table


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models() -> None:
        """List the model names masktax knows (any local checkpoint directory also works)."""
        print(models_table())
