"""Evaluate soft-masking [P2] on embedded-tokenizer MDLMs: the validation bound and few-step decoding.

    masktax train-sm eval --model before=runs/pretrain-cpu/mdlm/final \
        --model after=runs/train_sm/embedded/final --out runs/sm_eval --device cpu

For each model (LABEL=PATH; soft-masking weights from PATH/soft_mask.json, else `soft_mask_from`,
else the untrained init, which is practically off):
1. Validation loss, the MDLM bound: sum over masked tokens of CE / t, divided by the episode's
   tokens, averaged over `t_samples` seeded t ~ U(1e-3, 1) (with seeded masks) per held-out
   episode (episodes of `stage` from a seed stream disjoint from training). Once with the plain
   forward, once with the two-pass soft-masked forward.
2. Few-step decoding: held-out queries cut after `Answer:[`, `gen_length` tokens decoded with
   LLaDA's semi-AR sampler (one block, low confidence) at 1, 2, 4, 8 tokens per step, soft-masking
   off / on. Accuracy = first decoded token is the right letter; agreement = share of decoded tokens
   equal to the many-step decode (1 token per step, soft-masking off).
The mask tax with feedback (the suite's mask-scaling prompts decoded in several steps, soft-masking
off / on) is the unmask probe: `masktax probe unmask` without and with `--soft-mask` (each model
dir's soft_mask.json) or `--soft-mask-from DIR`.

`run` writes sm_eval.json, sm_eval.png and sm_eval.md (a Markdown section) into `out`.
"""

from __future__ import annotations

import dataclasses
import io
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from masktax.errors import MasktaxError
from masktax.models import load
from masktax.results.store import atomic_write_bytes, atomic_write_json, atomic_write_text
from masktax.samplers import SoftMaskConfig, generate_semi_ar, left_pad
from masktax.training.mdlm_loss import forward_mask, mdlm_loss
from masktax.training.pretrain.config import PretrainConfig
from masktax.training.pretrain.corpus import EncodedEpisode, Encoder, sample_episode
from masktax.training.pretrain.curriculum import default_stages
from masktax.training.pretrain.train import load_corpus_words
from masktax.training.soft_masking.two_pass import SoftMaskParams, two_pass_logits

SCHEMA_VERSION = 1
TOKENS_PER_STEP = (1, 2, 4, 8)
P_MIN = 1e-3  # t ~ U(P_MIN, 1), as in training


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation; the fields are the flags of `masktax train-sm eval` and are recorded as its settings."""

    model: tuple[str, ...]  # LABEL=PATH or PATH per model (the repeatable --model)
    out: str  # directory for sm_eval.json / .png / .md
    soft_mask_from: str | None = None  # soft_mask.json dir for models without one
    episodes: int = 64  # held-out episodes for the validation bound
    t_samples: int = 4  # seeded t's (and masks) per episode
    queries: int = 64  # held-out queries for few-step decoding
    gen_length: int = 8  # tokens decoded per query
    stage: str = "S4"  # curriculum stage of the held-out episodes
    batch: int = 16  # queries per decoding batch
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", tuple(self.model))
        if not self.model:
            raise MasktaxError("give at least one --model")
        if min(self.episodes, self.t_samples, self.queries, self.gen_length, self.batch) < 1:
            raise MasktaxError("--episodes, --t-samples, --queries, --gen-length and --batch must be at least 1")


def soft_config(path: Path, fallback: Path | None) -> tuple[SoftMaskConfig, str]:
    """The model's own soft_mask.json, else `fallback`'s, else the paper's untrained init."""
    for src in (path, fallback):
        if src is not None and (Path(src) / "soft_mask.json").is_file():
            return SoftMaskConfig.from_checkpoint(src), str(Path(src) / "soft_mask.json")
    return SoftMaskConfig(), "untrained init (omega_s = 1e-6: practically off)"


