"""`masktax probe PROBE --model M [--model M2 ...] --out DIR`: run one probe (see masktax.probes).

    masktax probe masks --model embedded-mdlm --model embedded-mdlm --adapter none --adapter runs/ft/ce_tv --out runs/masks

`--adapter RUN_DIR` (repeatable) pairs with `--model` in order: a fine-tuning run (`masktax finetune`,
`masktax train-sm`'s final/adapter) applied to that model; `none` skips one, missing ones are none.
"""

from __future__ import annotations

import typer

from masktax.probes import PROBES

PROBE_CHOICES: tuple[str, ...] = tuple(PROBES)


def probe(
    name: str = typer.Argument(..., metavar="PROBE", help=f"Which probe: {', '.join(PROBE_CHOICES)}."),
    model: list[str] = typer.Option(..., "--model", help="Model name, card name or checkpoint dir; repeatable."),
    lm: list[str] = typer.Option(
        None, "--adapter", help="Fine-tuning run dir applied to the --model in the same place; repeatable; 'none' skips."
    ),
    out: str = typer.Option(..., "--out", help="Run directory (resumed if it holds the same config)."),
    n_items: int = typer.Option(1000, "--n-items", help="Test points per dataset (the first N; paper: 1000)."),
    grid: str = typer.Option(None, "--grid", help="Comma-separated x values (default: the probe's grid)."),
    datasets: str = typer.Option(None, "--datasets", help="Comma-separated dataset names (default: all 16)."),
    seed: int = typer.Option(0, "--seed", help="Suite, arrangement and canvas seed."),
    batch_size: str = typer.Option("auto", "--batch-size", help="'auto' (from free memory) or a number."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (bf16 on cuda, fp32 on cpu), float32, bfloat16."),
    fmt: str = typer.Option("auto", "--format", help="auto (chat for instruct models), base or chat."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run a checkpoint's own code."),
    mask_token_id: int = typer.Option(None, "--mask-token-id", help="Mask id for MDLMs whose tokenizer has none."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    steps: str = typer.Option(None, "--steps", help="unmask: decoding steps S, a list such as 2,4,6 (default 40)."),
    order: str = typer.Option(None, "--order", help="unmask: random, confidence or both (default: both)."),
    soft_mask: bool = typer.Option(False, "--soft-mask", help="unmask: soft-masking with the model dir's soft_mask.json."),
    soft_mask_from: str = typer.Option(None, "--soft-mask-from", help="unmask: directory with soft_mask.json."),
    n_masks: int = typer.Option(None, "--n-masks", help="attribution: extra masks after the answer mask (49)."),
    orderings: int = typer.Option(None, "--orderings", help="attribution: random context orderings (30)."),
    questions: int = typer.Option(None, "--questions", help="attribution: test questions per dataset (10)."),
    from_run: str = typer.Option(None, "--from", help="uncertainty: a masks/filler run dir to reuse."),
) -> None:
    """Run a probe on one or more models; writes summary.json, plots/ and report.md under --out."""
    from masktax.probes.config import ProbeConfig, parse_grid, parse_list
    from masktax.probes.run import run_probe

    cfg = ProbeConfig(
        probe=name, models=tuple(model), out=out, n_items=n_items, grid=parse_grid(grid),
        datasets=parse_list(datasets, "--datasets"), seed=seed, batch_size=batch_size, device=device,
        dtype=dtype, format=fmt, trust_remote_code=trust_remote_code, mask_token_id=mask_token_id,
        progress=progress, adapters=tuple(lm) if lm else None,
    )
    options = {"steps": steps, "order": order, "soft_mask": soft_mask or None, "soft_mask_from": soft_mask_from,
               "n_masks": n_masks, "orderings": orderings, "questions": questions, "from_run": from_run}
    root = run_probe(cfg, options=options)
    print(f"masktax: {name} done; report at {root / 'report.md'}")


def register(app: typer.Typer) -> None:
    app.command("probe", help=f"Run a probe ({', '.join(PROBE_CHOICES)}) on one or more models.")(probe)
