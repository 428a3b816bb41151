"""`masktax eval`: lm-eval tasks on masktax models, swept over the number of appended masks.

    masktax eval --model embedded-mdlm --tasks masktax_suite_next --extra-masks 0,10,50,200 --out runs/eval
    masktax eval --model GSAI-ML/LLaDA-8B-Base --tasks arc_challenge --model-args mc_num=128 --batch-size 32

A thin command over lm-eval's own evaluator (the `eval` extra: pip install 'masktax[eval]'); the
work is `masktax.lmeval.sweep.run`. The run dir resumes per (model, task, extra masks).
"""

from __future__ import annotations

import typer

from masktax.errors import MasktaxError


def eval_command(
    model: list[str] = typer.Option(..., "--model", help="Model (card name, embedded name or checkpoint dir); repeatable."),
    tasks: str = typer.Option(..., "--tasks", help="Comma-separated lm-eval tasks or groups (probe suite: masktax_suite_next)."),
    extra_masks: str = typer.Option("0", "--extra-masks", help="Comma-separated numbers of masks to append, e.g. 0,10,50,200."),
    out: str = typer.Option("runs/eval", "--out", help="Run directory (resumable)."),
    model_args: str = typer.Option("", "--model-args", help="More MasktaxLM model_args: mc_num=32,sampler=dream,..."),
    include_path: list[str] = typer.Option([], "--include-path", help="Another directory of task YAMLs; repeatable."),
    limit: float | None = typer.Option(None, "--limit", help="Documents per task (quick runs; not for real numbers)."),
    num_fewshot: int | None = typer.Option(None, "--num-fewshot", help="Few-shot examples (default: the task's)."),
    batch_size: str = typer.Option("16", "--batch-size", help="Rows per forward pass, or auto."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ..."),
    apply_chat_template: bool = typer.Option(False, "--apply-chat-template", help="Render prompts with the chat template."),
    fewshot_as_multiturn: bool = typer.Option(False, "--fewshot-as-multiturn", help="Few-shot examples as chat turns."),
    gen_kwargs: str | None = typer.Option(None, "--gen-kwargs", help="lm-eval's --gen_kwargs, e.g. max_gen_toks=64."),
    metadata: str | None = typer.Option(None, "--metadata", help='JSON for the tasks, e.g. {"suite_n_test": 100}.'),
    seed: int = typer.Option(0, "--seed", help="Seeds lm-eval and the Monte Carlo mask draws."),
    cache_requests: bool = typer.Option(False, "--cache-requests", help="lm-eval's cache of built requests."),
) -> None:
    """Run lm-eval tasks through masktax models, with N masks appended (a run dir with a plot per task)."""
    try:
        from masktax.lmeval.sweep import EvalConfig, run
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] == "lm_eval":
            raise MasktaxError("masktax eval needs lm-eval: pip install 'masktax[eval]'") from None
        raise
    cfg = EvalConfig(models=tuple(model), tasks=tuple(t.strip() for t in tasks.split(",")), out=out,
                     extra_masks=extra_masks, model_args=model_args, include_path=tuple(include_path), limit=limit,
                     num_fewshot=num_fewshot, batch_size=batch_size, device=device,
                     apply_chat_template=apply_chat_template, fewshot_as_multiturn=fewshot_as_multiturn,
                     gen_kwargs=gen_kwargs, metadata=metadata, seed=seed, cache_requests=cache_requests)
    root = run(cfg)
    print(f"masktax: wrote {root / 'report.md'} (summary.json, summary.csv, plots/)")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