def heldout_episodes(encoder: Encoder, n: int, seed: int, stage: str) -> list[EncodedEpisode]:
    """Episodes of `stage` from the stream `{seed}/sm-eval/i` (training draws `{seed}/batch/step`)."""
    words = load_corpus_words(PretrainConfig())
    stages = {s.name: s for s in default_stages()}
    if stage not in stages:
        raise MasktaxError(f"unknown stage '{stage}'; choose one of {', '.join(stages)}")
    spec = stages[stage].spec
    return [encoder.episode(sample_episode(random.Random(f"{seed}/sm-eval/{i}"), words, spec, query_repeat=False),
                            spec.max_tokens) for i in range(n)]


@torch.no_grad()
def validation_bound(lm, episodes, t_samples: int, seed: int, params: SoftMaskParams | None) -> float:
    """Mean over episodes and t's of sum_{masked} CE / t / n_tokens (plain, or two-pass with `params`)."""
    mask_id, total = lm.mask_id, 0.0
    dev = lm.device
    for i, ep in enumerate(episodes):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
        ids = torch.tensor([ep.ids] * t_samples)  # [n, l]
        t = P_MIN + (1 - P_MIN) * torch.rand(t_samples, generator=gen)  # [n]
        maskable = torch.ones_like(ids, dtype=torch.bool)  # [n, l]
        if lm.shift:
            maskable[:, 0] = False
        xt, masked = forward_mask(ids, maskable, t, mask_id=mask_id, generator=gen)  # [n, l]
        xt, ids, masked, t = xt.to(dev), ids.to(dev), masked.to(dev), t.to(dev)
        if params is None:
            logits = lm.logits(xt)  # [n, l, V]
        else:
            logits, _ = two_pass_logits(lm, xt, None, params, mask_id=mask_id)  # [n, l, V]
        total += float(mdlm_loss(logits, ids, masked, t, n_tokens=masked.shape[0] * int(maskable[0].sum())))
    return total / len(episodes)


@torch.no_grad()
def decode_rows(lm, prompts, gen_length: int, steps: int, sm: SoftMaskConfig | None, batch: int) -> list[list[int]]:
    """Greedy semi-AR decode (one block) of each prompt; returns the generated ids per row."""
    outs = []
    for s in range(0, len(prompts), batch):
        ids, att = left_pad(prompts[s : s + batch], lm.eos_id if lm.eos_id is not None else 0)
        dev = lm.device
        x = generate_semi_ar(lm, ids.to(dev), attention_mask=att.to(dev), steps=steps, gen_length=gen_length,
                             block_length=gen_length, soft_mask=sm)  # [b, lp + g]
        outs.extend(x[:, ids.shape[1] :].tolist())
    return outs


