"""`masktax train-sm`: soft-masking training [P2] (two-pass step, trained omegas) from a JSON config; `eval`.

    masktax train-sm --config configs/train_sm/embedded.json --out runs/train_sm/embedded --max-minutes 30
    masktax train-sm eval --model before=PATH --model after=runs/train_sm/embedded/final --out runs/sm_eval

Training writes config.json, env.json, metrics.csv (loss, omega_s/a/b, mean lambda), `step-NNNNNN/`
checkpoints and final/ (model, tokenizer, soft_mask.json). Rerunning the same command resumes.
Decode with the trained omegas: `masktax generate --model RUN/final --soft-mask-from RUN/final`.
Exit status (`masktax.training.loop`, `masktax.training.rundir`): 0 when the run finished or
--max-minutes ended it, 130 after Ctrl-C (a checkpoint, no final/), 143 after SIGTERM (final/
marked unfinished), 2 for bad input; every stop says in one line how to resume.
"""

from __future__ import annotations

from pathlib import Path

import typer

from masktax.cli.training_end import finish, require_out

train_sm_app = typer.Typer(
    help="Soft-masking training (train with the options below; or the eval subcommand).",
    invoke_without_command=True,
    no_args_is_help=False,
)


@train_sm_app.callback()
def train_sm(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="JSON config, e.g. configs/train_sm/embedded.json."),
    out: Path = typer.Option(None, "--out", help="Run directory; rerunning the same command resumes."),
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
    if ctx.invoked_subcommand is not None:
        return
    from masktax.training.soft_masking.config import load_config
    from masktax.training.soft_masking.train import run

    out = require_out(out)
    cfg = load_config(
        config, init_from=init_from, tuning=tuning, data=data, p_sm=p_sm, k=k, lr=lr, omega_lr=omega_lr,
        batch_size=batch_size, max_steps=max_steps, save_every=save_every, log_every=log_every, seed=seed,
    )
    summary = run(cfg, out, device=device, max_minutes=max_minutes, progress=progress)  # Ctrl-C: KeyboardInterrupt
    sm = summary["soft_mask"]
    typer.echo(
        f"{cfg.name}: step {summary['step']}, omega_s {sm['omega_s']:.3g}, omega_a {sm['omega_a']:.3g}, "
        f"omega_b {sm['omega_b']:.3g}, {summary['tokens']} tokens, {summary['elapsed_s']:.0f}s -> {out / 'final'}"
    )
    finish(summary, out)


@train_sm_app.command("eval")
def eval_cmd(
    model: list[str] = typer.Option(..., "--model", help="LABEL=PATH or PATH of an MDLM (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Directory for sm_eval.json, sm_eval.png and sm_eval.md."),
    soft_mask_from: Path | None = typer.Option(
        None, "--soft-mask-from", help="soft_mask.json dir for models without one (else the untrained init)."
    ),
    episodes: int = typer.Option(64, "--episodes", help="Held-out episodes for the validation bound."),
    t_samples: int = typer.Option(4, "--t-samples", help="Seeded t's (and masks) per episode."),
    queries: int = typer.Option(64, "--queries", help="Held-out queries for few-step decoding."),
    gen_length: int = typer.Option(8, "--gen-length", help="Tokens decoded per query."),
    stage: str = typer.Option("S4", "--stage", help="Curriculum stage of the held-out episodes."),
    batch: int = typer.Option(16, "--batch", help="Queries per decoding batch."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
) -> None:
    """Validation bound (plain / two-pass) and few-step decoding, soft-masking off / on (the mask tax with
    feedback is `masktax probe unmask --soft-mask-from RUN/final`)."""
    from masktax.training.soft_masking.evaluate import EvalConfig, markdown, run

    cfg = EvalConfig(
        model=tuple(model), out=str(out), soft_mask_from=None if soft_mask_from is None else str(soft_mask_from),
        episodes=episodes, t_samples=t_samples, queries=queries, gen_length=gen_length, stage=stage, batch=batch,
        seed=seed, device=device,
    )
    typer.echo(markdown(run(cfg)))


def register(app: typer.Typer) -> None:
    app.add_typer(train_sm_app, name="train-sm")


if __name__ == "__main__":  # `python -m masktax.cli.train_sm ...`: the same as `masktax train-sm ...`
    import sys

    from masktax.cli.main import main

    sys.exit(main(["train-sm", *sys.argv[1:]]))
