"""`masktax pretrain`: train (or resume) an embedded model from a JSON config; `snapshot` of a running one.

    masktax pretrain --config configs/embedded/mdlm.json --out runs/pretrain/mdlm --max-minutes 8
    masktax pretrain snapshot runs/pretrain/mdlm /tmp/mdlm-snapshot

Exit status (`masktax.training.loop`, `masktax.training.rundir`): 0 when the run finished, or when
--max-minutes ended it (a line says how to continue; final/ is marked unfinished); 130 after Ctrl-C
(a checkpoint, no final/, one line saying how to resume); 143 after SIGTERM (a checkpoint and
final/ marked unfinished, one line naming the step and how to resume); 2 for bad input.
"""

from __future__ import annotations

from pathlib import Path

import typer

from masktax.cli.training_end import finish, require_out

pretrain_app = typer.Typer(
    help="Pretrain an embedded model (train with the options below; or the snapshot subcommand).",
    invoke_without_command=True,
    no_args_is_help=False,
)


@pretrain_app.callback()
def pretrain(
    ctx: typer.Context,
    config: Path = typer.Option(None, "--config", help="JSON config, e.g. configs/embedded/mdlm.json."),
    out: Path = typer.Option(None, "--out", help="Run directory; rerunning the same command resumes."),
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
    if ctx.invoked_subcommand is not None:
        return
    from masktax.errors import MasktaxError
    from masktax.training.pretrain.train import run, run_config

    if config is None:
        raise MasktaxError("give --config (a JSON config, e.g. configs/embedded/mdlm.json)")
    out = require_out(out)
    cfg = run_config(config, out, max_steps=max_steps, seed=seed, init_from=init_from, stop_gate=stop_gate,
                     suite_items=suite_items, stop_on=stop_on, decay_start=decay_start, decay_steps=decay_steps)
    summary = run(cfg, out, device=device, max_minutes=max_minutes, progress=progress)  # Ctrl-C: KeyboardInterrupt
    gate = summary["curriculum"]["last_gate"]
    gate_txt = "n/a" if gate is None else f"{gate:.3f}"
    typer.echo(
        f"{cfg.name}: step {summary['step']}, stage {summary['stage_name']}, gate {gate_txt}, "
        f"{summary['tokens']} tokens, {summary['elapsed_s']:.0f}s -> {out / 'final'}"
    )
    finish(summary, out)


@pretrain_app.command("snapshot")
def snapshot(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A pretraining run dir (it may still be training)."),
    out: Path = typer.Argument(..., metavar="OUT", help="Directory for the loadable checkpoint."),
) -> None:
    """Write the run's newest step-NNNNNN/ checkpoint as a loadable model (final/'s layout), mid-training."""
    from masktax.training.pretrain.snapshot import snapshot_run

    ckpt, state = snapshot_run(run_dir, out)
    typer.echo(f"{out}: {ckpt.name}, stage {state.get('stage_name')}, last gate {state['curriculum']['last_gate']}")


def register(app: typer.Typer) -> None:
    app.add_typer(pretrain_app, name="pretrain")


if __name__ == "__main__":  # `python -m masktax.cli.pretrain ...`: the same as `masktax pretrain ...`
    import sys

    from masktax.cli.main import main

    sys.exit(main(["pretrain", *sys.argv[1:]]))
