"""Soft-masking training run [P2]: continue an MDLM with the two-pass step and trained omegas.

    masktax train-sm --config configs/train_sm/embedded.json --out runs/train_sm/embedded

Full fine-tuning of a small native checkpoint (the embedded MDLM: LLaDA- or Dream-layout), or a
LoRA / DoRA adapter (peft; [P2] used DoRA r = 16 on q, k, v, o for Dream-7B) on a large one,
through accelerate (device placement, bf16 autocast on CUDA, backward, clipping). Data: episodes
of the embedded training corpus at one curriculum stage (default the full task, S4), with
exactly the MDLM loss of `masktax pretrain` (`pretrain.train.step_loss`); or, with `data` set,
instruction data read and tokenized as mask-agnostic fine-tuning reads it (`instruct_data`: an
OpenOrca-layout file (JSON list or JSONL rows with `system_prompt`, `question`, `response`), a
`datasets` name, or "synthetic"), the prompt rendered with the model's chat template (plain text
when it has none), with LLaDA's SFT form of the loss (`two_pass.instruction_loss`). Either loss's
forward is the two-pass `TwoPassModel` on a batch whose per-step coin came up (probability p_sm),
else one plain pass.

Optimizer: AdamW with two learning rates, backbone (or adapter) `lr` and the omegas
`omega_lr`, same warm-up and schedule. The run dir holds config.json, env.json, metrics.csv
(loss, omega_s, omega_a, omega_b, mean lambda over the soft-masked positions, ...; also
TensorBoard event files in tb/ when tensorboard is installed), `step-NNNNNN/` checkpoints (the
trainable tensors, omegas included, optimizer and RNG state: exact resume) and `final/`: an
HF-layout model (for adapters: merged into the base weights, the adapter itself in
final/adapter/), its tokenizer and `soft_mask.json` (omega_s, omega_a, omega_b, k, raw values,
fraction), which `SoftMaskConfig.from_checkpoint("final")` and every sampler's soft-masking
option read, and `training_state.json`, whose `finished` says whether the run reached max_steps.
Rerunning the same command resumes from the latest checkpoint, whatever stopped it. Ctrl-C writes
the checkpoint and no `final/` (`run` raises KeyboardInterrupt); SIGTERM and the time budget write
`final/` marked unfinished (`training.loop`: how a run ends; `training.rundir`: the command's exit
status).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models.load import resolve_device
from masktax.training.finetune.instruct_data import Pair, encode_pairs, instruction_batch, read_rows
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
from masktax.training.soft_masking.config import SMConfig
from masktax.training.soft_masking.two_pass import (
    SoftMaskParams,
    TwoPassModel,
    instruction_loss,
    param_groups,
    soft_mask_coin,
)

METRICS = ("step", "loss", "soft", "n_soft", "mean_lambda", "omega_s", "omega_a", "omega_b", "lr", "omega_lr",
           "tokens", "elapsed_s")


class TrainableView(nn.Module):
    """The trainable tensors of a model under stable names: what a checkpoint stores and restores.

    Holds the SAME parameter objects, so `load_state_dict` on the view updates the model in place;
    a LoRA checkpoint of a large model then stores the adapter and omegas, not the frozen base.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.tensors = nn.ParameterDict(
            {n.replace(".", "__"): p for n, p in model.named_parameters() if p.requires_grad}
        )


def instruction_pairs(cfg: SMConfig, tokenizer) -> list[Pair]:
    """`cfg.data` read and tokenized by `instruct_data`: chat-template prompts (plain text without a
    template), responses plus EOS cut to `max_length` tokens per example."""
    if tokenizer is None or tokenizer.eos_token_id is None:
        raise MasktaxError("instruction data needs a model whose tokenizer has an EOS token")
    rows = read_rows(str(cfg.data), seed=cfg.seed)
    fmt = "chat" if getattr(tokenizer, "chat_template", None) else "plain"
    pairs, _ = encode_pairs(rows, tokenizer, fmt=fmt, eos_id=int(tokenizer.eos_token_id), max_context=cfg.max_length,
                            min_answer_tokens=1)
    return pairs


