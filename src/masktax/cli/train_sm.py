"""`masktax train-sm`: soft-masking training [P2] (two-pass step, trained omegas) from a JSON config.

    masktax train-sm --config configs/train_sm/embedded.json --out runs/train_sm/embedded --max-minutes 30

Writes config.json, env.json, metrics.csv (loss, omega_s/a/b, mean lambda), `step-NNNNNN/`
checkpoints and final/ (model, tokenizer, soft_mask.json). Rerunning the same command resumes.
Decode with the trained omegas: `masktax generate --model RUN/final --soft-mask-from RUN/final`.
"""

from __future__ import annotations

from pathlib import Path

import typer


def train_sm(
    config: Path | None = typer.Option(None, "--config", help="JSON config, e.g. configs/train_sm/embedded.json."),
    out: Path = typer.Option(..., "--out", help="Run directory; rerunning the same command resumes."),
    init_from: str | None = typer.Option(None, "--init-from", help="Model to continue: checkpoint dir or name."),
    tuning: str | None = typer.Option(None, "--tuning", help="full | lora | dora (peft adapter on q,k,v,o)."),
    data: str | None = typer.Option(None, "--data", help="OpenOrca-layout JSON/JSONL instead of the corpus."),
    p_sm: float | None = typer.Option(None, "--p-sm", help="Probability of the two-pass soft-masked step (0.8)."),
    k: int | None = typer.Option(None, "--k", help="Top-k tokens in the blend: 3 language, 1 code."),
    lr: float | None = typer.Option(None, "--lr", help="Backbone (or adapter) learning rate."),
    omega_lr: float | None = typer.Option(None, "--omega-lr", help="Learning rate of the omegas."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Sequences per optimizer step."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps."),
    max_minutes: float | None = typer.Option(None, "--max-minutes", help="Wall-clock budget of this invocation."),
    save_every: int | None = typer.Option(None, "--save-every", help="Checkpoint interval in steps."),
    log_every: int | None = typer.Option(None, "--log-every", help="metrics.csv row interval in steps."),
    seed: int | None = typer.Option(None, "--seed", help="Override the config's seed."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available), cpu, cuda, cuda:1, ..."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train an MDLM with soft-masking [P2]; saves the trained omegas as soft_mask.json next to the model."""
    from masktax.errors import MasktaxError
    from masktax.training.train_sm import SMConfig, load_sm_config, run

    base = load_sm_config(config) if config is not None else SMConfig()
    cfg = base.replace(
        init_from=init_from, tuning=tuning, data=data, p_sm=p_sm, k=k, lr=lr, omega_lr=omega_lr,
        batch_size=batch_size, max_steps=max_steps, save_every=save_every, log_every=log_every, seed=seed,
    )
    if max_minutes is not None and max_minutes <= 0:
        raise MasktaxError("--max-minutes must be positive")
    summary = run(cfg, out, device=device, max_minutes=max_minutes, progress=progress)
    sm = summary["soft_mask"]
    typer.echo(
        f"{cfg.name}: step {summary['step']}, omega_s {sm['omega_s']:.3g}, omega_a {sm['omega_a']:.3g}, "
        f"omega_b {sm['omega_b']:.3g}, {summary['tokens']} tokens, {summary['elapsed_s']:.0f}s -> {out / 'final'}"
    )


def register(app: typer.Typer) -> None:
    app.command("train-sm")(train_sm)


if __name__ == "__main__":  # `python -m masktax.cli.train_sm ...`: the same as `masktax train-sm ...`
    import sys

    from masktax.cli.main import main

    sys.exit(main(["train-sm", *sys.argv[1:]]))
