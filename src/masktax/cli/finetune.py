"""`masktax finetune`: mask-agnostic fine-tuning ([P1]), plus `make-data` and `merge`.

    masktax finetune --model embedded-mdlm --data synthetic --full --out runs/ft/ce_tv
    masktax finetune --config configs/finetune/llada_base_ce_tv.json --data orca.jsonl --out runs/ft/llada
    accelerate launch -m masktax.cli.main finetune --model ... --out ...   # several GPUs (DDP)
    masktax finetune make-data data/instruct.jsonl --n 4000 --seed 0
    masktax finetune merge runs/ft/llada merged/llada-ma

A base model's own code runs only with `--trust-remote-code` on the command line; a --config file
that sets trust_remote_code is refused. Exit status of training (`masktax.training.loop`,
`masktax.training.rundir`): 0 when the run finished or --max-minutes ended it, 130 after Ctrl-C (a
checkpoint, no final/), 143 after SIGTERM (final/ marked unfinished), 2 for bad input; every stop
says in one line how to resume.
"""

from __future__ import annotations

from pathlib import Path

import typer

from masktax.cli.training_end import finish, require_out

finetune_app = typer.Typer(
    help="Mask-agnostic fine-tuning (train with the options below; or the make-data / merge subcommands).",
    invoke_without_command=True,
    no_args_is_help=False,
)


@finetune_app.callback()
def finetune(
    ctx: typer.Context,
    model: str = typer.Option(None, "--model", help="Base MDLM: name, card name or checkpoint dir."),
    out: Path = typer.Option(None, "--out", help="Run directory; rerunning the same command resumes."),
    config: Path = typer.Option(None, "--config", help="JSON config (configs/finetune/*.json); flags override it."),
    data: str = typer.Option(None, "--data", help="OpenOrca-layout .jsonl/.parquet, a datasets name, or 'synthetic'."),
    variant: str = typer.Option(None, "--variant", help="base | instruct: picks beta and lr from the paper's table."),
    beta: float = typer.Option(None, "--beta", help="TV weight (0 = CE-only ablation); default from the table."),
    alpha: float = typer.Option(None, "--alpha", help="CE weight (paper: 0.1)."),
    lr: float = typer.Option(None, "--lr", help="Learning rate; default from the table."),
    full: bool = typer.Option(None, "--full/--lora", help="Full fine-tuning instead of LoRA (small models)."),
    lora_targets: str = typer.Option(None, "--lora-targets", help="Comma-separated module names (default: per family)."),
    lora_rank: int = typer.Option(None, "--lora-rank", help="LoRA rank (paper: 64)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Optimiser steps (paper: 930)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Examples per device per micro-batch (paper: 3)."),
    grad_accum: int = typer.Option(None, "--grad-accum", help="Micro-batches per optimiser step (paper: 43)."),
    max_context: int = typer.Option(None, "--max-context", help="Prompt + answer + masks (paper: 1024)."),
    min_masks: int = typer.Option(None, "--min-masks", help="Curriculum's starting maximum of trailing masks (32)."),
    max_masks: int = typer.Option(None, "--max-masks", help="Curriculum's final maximum of trailing masks (600)."),
    curriculum_steps: int = typer.Option(None, "--curriculum-steps", help="Steps to reach --max-masks (5000)."),
    max_examples: int = typer.Option(None, "--max-examples", help="Use the first N rows of the data."),
    prompt_format: str = typer.Option(None, "--prompt-format", help="auto | chat | plain."),
    save_every: int = typer.Option(None, "--save-every", help="Checkpoint every N optimiser steps."),
    seed: int = typer.Option(None, "--seed", help="Seed of the data order, views and LoRA init."),
    gradient_checkpointing: bool = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing"),
    trust_remote_code: bool = typer.Option(None, "--trust-remote-code", help="Run a checkpoint's own code."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available) or cpu."),
    max_minutes: float = typer.Option(None, "--max-minutes", help="Wall-clock budget of this invocation."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Fine-tune an MDLM with the mask-agnostic loss; writes config, metrics, checkpoints and final/."""
    if ctx.invoked_subcommand is not None:
        return
    from masktax.errors import MasktaxError
    from masktax.training.finetune.config import load_config
    from masktax.training.finetune.train import run

    out = require_out(out)
    targets = None
    if lora_targets is not None:
        targets = tuple(t.strip() for t in lora_targets.split(",") if t.strip())
        if not targets:
            raise MasktaxError("--lora-targets is empty")
    cfg = load_config(
        config, model=model, data=data, variant=variant, beta=beta, alpha=alpha, lr=lr, full=full,
        lora_targets=targets, lora_rank=lora_rank, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum,
        max_context=max_context, min_masks=min_masks, max_masks=max_masks, curriculum_steps=curriculum_steps,
        max_examples=max_examples, prompt_format=prompt_format, save_every=save_every, seed=seed,
        gradient_checkpointing=gradient_checkpointing, trust_remote_code=trust_remote_code,
    )
    state = run(cfg, out, device=device, max_minutes=max_minutes, progress=progress)  # Ctrl-C: KeyboardInterrupt
    from accelerate import PartialState

    main_process = PartialState().is_main_process
    if main_process:
        losses = state["losses"]
        loss_txt = ", ".join(f"{k} {v:.4f}" for k, v in losses.items()) or "no step run"
        typer.echo(f"masktax: finetune step {state['step']} ({loss_txt}) -> {Path(out) / 'final'}")
    finish(state, out, say=main_process)


@finetune_app.command("make-data")
def make_data(
    out: Path = typer.Argument(..., metavar="OUT.jsonl", help="Where to write the JSONL file."),
    n: int = typer.Option(4000, "--n", help="Number of rows."),
    seed: int = typer.Option(0, "--seed", help="Seed (same seed and n, same file)."),
) -> None:
    """Write the synthetic instruction set (embedded vocabulary, OpenOrca layout) as JSONL."""
    from masktax.errors import MasktaxError
    from masktax.training.finetune.instruct_data import write_jsonl
    from masktax.training.finetune.synthetic_data import make_rows

    if n < 1:
        raise MasktaxError("--n must be at least 1")
    path = write_jsonl(make_rows(n, seed=seed), out)
    typer.echo(f"masktax: wrote {n} rows to {path}")


@finetune_app.command("merge")
def merge_cmd(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="A finetune run dir (or its final/)."),
    out: Path = typer.Argument(..., metavar="OUT", help="Directory for the merged checkpoint."),
    device: str = typer.Option("cpu", "--device", help="Where to merge (cpu or cuda)."),
    trust_remote_code: bool = typer.Option(
        False, "--trust-remote-code", help="Run the base model's own code (never taken from the run dir)."
    ),
) -> None:
    """Merge the run's LoRA adapter into its base model; writes a checkpoint `masktax.models.load` reads."""
    from masktax.models.finetuned import merge_finetune

    path = merge_finetune(run_dir, out, device=device, trust_remote_code=trust_remote_code)
    typer.echo(f"masktax: merged checkpoint at {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(finetune_app, name="finetune")