def _corpus(cfg: SMConfig, lm, words: Mapping[str, Sequence[str]] | None):
    """Words, encoder, the stage's episode spec, and the pretraining-loss config for this model."""
    from masktax.training.pretrain.config import PretrainConfig
    from masktax.training.pretrain.corpus import Encoder
    from masktax.training.pretrain.curriculum import default_stages
    from masktax.training.pretrain.train import load_corpus_words

    if lm.tokenizer is None:
        raise MasktaxError(f"model '{cfg.init_from}' ships no tokenizer; the training corpus needs one")
    try:
        encoder = Encoder(lm.tokenizer)
    except (KeyError, TypeError, AttributeError) as err:
        raise MasktaxError(
            f"the training corpus needs the embedded word-level tokenizer; '{cfg.init_from}' has another "
            f"({err}); pass instruction data with --data instead"
        ) from err
    stages = {s.name: s for s in default_stages()}
    if cfg.stage not in stages:
        raise MasktaxError(f"unknown stage '{cfg.stage}'; choose one of {', '.join(stages)}")
    loss_cfg = PretrainConfig(
        objective="mdlm", shift=lm.shift, weighting=cfg.weighting, p_min=cfg.p_min,
        answer_focus_share=cfg.answer_focus_share, answer_q=cfg.answer_q, eos_tail=cfg.eos_tail,
        words_file=cfg.words_file, seed=cfg.seed,
    )
    words = dict(words) if words is not None else load_corpus_words(loss_cfg)
    return words, encoder, stages[cfg.stage], loss_cfg


def save_final(two: TwoPassModel, tuner, lm, cfg: SMConfig, path: Path) -> None:
    """final/: HF-layout fp32 model (adapters merged; the adapter in adapter/), tokenizer, soft_mask.json."""
    import copy

    path.mkdir(parents=True, exist_ok=True)
    if tuner is not None:
        from peft.utils import get_peft_model_state_dict
        from safetensors.torch import save_file

        (path / "adapter").mkdir(exist_ok=True)
        state = {k: v.detach().float().cpu().contiguous() for k, v in get_peft_model_state_dict(tuner).items()}
        save_file(state, str(path / "adapter" / "adapter_model.safetensors"))
        write_json(path / "adapter" / "adapter_config.json",
                      json.loads(json.dumps(tuner.peft_config["default"].to_dict(), default=list)))
        two.soft_mask.save(path / "adapter", fraction=cfg.fraction)
        export = copy.deepcopy(tuner).merge_and_unload().to("cpu", torch.float32)
    else:
        export = copy.deepcopy(two.backbone).to("cpu", torch.float32)
    export.save_pretrained(path)
    if lm.tokenizer is not None:
        lm.tokenizer.save_pretrained(path)
    two.soft_mask.save(path, fraction=cfg.fraction)


class _Window:
    """Mean lambda and soft-masked position count since the last metrics row."""

    def __init__(self) -> None:
        self.n = self.lam = 0.0

    def add(self, stats) -> None:
        if stats is not None and stats.n_soft:
            self.n += stats.n_soft
            self.lam += stats.mean_lambda * stats.n_soft

    def pop(self) -> tuple[int, float | None]:
        out = (int(self.n), self.lam / self.n if self.n else None)
        self.n = self.lam = 0.0
        return out


