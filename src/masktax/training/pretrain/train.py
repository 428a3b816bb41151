"""Pretrain the embedded models (MDLM, Dream-like MDLM, AR twin) on the few-shot corpus.

    masktax pretrain --config configs/embedded/mdlm.json --out runs/pretrain/mdlm --max-minutes 8

One step: draw a curriculum batch (`batches.train_batch`), apply the objective's loss
(`mdlm_loss`: masked diffusion with 1/p weighting plus answer-focused rows; or next-token CE for
the AR twin), AdamW with warm-up, gate the curriculum every `gate_every` steps. The run dir holds
config.json, env.json, metrics.csv, `step-NNNNNN/` checkpoints (at `save_every`, on SIGTERM /
Ctrl-C / time budget, and at the end) and `final/` (HF layout + tokenizer, and
`training_state.json`, whose `finished` says whether the run reached max_steps or its stop gate).
Rerunning the same command resumes from the latest checkpoint and reproduces the uninterrupted
run's losses on CPU, whatever stopped it (SIGKILL included). Ctrl-C writes the checkpoint and no
`final/` (`run` raises KeyboardInterrupt); SIGTERM and the time budget write `final/` marked
unfinished (`training.loop`: how a run ends; `training.rundir`: the command's exit status).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch
from torch import nn

from masktax.embedded.tokenizer import build_tokenizer
from masktax.errors import MasktaxError
from masktax.models.load import resolve_device
from masktax.models.loaded import shift_logits
from masktax.models.precision import autocast_dtype, autocast_record, print_notice, slow_dtype_notice
from masktax.results.store import parse_json_file
from masktax.training.loop import (
    RUN_LENGTH_FIELDS,
    MetricsLog,
    StepLoop,
    check_budget,
    latest_checkpoint,
    load_checkpoint,
    lr_at,
    save_checkpoint,
    write_env,
)
from masktax.training.mdlm_loss import (
    answer_focused_mask,
    ar_loss,
    forward_mask,
    masked_mean_ce,
    mdlm_loss,
    sample_p,
)
from masktax.training.pretrain.batches import Batch, gate_batch, train_batch
from masktax.training.pretrain.build import build_model, raw_logits
from masktax.training.pretrain.config import PretrainConfig, load_config
from masktax.training.pretrain.corpus import Encoder, all_words
from masktax.training.pretrain.curriculum import CurriculumState, gate, solved
from masktax.training.rundir import began, check_out_dir, open_training_dir, write_final
from masktax.training.suite_eval import suite_accuracy

METRICS = ("step", "loss", "lr", "tokens", "stage", "gate_acc", "tokens_per_s", "elapsed_s")


def load_corpus_words(cfg: PretrainConfig) -> dict[str, tuple[str, ...]]:
    """The category -> words dict: `words_file` if set, else the package's word lists."""
    if cfg.words_file:
        return read_words_file(Path(cfg.words_file))
    try:
        from masktax.tasks.words import load_words
    except ImportError:  # the word-list module is missing: read its package data directly
        from importlib.resources import files

        data = json.loads(files("masktax.tasks").joinpath("data/words.json").read_text())
        return {str(k): tuple(v) for k, v in data.items()}
    return {str(k): tuple(v) for k, v in load_words().items()}


def read_words_file(file: Path) -> dict[str, tuple[str, ...]]:
    """A `words_file`: a JSON object {category: [word, ...]}; one-line errors naming the file."""
    if not file.is_file():
        raise MasktaxError(f"words_file '{file}' does not exist")
    data = parse_json_file(file, f"words_file '{file}'")
    ok = isinstance(data, dict) and data and all(
        isinstance(v, list) and v and all(isinstance(w, str) for w in v) for v in data.values())
    if not ok:
        raise MasktaxError(f"words_file '{file}' must hold a JSON object of categories, each a list of words")
    return {str(k): tuple(v) for k, v in data.items()}