def few_step(lm, episodes, gen_length: int, sm: SoftMaskConfig, batch: int, letters) -> dict:
    """Accuracy and agreement with the 1-token-per-step decode, per tokens-per-step and soft-masking off / on."""
    prompts = [ep.ids[: ep.query_pos] for ep in episodes]
    answers = [letters[ep.query_answer] for ep in episodes]
    ref = decode_rows(lm, prompts, gen_length, gen_length, None, batch)
    rows = {}
    for tps in TOKENS_PER_STEP:
        if gen_length % tps:
            continue
        for mode, cfg in (("off", None), ("on", sm)):
            got = decode_rows(lm, prompts, gen_length, gen_length // tps, cfg, batch)
            acc = sum(g[0] == a for g, a in zip(got, answers, strict=True)) / len(got)
            agree = sum(x == y for g, r in zip(got, ref, strict=True) for x, y in zip(g, r, strict=True))
            rows[f"{tps}/{mode}"] = {"tokens_per_step": tps, "soft_mask": mode, "accuracy": acc,
                                     "agreement": agree / (len(got) * gen_length)}
    return rows


def evaluate(cfg: EvalConfig) -> dict:
    """The sm_eval.json object: settings, and per model its soft-masking weights, bounds and few-step rows."""
    results = {"schema_version": SCHEMA_VERSION, "settings": dataclasses.asdict(cfg), "models": {}}
    fallback = Path(cfg.soft_mask_from) if cfg.soft_mask_from is not None else None
    for spec in cfg.model:
        label, _, path = spec.rpartition("=")
        label = label or Path(path).name
        lm = load(path, device=cfg.device, dtype=torch.float32)
        lm.model.eval()
        if lm.kind != "mdlm" or lm.tokenizer is None:
            raise MasktaxError(f"'{path}' is not a masked diffusion LM with a tokenizer")
        encoder = Encoder(lm.tokenizer)
        sm, source = soft_config(Path(path), fallback)
        params = SoftMaskParams(k=sm.k, omega_s=min(max(sm.omega_s, 1e-12), 1 - 1e-7), omega_a=sm.omega_a,
                                omega_b=min(sm.omega_b, -1.1e-6)).to(lm.device)
        episodes = heldout_episodes(encoder, max(cfg.episodes, cfg.queries), cfg.seed, cfg.stage)
        res = {"path": str(path), "soft_mask": {**sm.__dict__, "source": source}}
        res["val_loss"] = {mode: validation_bound(lm, episodes[: cfg.episodes], cfg.t_samples, cfg.seed, p)
                           for mode, p in (("off", None), ("on", params))}
        res["few_step"] = few_step(lm, episodes[: cfg.queries], cfg.gen_length, sm, cfg.batch, encoder.letter_ids)
        results["models"][label] = res
        print(f"{label}: val loss off {res['val_loss']['off']:.4f} / on {res['val_loss']['on']:.4f}", file=sys.stderr)
    return results


def markdown(results: dict) -> str:
    """The sm_eval.md section: the bounds per model, then few-step accuracy / agreement."""
    lines = ["## Soft-masking evaluation", "",
             "| model | omega_s | omega_a | omega_b | k | val bound (plain) | val bound (two-pass) |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results["models"].items():
        s = r["soft_mask"]
        lines.append(f"| {name} | {s['omega_s']:.3g} | {s['omega_a']:.3g} | {s['omega_b']:.3g} | {s['k']} | "
                     f"{r['val_loss']['off']:.4f} | {r['val_loss']['on']:.4f} |")
    lines += ["", "Few-step decoding (accuracy / agreement with 1-token-per-step decoding):", "",
              "| model | tokens/step | SM off | SM on |", "|---|---|---|---|"]
    for name, r in results["models"].items():
        for tps in TOKENS_PER_STEP:
            off, on = r["few_step"].get(f"{tps}/off"), r["few_step"].get(f"{tps}/on")
            if off and on:
                lines.append(f"| {name} | {tps} | {off['accuracy']:.3f} / {off['agreement']:.3f} | "
                             f"{on['accuracy']:.3f} / {on['agreement']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """sm_eval.png: answer accuracy and agreement against tokens per step, soft-masking off (dashed) / on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, r in results["models"].items():
        for mode, style in (("off", "--"), ("on", "-")):
            fs = [v for v in r["few_step"].values() if v["soft_mask"] == mode]
            axes[0].plot([v["tokens_per_step"] for v in fs], [v["accuracy"] for v in fs], style, marker="o",
                         label=f"{name}, SM {mode}")
            axes[1].plot([v["tokens_per_step"] for v in fs], [v["agreement"] for v in fs], style, marker="o")
    for ax, title in zip(axes, ("answer accuracy", "agreement with 1 token/step"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("tokens per step")
        ax.set_xscale("symlog", linthresh=1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def run(cfg: EvalConfig) -> dict:
    """Evaluate and write sm_eval.json, sm_eval.md and sm_eval.png into `cfg.out`; returns the results.

    A `--out` that is a file is refused before any model loads; each output file is written atomically."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise MasktaxError(f"--out '{out}' is a file, not a directory")
    results = evaluate(cfg)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "sm_eval.json", results)
    atomic_write_text(out / "sm_eval.md", markdown(results))
    plot(results, out / "sm_eval.png")
    return results
