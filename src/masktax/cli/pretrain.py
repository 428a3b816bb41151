"""`masktax pretrain`: train (or resume) an embedded model from a JSON config."""

from __future__ import annotations

from pathlib import Path

import typer


def pretrain(
    config: Path = typer.Option(..., "--config", help="JSON config, e.g. configs/embedded/mdlm.json."),
    out: Path = typer.Option(..., "--out", help="Run directory; rerunning the same command resumes."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available), cpu, cuda, cuda:1, ..."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps."),
    max_minutes: float | None = typer.Option(None, "--max-minutes", help="Wall-clock budget of this invocation."),
    seed: int | None = typer.Option(None, "--seed", help="Override the config's seed."),
    init_from: str | None = typer.Option(None, "--init-from", help="Override the config's init_from (HF dir)."),
    stop_gate: float | None = typer.Option(
        None, "--stop-gate", help="Stop once the final stage's gate accuracy reaches this 3 times in a row."
    ),
    suite_items: int | None = typer.Option(
        None, "--suite-items", help="Score the probe suite (N test points per dataset) at every final-stage gate."
    ),
    stop_on: str | None = typer.Option(None, "--stop-on", help="What --stop-gate applies to: gate or suite."),
    decay_start: int | None = typer.Option(
        None, "--decay-start", help="Anneal from this step on (schedule 'wsd'); a resumed run may add it from its "
        "latest checkpoint on."
    ),
    decay_steps: int | None = typer.Option(None, "--decay-steps", help="Length of the anneal (default 1000)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Pretrain an embedded MDLM / AR model with the gated curriculum; writes config, metrics, checkpoints, final/."""
    from masktax.errors import MasktaxError
    from masktax.training.pretrain import run
    from masktax.training.pretrain_config import load_config

    cfg = load_config(config).replace(max_steps=max_steps, seed=seed, init_from=init_from, stop_gate=stop_gate,
                                          suite_items=suite_items, stop_on=stop_on, decay_start=decay_start,
                                          decay_steps=decay_steps, schedule="wsd" if decay_start is not None else None)
    stored = out / "config.json"
    if decay_start is None and stored.is_file():  # resuming an annealing run keeps its anneal
        import json

        old = json.loads(stored.read_text())
        if old.get("schedule") == "wsd":
            cfg = cfg.replace(schedule="wsd", decay_start=old.get("decay_start"),
                              decay_steps=decay_steps or old.get("decay_steps"), min_lr_ratio=old.get("min_lr_ratio"))
    if max_minutes is not None and max_minutes <= 0:
        raise MasktaxError("--max-minutes must be positive")
    if decay_steps is not None and cfg.schedule != "wsd":
        raise MasktaxError("--decay-steps needs --decay-start (or a run that already anneals)")
    summary = run(cfg, out, device=device, max_minutes=max_minutes, progress=progress)
    gate = summary["curriculum"]["last_gate"]
    gate_txt = "n/a" if gate is None else f"{gate:.3f}"
    typer.echo(
        f"{cfg.name}: step {summary['step']}, stage {summary['stage_name']}, gate {gate_txt}, "
        f"{summary['tokens']} tokens, {summary['elapsed_s']:.0f}s -> {out / 'final'}"
    )


def register(app: typer.Typer) -> None:
    app.command("pretrain")(pretrain)


if __name__ == "__main__":  # `python -m masktax.cli.pretrain ...`: the same as `masktax pretrain ...`
    import sys

    from masktax.cli.main import main

    sys.exit(main(["pretrain", *sys.argv[1:]]))
