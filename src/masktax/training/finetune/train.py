"""Mask-agnostic fine-tuning ([P1]): LoRA or full fine-tuning of an MDLM with the MA-loss.

    masktax finetune --model embedded-mdlm --data synthetic --out runs/ft/ce_tv --full
    accelerate launch -m masktax.cli.main finetune --model GSAI-ML/LLaDA-8B-Base --data orca.jsonl --out runs/ft/llada

One optimiser step: `grad_accum` micro-batches of `batch_size` examples per process; each example
becomes its two views (`ma_views.py`), both views of the whole micro-batch go through the model in
ONE forward pass (`[2b, l]`), and `mask_agnostic_loss` gives (total, ce, tv). Accelerate runs the
same loop on CPU, one GPU or several (DDP); gradients of non-final micro-batches are not synced.

Global example k of the run (k = 0, 1, ...) is pair `perm_e[k mod N]` of epoch e = k // N (a
seeded permutation per epoch) with its own seeded views, so the data of an optimiser step is the
same however it is split over processes and accumulation, and a resumed run continues exactly.

Run dir: config.json, env.json, data_stats.json (kept/truncated/dropped pairs), metrics.csv
(total, ce, tv, lr, max_masks per step), tensorboard/ (if installed), `step-NNNNNN/` checkpoints
(trainable weights, optimiser, RNG, step and data position; `training.loop`), and final/ (the peft
adapter, or the full model in HF layout, plus tokenizer, finetune_config.json and
training_state.json, whose `finished` says whether the run reached max_steps). The learning rate
schedule is a pure function of the step, so the step is the scheduler's whole state. Rerunning the
same command resumes from the latest checkpoint, byte-identical to an uninterrupted run whatever
stopped it (SIGKILL included). Ctrl-C writes the checkpoint and no `final/` (`run` raises
KeyboardInterrupt); SIGTERM and the time budget write `final/` marked unfinished; the processes of
a multi-process run agree on when to stop (`training.loop`: how a run ends; `training.rundir`: the
exit status).
The data file is read before the run dir is created, so a bad `--data` leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from masktax.errors import MasktaxError
from masktax.models.finetuned import FINETUNE_CONFIG, save_model
from masktax.models.load import resolve_device
from masktax.models.loaded import LoadedModel
from masktax.training.finetune.config import FinetuneConfig
from masktax.training.finetune.instruct_data import Pair, encode_pairs, read_rows, resolve_prompt_format
from masktax.training.finetune.lora import TrainableState, add_lora
from masktax.training.finetune.ma_views import build_example_views, collate_views, max_masks_at
from masktax.training.finetune.mask_agnostic_loss import mask_agnostic_loss
from masktax.training.loop import (
    MetricsLog,
    StepLoop,
    check_budget,
    latest_checkpoint,
    load_checkpoint,
    lr_at,
    open_tensorboard,
    save_checkpoint,
    write_env,
    write_json,
)
from masktax.training.rundir import check_out_dir, open_training_dir, write_final

METRICS = ("step", "total", "ce", "tv", "lr", "max_masks", "grad_norm", "examples", "elapsed_s")


class ExampleOrder:
    """Global example index -> training pair: a seeded permutation of the N pairs per epoch."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed
        self._perms: dict[int, list[int]] = {}

    def __call__(self, index: int) -> int:
        epoch = index // self.n
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            self._perms = {epoch: torch.randperm(self.n, generator=g).tolist()}
        return self._perms[epoch][index % self.n]


def weights_dtype(cfg: FinetuneConfig, device: torch.device) -> str:
    """The dtype the base model is loaded in: `cfg.dtype`, or for "auto" bf16 for LoRA on CUDA, else fp32."""
    return cfg.dtype if cfg.dtype != "auto" else ("bfloat16" if device.type == "cuda" and not cfg.full else "float32")


def load_model(cfg: FinetuneConfig, device: torch.device) -> LoadedModel:
    """The base model as a LoadedModel; an MDLM with a mask token, EOS and a tokenizer."""
    from masktax.models import load

    lm = load(cfg.model, device=device, dtype=weights_dtype(cfg, device), trust_remote_code=cfg.trust_remote_code,
                   mask_token_id=cfg.mask_token_id)
    if lm.kind != "mdlm":
        raise MasktaxError(f"mask-agnostic fine-tuning needs a masked diffusion LM; '{cfg.model}' is kind '{lm.kind}'")
    lm.require_mask("mask-agnostic fine-tuning")
    if lm.tokenizer is None or lm.eos_id is None:
        raise MasktaxError(f"'{cfg.model}' ships no tokenizer with an EOS token; fine-tuning needs both")
    return lm