def run(cfg: SMConfig, out: str | Path, *, device: str = "auto", max_minutes: float | None = None,
        words: Mapping[str, Sequence[str]] | None = None, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) the soft-masking run in `out`; returns the final state (also final/training_state.json).

    Raises KeyboardInterrupt after Ctrl-C (checkpoint written, no final/); see the module docstring.
    """
    from accelerate import Accelerator

    from masktax.models import load
    from masktax.training.finetune.lora import add_lora, present_targets
    from masktax.training.pretrain.batches import train_batch
    from masktax.training.pretrain.curriculum import CurriculumState
    from masktax.training.pretrain.train import step_loss

    check_budget(max_minutes)
    out = check_out_dir(out)
    dev = resolve_device(device)
    lm = load(cfg.init_from, device=dev, dtype=torch.float32)
    if lm.kind != "mdlm":
        raise MasktaxError(f"soft-masking training needs a masked diffusion LM; '{cfg.init_from}' is {lm.kind}")
    mask_id = lm.require_mask("soft-masking training")
    if cfg.data is not None:
        pairs = instruction_pairs(cfg, lm.tokenizer)
    else:
        pairs = None
        words, encoder, stage, loss_cfg = _corpus(cfg, lm, words)
    open_training_dir(out, cfg.to_dict(), free=("max_steps",))
    write_env(out, dev, seed=cfg.seed, dtype="float32")
    torch.manual_seed(cfg.seed)
    lm.model.train()
    tuner = None  # the peft model of an adapter run; it injects its layers into lm.model in place
    if cfg.tuning != "full":
        tuner = add_lora(lm.model, lm.extra.get("family", ""), rank=cfg.lora_r, alpha=cfg.lora_alpha,
                         dropout=0.0, targets=present_targets(lm.model, cfg.lora_targets),
                         use_dora=cfg.tuning == "dora")
    params = SoftMaskParams(k=cfg.k, omega_s=cfg.omega_s, omega_a=cfg.omega_a, omega_b=cfg.omega_b).to(dev)
    two = TwoPassModel(lm, params)
    view = TrainableView(two)
    opt = torch.optim.AdamW(
        param_groups(lm.model, params, lr=cfg.lr, omega_lr=cfg.omega_lr, weight_decay=cfg.weight_decay,
                     omega_eps=cfg.omega_eps), betas=cfg.betas)
    mp = cfg.mixed_precision if cfg.mixed_precision != "auto" else ("bf16" if dev.type == "cuda" else "no")
    accel = Accelerator(cpu=dev.type == "cpu", mixed_precision=mp)
    fwd, opt = accel.prepare(two, opt)
    step, tokens, elapsed = 0, 0, 0.0
    ckpt = latest_checkpoint(out)
    if ckpt is not None:
        saved = load_checkpoint(ckpt, view, opt, dev)
        step, tokens, elapsed = saved["step"], saved["tokens"], saved["elapsed_s"]
    log = MetricsLog(out / "metrics.csv", METRICS, resume_step=step if ckpt else None)
    tb = open_tensorboard(out / "tb")
    window = _Window()
    # Clipped together, in the model's own parameter order (the view's dict is sorted by name, and the
    # order of the per-tensor norms changes the total norm's rounding): backbone (or adapter), omegas.
    trainable = [p for p in two.parameters() if p.requires_grad]

    def snapshot() -> dict[str, Any]:
        return {"step": step, "tokens": tokens, "elapsed_s": elapsed + loop.seconds(),
                "soft_mask": params.values(), "device": str(dev), "data": {"seed": cfg.seed, "next_step": step}}

    def save(at: int) -> None:
        save_checkpoint(out, at, view, opt, snapshot(), keep=cfg.keep_checkpoints)

    loop = StepLoop(out, step=step, max_steps=cfg.max_steps, save_every=cfg.save_every, save=save,
                       max_minutes=max_minutes, progress=progress, writer=tb)
    with loop:
        while loop.running(step):
            scale = lr_at(step, lr=1.0, warmup=cfg.warmup_steps, schedule=cfg.schedule,
                             max_steps=cfg.max_steps, min_ratio=cfg.min_lr_ratio)
            for group in opt.param_groups:
                group["lr"] = scale * (cfg.omega_lr if group.get("name") == "omega" else cfg.lr)
            gen = torch.Generator(device=dev).manual_seed(cfg.seed * 1_000_003 + step)
            two.soft = soft_mask_coin(cfg.seed, step, cfg.p_sm)
            with accel.autocast():
                if pairs is not None:
                    ids, maskable = instruction_batch(pairs, seed=cfg.seed, step=step, batch_size=cfg.batch_size,
                                                      eos_id=lm.tokenizer.eos_token_id)
                    ids, maskable = ids.to(dev), maskable.to(dev)
                    loss = instruction_loss(fwd, ids, maskable, mask_id=mask_id, shift=lm.shift,
                                            p_min=cfg.p_min, generator=gen)
                    n_tok = ids.numel()
                else:
                    batch = train_batch(
                        seed=cfg.seed, step=step, batch_size=cfg.batch_size, words=words, encoder=encoder,
                        stages=(stage,), state=CurriculumState(), replay=0.0,
                        focus_share=cfg.answer_focus_share, eos_tail=cfg.eos_tail,
                    ).to(dev)
                    loss = step_loss(loss_cfg, fwd, batch, mask_id, gen)
                    n_tok = int(batch.real.sum())
            opt.zero_grad(set_to_none=True)
            accel.backward(loss)
            if cfg.grad_clip > 0:
                accel.clip_grad_norm_(trainable, cfg.grad_clip)
            opt.step()
            step += 1
            tokens += n_tok
            window.add(two.last)
            loss_v = float(loss.detach())
            if step % cfg.log_every == 0 or step == cfg.max_steps:
                n_soft, mean_lam = window.pop()
                row = {"step": step, "loss": loss_v, "soft": int(two.soft), "n_soft": n_soft,
                       "mean_lambda": mean_lam,
                       **{k: v for k, v in params.values().items() if k.startswith("omega")},
                       "lr": scale * cfg.lr, "omega_lr": scale * cfg.omega_lr, "tokens": tokens,
                       "elapsed_s": elapsed + loop.seconds()}
                log.write(row)
                if tb is not None:
                    for key in ("loss", "omega_s", "omega_a", "omega_b", "mean_lambda"):
                        if row[key] is not None:
                            tb.add_scalar(f"train/{key}", row[key], step)
            loop.tick(step, loss=f"{loss_v:.3f}", omega_s=f"{params.values()['omega_s']:.2e}")
    loop.raise_if_interrupted()
    summary = snapshot() | loop.outcome()
    write_final(out, lambda path: save_final(two, tuner, lm, cfg, path), summary)
    return summary