def autocast_ctx(cfg: PretrainConfig, device: torch.device, chosen: str | None = None) -> contextlib.AbstractContextManager:
    """bf16 autocast or none: `chosen` ("bf16" / "off", a run's recorded choice), else `cfg.autocast`
    by this machine's capability ("auto": bf16 on CUDA, on a CPU only where bf16 matmuls measure
    faster; masktax.models.precision)."""
    dtype = autocast_dtype(chosen or cfg.autocast, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def recorded_autocast(ckpt: Path | None, cfg: PretrainConfig, device: torch.device) -> str | None:
    """The autocast ("bf16" / "off") the checkpoint a run resumes from was trained with: its state.json's
    record, or for a checkpoint written before the record existed the rule of that time ("auto" meant
    bf16 on CUDA only). None for a fresh run."""
    if ckpt is None or not (ckpt / "state.json").is_file():
        return None
    value = json.loads((ckpt / "state.json").read_text(encoding="utf-8")).get("autocast")
    if value in ("bf16", "off"):
        return value
    return "bf16" if cfg.autocast == "bf16" or (cfg.autocast == "auto" and device.type == "cuda") else "off"


def choose_autocast(cfg: PretrainConfig, device: torch.device, resumed: str | None) -> dict:
    """The run's autocast record (env.json): a resumed run keeps the choice its checkpoint records,
    so it continues exactly; a forced bf16 that this CPU runs slower than fp32 gets a notice."""
    chosen = autocast_dtype(resumed or cfg.autocast, device)
    if cfg.autocast == "bf16" and (notice := slow_dtype_notice(chosen, device)):
        print_notice(notice + "; set \"autocast\": \"auto\"")
    return autocast_record(cfg.autocast, device, chosen) | ({"resumed_with": resumed} if resumed else {})


def step_loss(cfg: PretrainConfig, model: nn.Module, batch: Batch, mask_id: int, gen: torch.Generator) -> torch.Tensor:
    """The training loss of one batch (see module docstring)."""
    ids, real = batch.ids, batch.real  # [b, l]
    att = None if bool(real.all()) else real.long()  # [b, l]
    if cfg.objective == "ar":
        raw = raw_logits(model, ids, att)  # [b, l, V]
        return ar_loss(raw, ids, real, answer_pos=batch.answer_pos, answer_weight=cfg.ar_answer_weight)
    b = ids.shape[0]
    maskable = real.clone()  # [b, l]
    if cfg.shift:
        maskable[:, 0] = False  # nothing predicts position 0 under shifted logits
    p = sample_p(b, p_min=cfg.p_min, generator=gen, device=ids.device)  # [b]
    _, masked_r = forward_mask(ids, maskable, p, mask_id=mask_id, generator=gen)  # [b, l]
    masked_f = answer_focused_mask(batch.answer_pos, generator=gen, q_lo=cfg.answer_q[0], q_hi=cfg.answer_q[1])
    targets_f = batch.answer_pos  # [b, l]
    if cfg.mask_repeat and batch.repeat is not None:
        after_masked = torch.zeros_like(masked_f)  # [b, l]
        after_masked[:, 1:] = masked_f[:, :-1]
        masked_f = masked_f | (after_masked & batch.repeat)  # the letter's repeated word goes with it
        targets_f = targets_f | batch.repeat
    if cfg.eos_tail:
        masked_f = masked_f | (batch.tail & real)  # trailing masks are EOS, as in LLaDA's SFT
    focus = batch.focus[:, None]  # [b, 1]
    masked = torch.where(focus, masked_f, masked_r)  # [b, l]
    xt = torch.where(masked, torch.full_like(ids, mask_id), ids)  # [b, l]
    logits = raw_logits(model, xt, att)  # [b, l, V]
    if cfg.shift:
        logits = shift_logits(logits)  # [b, l, V] aligned
    n_focus = int(batch.focus.sum())
    loss = logits.new_zeros((), dtype=torch.float32)
    if n_focus < b:
        rows = ~batch.focus  # [b]
        n_tok = real[rows].sum().clamp_min(1)
        lr_ = mdlm_loss(logits[rows], ids[rows], masked[rows], p[rows], weighting=cfg.weighting, n_tokens=n_tok)
        loss = loss + lr_ * (b - n_focus) / b
    if n_focus:
        rows = batch.focus
        lf = masked_mean_ce(logits[rows], ids[rows], masked[rows] & targets_f[rows])
        loss = loss + lf * n_focus / b
    return loss


@torch.no_grad()
def gate_accuracy(cfg: PretrainConfig, model: nn.Module, words, encoder: Encoder, stage, step: int, device,
                  amp: str | None = None) -> float:
    """Accuracy on `gate_size` fresh queries of `stage` (argmax over the letters A/B/C); `amp`: the run's autocast."""
    causal = cfg.objective == "ar"
    g = gate_batch(seed=cfg.seed, step=step, size=cfg.gate_size, words=words, encoder=encoder, stage=stage, causal=causal)
    letters = torch.tensor(encoder.letter_ids, device=device)  # [3]
    was_training = model.training
    model.eval()
    correct = 0
    for s in range(0, cfg.gate_size, 64):
        ids, att = g.ids[s : s + 64].to(device), g.attention[s : s + 64].to(device)  # [n, l]
        with autocast_ctx(cfg, device, amp):
            raw = raw_logits(model, ids, att)  # [n, l, V]
        pos = g.pos[s : s + 64].to(device) - (1 if (causal or cfg.shift) else 0)  # [n] raw position
        at = raw[torch.arange(len(pos), device=device), pos]  # [n, V]
        pred = at[:, letters].float().argmax(-1)  # [n]
        correct += int((pred.cpu() == g.answer[s : s + 64]).sum())
    model.train(was_training)
    return correct / cfg.gate_size


def save_final(model: nn.Module, tokenizer, cfg: PretrainConfig, path: Path) -> None:
    """HF `save_pretrained` layout + tokenizer files, weights in `cfg.save_dtype`."""
    dtype = getattr(torch, cfg.save_dtype)
    export = copy.deepcopy(model).to("cpu", dtype)
    path.mkdir(parents=True, exist_ok=True)
    export.save_pretrained(path)
    tokenizer.save_pretrained(path)


SCHEDULE_FIELDS = ("schedule", "decay_start", "decay_steps", "min_lr_ratio")


def schedule_lr(cfg: PretrainConfig, step: int) -> float:
    """The configured learning rate at `step` (before any re-warm-up after a packed checkpoint)."""
    return lr_at(step, lr=cfg.lr, warmup=cfg.warmup_steps, schedule=cfg.schedule, max_steps=cfg.max_steps,
                    min_ratio=cfg.min_lr_ratio, decay_start=cfg.decay_start, decay_steps=cfg.decay_steps)


def check_schedule_change(out: Path, cfg: PretrainConfig) -> None:
    """A resumed run may change its learning-rate schedule (e.g. add the final anneal) or its
    length only where the change leaves every step it already trained as it was, so that the
    final config.json still describes the whole run exactly."""
    file, ckpt = out / "config.json", latest_checkpoint(out) if out.is_dir() else None
    if not file.is_file() or ckpt is None:
        return
    old = PretrainConfig.from_dict(json.loads(file.read_text(encoding="utf-8")), source=f"'{file}'")
    done = int(json.loads((ckpt / "state.json").read_text())["step"])
    for t in range(done):
        if not math.isclose(schedule_lr(old, t), schedule_lr(cfg, t), rel_tol=1e-12):
            raise MasktaxError(
                f"'{out}' already trained {done} steps; this schedule would change the learning rate of step {t} "
                f"({schedule_lr(old, t):.3g} -> {schedule_lr(cfg, t):.3g}). Start the anneal at or after step {done} "
                f"(--decay-start {done}) or use another --out"
            )


def run_config(
    path: str | Path, out: str | Path, *, decay_start: int | None = None, decay_steps: int | None = None,
    **overrides: object,
) -> PretrainConfig:
    """The config `masktax pretrain` runs: the file at `path` with the non-None `overrides` applied.

    `decay_start` adds the anneal (schedule "wsd"). Resuming a run in `out` that anneals keeps its
    anneal when `decay_start` is not given (`decay_steps` may still change its length); `decay_steps`
    without an anneal is an error.
    """
    cfg = load_config(path, **overrides, decay_start=decay_start, decay_steps=decay_steps,
                      schedule="wsd" if decay_start is not None else None)
    stored = Path(out) / "config.json"
    if decay_start is None and stored.is_file() and began(out):  # a failed start's config is replaced, not kept
        old = json.loads(stored.read_text(encoding="utf-8"))
        if old.get("schedule") == "wsd":
            cfg = cfg.replace(schedule="wsd", decay_start=old.get("decay_start"),
                              decay_steps=decay_steps or old.get("decay_steps"), min_lr_ratio=old.get("min_lr_ratio"))
    if decay_steps is not None and cfg.schedule != "wsd":
        raise MasktaxError("--decay-steps needs --decay-start (or a run that already anneals)")
    return cfg


def run(cfg: PretrainConfig, out: str | Path, *, device: str = "auto", max_minutes: float | None = None,
        words: Mapping[str, Sequence[str]] | None = None, progress: bool = True) -> dict:
    """Train (or resume) the run in `out`; returns a summary dict (also final/training_state.json).

    Raises KeyboardInterrupt after Ctrl-C (checkpoint written, no final/); see the module docstring.
    """
    check_budget(max_minutes)
    out = check_out_dir(out)
    dev = resolve_device(device)
    check_schedule_change(out, cfg)
    open_training_dir(out, cfg.to_dict(), free=RUN_LENGTH_FIELDS + SCHEDULE_FIELDS,
                      normalize=lambda old: PretrainConfig.from_dict(old, source=f"'{out}/config.json'").to_dict())
    amp = choose_autocast(cfg, dev, recorded_autocast(latest_checkpoint(out), cfg, dev))
    write_env(out, dev, seed=cfg.seed, dtype="float32", autocast=amp)
    words = dict(words) if words is not None else load_corpus_words(cfg)
    tokenizer = build_tokenizer(all_words(words))
    encoder = Encoder(tokenizer)
    torch.manual_seed(cfg.seed)
    ckpt = latest_checkpoint(out)
    model = build_model(
        cfg, vocab=len(tokenizer), mask_id=encoder.mask_id, eos_id=encoder.eos_id, init=ckpt is None
    ).to(dev)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    other = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0.0}],
        lr=cfg.lr, betas=cfg.betas,
    )
    fwd = torch.compile(model) if cfg.compile else model
    state, step, tokens, elapsed = CurriculumState(), 0, 0, 0.0
    rewarm: int | None = None
    if ckpt is not None:
        saved = load_checkpoint(ckpt, model, opt, dev)
        step, tokens, elapsed = saved["step"], saved["tokens"], saved["elapsed_s"]
        state = CurriculumState.from_dict(saved["curriculum"])
        rewarm = saved.get("rewarm_start")
        if not (ckpt / "optimizer.pt").is_file():
            rewarm = step  # packed without AdamW moments: warm the learning rate up again
    log = MetricsLog(out / "metrics.csv", METRICS, resume_step=step if ckpt else None)
    tok_window, t_window = 0, time.monotonic()

    def snapshot() -> dict:
        return {
            "step": step, "tokens": tokens, "elapsed_s": elapsed + loop.seconds(),
            "curriculum": state.to_dict(), "stage_name": cfg.stages[state.stage].name,
            "data": {"generator": "per-step seeded", "seed": cfg.seed, "next_step": step},
            "device": str(dev), "rewarm_start": rewarm, "autocast": amp["chosen"],
        }

    def save(at: int) -> None:
        save_checkpoint(out, at, model, opt, snapshot(), keep=cfg.keep_checkpoints)

    def make_batch(i: int, stage: int) -> Batch:
        return train_batch(
            seed=cfg.seed, step=i, batch_size=cfg.batch_size, words=words, encoder=encoder, stages=cfg.stages,
            state=CurriculumState(stage=stage), replay=cfg.replay,
            focus_share=cfg.answer_focus_share if cfg.objective == "mdlm" else 0.0,
            eos_tail=cfg.eos_tail and cfg.objective == "mdlm",
        )

    # The next batch is generated in a thread while this step runs (batches depend only on the
    # step and the curriculum stage, so prefetching changes nothing but speed).
    pool = ThreadPoolExecutor(max_workers=1)
    pending: dict[int, Future] = {}
    loop = StepLoop(out, step=step, max_steps=cfg.max_steps, save_every=cfg.save_every, save=save,
                       max_minutes=max_minutes, progress=progress)
    try:
        def is_solved() -> bool:
            return solved(state, n_stages=len(cfg.stages), threshold=cfg.stop_gate, patience=cfg.stop_patience,
                          on=cfg.stop_on)

        suite_log = MetricsLog(out / "suite_eval.csv", ("step", "suite_acc", "n_items"),
                                  resume_step=step if ckpt else None)
        done = is_solved()
        with loop:
            while not done and loop.running(step):
                lr = schedule_lr(cfg, step)
                if rewarm is not None and cfg.warmup_steps:
                    lr *= min(1.0, (step - rewarm + 1) / cfg.warmup_steps)
                for group in opt.param_groups:
                    group["lr"] = lr
                ready = pending.pop(step, None)
                batch = (ready.result() if ready is not None else make_batch(step, state.stage)).to(dev)
                if (step + 1) % cfg.gate_every and step + 1 < cfg.max_steps:
                    # no gate after this step, so the next batch's curriculum stage is known now
                    pending[step + 1] = pool.submit(make_batch, step + 1, state.stage)
                gen = torch.Generator(device=dev).manual_seed(cfg.seed * 1_000_003 + step)
                with autocast_ctx(cfg, dev, amp["chosen"]):
                    loss = step_loss(cfg, fwd, batch, encoder.mask_id, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                step += 1
                loss_v = float(loss.detach())
                n_tok = int(batch.real.sum())
                tokens += n_tok
                tok_window += n_tok
                acc = None
                if step % cfg.gate_every == 0:
                    acc = gate_accuracy(cfg, model, words, encoder, cfg.stages[state.stage], step, dev, amp["chosen"])
                    gate(state, step=step, accuracy=acc, stages=cfg.stages, threshold=cfg.gate_threshold)
                    if cfg.suite_items and state.stage == len(cfg.stages) - 1:
                        suite_acc = suite_accuracy(
                            model, tokenizer, causal=cfg.objective == "ar", shift=cfg.shift, mask_id=encoder.mask_id,
                            eos_id=encoder.eos_id, max_length=cfg.model.max_length, n_items=cfg.suite_items,
                        )
                        state.suite.append([step, suite_acc])
                        suite_log.write({"step": step, "suite_acc": suite_acc, "n_items": cfg.suite_items})
                    done = is_solved()
                if step % cfg.log_every == 0 or acc is not None or step == cfg.max_steps:
                    now = time.monotonic()
                    tps = tok_window / max(now - t_window, 1e-9)
                    tok_window, t_window = 0, now
                    log.write({"step": step, "loss": loss_v, "lr": lr, "tokens": tokens, "stage": state.stage,
                               "gate_acc": acc, "tokens_per_s": tps, "elapsed_s": elapsed + loop.seconds()})
                loop.tick(step, loss=f"{loss_v:.3f}", stage=cfg.stages[state.stage].name, gate=state.last_gate)
                if done:
                    print(f"{cfg.name}: solved ({cfg.stop_on} >= {cfg.stop_gate} {cfg.stop_patience}x) at step {step}",
                          file=sys.stderr)
                    break
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    loop.raise_if_interrupted()
    summary = snapshot() | loop.outcome(done=done)
    write_final(out, lambda path: save_final(model, tokenizer, cfg, path), summary)
    return summary