def read_data(cfg: FinetuneConfig) -> list[dict[str, str]]:
    """The run's rows (`instruct_data.read_rows`)."""
    return read_rows(cfg.data, split=cfg.data_split, limit=cfg.max_examples, synthetic_n=cfg.synthetic_n,
                     seed=cfg.seed)


def prepare_pairs(cfg: FinetuneConfig, lm: LoadedModel, rows: list[dict[str, str]] | None = None
                  ) -> tuple[list[Pair], dict]:
    """Tokenize the data (`rows`, else read now) with the length rule of `instruct_data`."""
    rows = read_data(cfg) if rows is None else rows
    fmt = resolve_prompt_format(cfg.prompt_format, lm.tokenizer, cfg.variant)
    max_context = min(cfg.max_context, lm.max_length)
    pairs, stats = encode_pairs(rows, lm.tokenizer, fmt=fmt, eos_id=int(lm.eos_id),
                                max_context=max_context, min_answer_tokens=cfg.min_answer_tokens)
    stats.update({"prompt_format": fmt, "max_context": max_context, "source": cfg.data})
    return pairs, stats


def micro_batch_loss(
    cfg: FinetuneConfig, fwd: LoadedModel, pairs: Sequence[Pair], order: ExampleOrder, indices: Sequence[int],
    *, max_now: int, beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, ce, tv) of the examples with global `indices`: both views in one forward pass."""
    views = [
        build_example_views(
            pairs[order(k)].prompt, pairs[order(k)].answer, index=k, seed=cfg.seed, p_range=cfg.p_range,
            max_context=min(cfg.max_context, fwd.max_length), max_masks_now=max_now,
            mask_id=int(fwd.mask_id), eos_id=int(fwd.eos_id),
        )
        for k in indices
    ]
    batch = collate_views(views, eos_id=int(fwd.eos_id))
    dev = fwd.device
    att = None if bool(batch.attention.all()) else batch.attention.to(dev)  # [2b, l]
    logits = fwd.logits(batch.ids.to(dev), att)  # [2b, l, V] aligned
    b = len(views)
    return mask_agnostic_loss(logits[:b], logits[b:], batch.targets.to(dev), batch.masked.to(dev),
                              batch.p.to(dev), alpha=cfg.alpha, beta=beta)


def run(cfg: FinetuneConfig, out: str | Path, *, device: str = "auto", max_minutes: float | None = None,
        progress: bool = True) -> dict:
    """Fine-tune (or resume) into `out`; returns the final state (step, losses, data position, finished).

    Raises KeyboardInterrupt after Ctrl-C (checkpoint written, no final/); see the module docstring.
    """
    from accelerate import Accelerator

    check_budget(max_minutes)
    out = check_out_dir(out)
    beta, lr = cfg.resolved_beta_lr
    cpu = resolve_device(device).type == "cpu"
    mp = cfg.mixed_precision if cfg.mixed_precision != "auto" else ("no" if cpu else "bf16")
    if cpu and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true"):
        raise MasktaxError("FSDP (accelerate launch --use_fsdp) needs GPUs; on CPU use DDP: "
                           "accelerate launch --multi_gpu --num_processes N")
    acc = Accelerator(cpu=cpu, mixed_precision=mp)
    main = acc.is_main_process
    dev = torch.device("cpu") if acc.device.type == "cpu" else acc.device  # multi-CPU reports "cpu:<rank>"
    rows = read_data(cfg)
    if main:
        # consent is the invocation's, not part of the run: resuming without the flag is the same run
        open_training_dir(out, cfg.to_dict(), free=("max_steps", "trust_remote_code"))
        write_env(out, dev, seed=cfg.seed, dtype=weights_dtype(cfg, dev), world_size=acc.num_processes)
    acc.wait_for_everyone()

    lm = load_model(cfg, dev)
    pairs, stats = prepare_pairs(cfg, lm, rows)
    if main:
        write_json(out / "data_stats.json", stats)
    torch.manual_seed(cfg.seed)  # LoRA init
    model = lm.model
    if cfg.full:
        model.requires_grad_(True)
    else:
        model = add_lora(model, lm.extra.get("family", ""), rank=cfg.lora_rank, alpha=cfg.lora_alpha,
                         dropout=cfg.lora_dropout, targets=cfg.lora_targets)
    if cfg.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable()
    model.train()
    state_view = TrainableState(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    prepared, opt = acc.prepare(model, opt)
    fwd = dataclasses.replace(lm, model=prepared)

    step, next_example, elapsed = 0, 0, 0.0
    ckpt = latest_checkpoint(out)
    if ckpt is not None:
        saved = load_checkpoint(ckpt, state_view, opt, dev)
        step, next_example, elapsed = saved["step"], saved["data"]["next_example"], saved["elapsed_s"]
    order = ExampleOrder(len(pairs), cfg.seed)
    world, rank, bs = acc.num_processes, acc.process_index, cfg.batch_size
    global_batch = bs * world * cfg.grad_accum
    log = MetricsLog(out / "metrics.csv", METRICS, resume_step=step if ckpt else None) if main else None
    tb = open_tensorboard(out / "tensorboard", purge_step=step, say_if_missing=True) if main else None
    last: dict = {}

    def snapshot() -> dict:
        return {"step": step, "elapsed_s": elapsed + loop.seconds(), "losses": last,
                "data": {"next_example": next_example, "global_batch": global_batch, "pairs": len(pairs)},
                "world_size": world, "beta": beta, "lr": lr}

    def save(at: int) -> None:
        if main:
            save_checkpoint(out, at, state_view, opt, snapshot(), keep=cfg.keep_checkpoints)
        acc.wait_for_everyone()

    def agree(code: int) -> int:
        """The largest stop code of all processes (StepLoop): every process stops at the same step."""
        if world == 1:
            return code
        t = torch.tensor([code], device=acc.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return int(t.item())

    loop = StepLoop(out, step=step, max_steps=cfg.max_steps, save_every=cfg.save_every, save=save,
                       max_minutes=max_minutes, progress=progress and main, writer=tb, agree=agree)
    with loop:
        while loop.running(step):
            lr_now = lr_at(step, lr=lr, warmup=cfg.warmup_steps, schedule=cfg.schedule,
                              max_steps=cfg.max_steps, min_ratio=cfg.min_lr_ratio)
            for group in opt.param_groups:
                group["lr"] = lr_now
            max_now = max_masks_at(step, min_masks=cfg.min_masks, max_masks=cfg.max_masks,
                                   curriculum_steps=cfg.curriculum_steps)
            sums = torch.zeros(3, device=dev)  # total, ce, tv
            for m in range(cfg.grad_accum):
                first = next_example + m * world * bs + rank * bs
                sync = m == cfg.grad_accum - 1
                ctx = contextlib.nullcontext() if sync else acc.no_sync(prepared)
                with ctx:
                    total, ce, tv = micro_batch_loss(cfg, fwd, pairs, order, range(first, first + bs),
                                                     max_now=max_now, beta=beta)
                    acc.backward(total / cfg.grad_accum)
                sums += torch.stack([total.detach(), ce.detach(), tv.detach()]).float() / cfg.grad_accum
            norm = acc.clip_grad_norm_(params, cfg.grad_clip) if cfg.grad_clip > 0 else None
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            next_example += global_batch
            mean = acc.reduce(sums, reduction="mean").tolist()
            last = {"total": mean[0], "ce": mean[1], "tv": mean[2]}
            if main and (step % cfg.log_every == 0 or step == cfg.max_steps):
                row = {"step": step, **last, "lr": lr_now, "max_masks": max_now,
                       "grad_norm": None if norm is None else float(norm), "examples": next_example,
                       "elapsed_s": elapsed + loop.seconds()}
                log.write(row)
                if tb is not None:
                    for k in ("total", "ce", "tv", "lr", "max_masks"):
                        tb.add_scalar(f"train/{k}", row[k], step)
            loop.tick(step, loss=f"{mean[0]:.4f}", ce=f"{mean[1]:.3f}", tv=f"{mean[2]:.3f}")
    loop.raise_if_interrupted()
    state = snapshot() | loop.outcome()
    if main:
        write_final(out, lambda path: save_final(cfg, acc.unwrap_model(prepared), lm.tokenizer, path), state)
    acc.wait_for_everyone()
    return state


def save_final(cfg: FinetuneConfig, model: torch.nn.Module, tokenizer, path: Path) -> None:
    """final/: the peft adapter (LoRA) or the whole model (full), the tokenizer and the config."""
    path.mkdir(parents=True, exist_ok=True)
    if cfg.full:
        save_model(model, tokenizer, path)
    else:
        model.save_pretrained(str(path))
        tokenizer.save_pretrained(path)
    write_json(path / FINETUNE_CONFIG, cfg.to_dict())
