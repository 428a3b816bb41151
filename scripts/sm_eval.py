"""Evaluate soft-masking [P2] on embedded-tokenizer MDLMs: validation bound, few-step decoding, mask tax.

    python scripts/sm_eval.py --model before=runs/pretrain-cpu/mdlm/final \
        --model after=runs/train_sm/embedded/final --out runs/sm_eval --device cpu

For each model (LABEL=PATH; soft-masking weights from PATH/soft_mask.json, else `--soft-mask-from`,
else the untrained init, which is practically off):
1. Validation loss, the MDLM bound: sum over masked tokens of CE / t, divided by the episode's
   tokens, averaged over `--t-samples` seeded t ~ U(1e-3, 1) (with seeded masks) per held-out
   episode (stage S4 episodes from a seed stream disjoint from training). Once with the plain
   forward, once with the two-pass soft-masked forward.
2. Few-step decoding: held-out queries cut after `Answer:[`, `--gen-length` tokens decoded with
   LLaDA's semi-AR sampler (one block, low confidence) at 1, 2, 4, 8 tokens per step, soft-masking
   off / on. Accuracy = first decoded token is the right letter; agreement = share of decoded tokens
   equal to the many-step decode (1 token per step, soft-masking off).
3. Mask tax with feedback: the probe suite's mask-scaling prompts (`Answer:[` + 1 + x masks, 10
   relevant + 40 distractor examples mixed), decoded in min(1 + x, `--unmask-steps`) steps by
   highest confidence, soft-masking off / on; the answer position is scored. A single step has no
   feedback, so only the multi-step (unmask) decode can show an effect of soft-masking.
Writes sm_eval.json, sm_eval.png and sm_eval.md (a Markdown section) into `--out`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

from masktax.errors import MasktaxError
from masktax.models import load
from masktax.samplers import SoftMaskConfig, generate_semi_ar, left_pad
from masktax.training.corpus import Encoder, sample_episode
from masktax.training.curriculum import default_stages
from masktax.training.mdlm_loss import forward_mask, mdlm_loss
from masktax.training.soft_mask_training import SoftMaskParams, two_pass_logits

TOKENS_PER_STEP = (1, 2, 4, 8)
P_MIN = 1e-3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True, help="LABEL=PATH or PATH (repeatable).")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--soft-mask-from", type=Path, default=None, help="soft_mask.json dir for models without one.")
    ap.add_argument("--episodes", type=int, default=64, help="Held-out episodes for the validation bound.")
    ap.add_argument("--t-samples", type=int, default=4, help="Seeded t's (and masks) per episode.")
    ap.add_argument("--queries", type=int, default=64, help="Held-out queries for few-step decoding.")
    ap.add_argument("--gen-length", type=int, default=8)
    ap.add_argument("--stage", default="S4", help="Curriculum stage of the held-out episodes.")
    ap.add_argument("--items", type=int, default=4, help="Test items per suite dataset.")
    ap.add_argument("--datasets", type=int, default=16, help="First N of the 16 suite datasets.")
    ap.add_argument("--grid", default="0,2,10,50", help="Extra masks x of the mask-scaling sweep.")
    ap.add_argument("--unmask-steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    return ap.parse_args(argv)


def soft_config(path: Path, fallback: Path | None) -> tuple[SoftMaskConfig, str]:
    """The model's own soft_mask.json, else `fallback`'s, else the paper's untrained init."""
    for src in (path, fallback):
        if src is not None and (Path(src) / "soft_mask.json").is_file():
            return SoftMaskConfig.from_checkpoint(src), str(Path(src) / "soft_mask.json")
    return SoftMaskConfig(), "untrained init (omega_s = 1e-6: practically off)"


def heldout_episodes(encoder: Encoder, n: int, seed: int, stage: str):
    """Episodes of `stage` from the stream `{seed}/sm-eval/i` (training draws `{seed}/batch/step`)."""
    from masktax.training.pretrain import load_corpus_words
    from masktax.training.pretrain_config import PretrainConfig

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
def decode_rows(lm, prompts, gen_length: int, steps: int, sm: SoftMaskConfig | None, batch: int):
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


def mask_scaling(lm, grid, items: int, steps_cap: int, sm: SoftMaskConfig, batch: int, seed: int,
                 n_datasets: int = 16) -> dict:
    from masktax.prompts.encode import encode_item
    from masktax.prompts.render import arrange
    from masktax.tasks.suite import build_suite

    suite = build_suite(seed=seed, n_test=max(items, 1))[:n_datasets]
    rows = {}
    for x in grid:
        enc = [encode_item(lm.tokenizer, arrange(d, "mixed", seed=seed), q, suffix="masks", n_extra=x,
                           mask_id=lm.mask_id) for d in suite for q in d.tests[:items]]
        prompts = [e.ids[: e.answer_pos] for e in enc]
        for mode, cfg in (("off", None), ("on", sm)):
            got = decode_rows(lm, prompts, 1 + x, min(1 + x, steps_cap), cfg, batch)
            acc = sum(g[0] == e.answer_id for g, e in zip(got, enc, strict=True)) / len(enc)
            rows[f"{x}/{mode}"] = {"x": x, "soft_mask": mode, "accuracy": acc, "n": len(enc)}
    for mode in ("off", "on"):
        accs = [r["accuracy"] for r in rows.values() if r["soft_mask"] == mode]
        rows[f"degradation/{mode}"] = {"soft_mask": mode, "relative_degradation": (max(accs) - min(accs)) / max(
            max(accs), 1e-12)}
    return rows


def evaluate(args: argparse.Namespace) -> dict:
    grid = [int(v) for v in str(args.grid).split(",") if v.strip()]
    if not grid or min(grid) < 0 or min(args.gen_length, args.unmask_steps, args.items, args.datasets) < 1:
        raise MasktaxError("--grid needs integers >= 0; --gen-length, --unmask-steps, --items, --datasets >= 1")
    results = {"schema_version": 1, "settings": {k: str(v) if isinstance(v, Path) else v
                                                 for k, v in vars(args).items()}, "models": {}}
    for spec in args.model:
        label, _, path = spec.rpartition("=")
        label = label or Path(path).name
        lm = load(path, device=args.device, dtype=torch.float32)
        lm.model.eval()
        if lm.kind != "mdlm" or lm.tokenizer is None:
            raise MasktaxError(f"'{path}' is not a masked diffusion LM with a tokenizer")
        encoder = Encoder(lm.tokenizer)
        sm, source = soft_config(Path(path), args.soft_mask_from)
        params = SoftMaskParams(k=sm.k, omega_s=min(max(sm.omega_s, 1e-12), 1 - 1e-7), omega_a=sm.omega_a,
                                omega_b=min(sm.omega_b, -1.1e-6)).to(lm.device)
        episodes = heldout_episodes(encoder, max(args.episodes, args.queries), args.seed, args.stage)
        res = {"path": str(path), "soft_mask": {**sm.__dict__, "source": source}}
        res["val_loss"] = {mode: validation_bound(lm, episodes[: args.episodes], args.t_samples, args.seed, p)
                           for mode, p in (("off", None), ("on", params))}
        res["few_step"] = few_step(lm, episodes[: args.queries], args.gen_length, sm, args.batch,
                                   encoder.letter_ids)
        res["mask_scaling"] = mask_scaling(lm, grid, args.items, args.unmask_steps, sm, args.batch, args.seed,
                                           args.datasets)
        results["models"][label] = res
        print(f"{label}: val loss off {res['val_loss']['off']:.4f} / on {res['val_loss']['on']:.4f}", file=sys.stderr)
    return results


def markdown(results: dict) -> str:
    lines = ["## Soft-masking evaluation", "",
             "| model | omega_s | omega_a | omega_b | k | val bound (plain) | val bound (two-pass) |", "|---|---|---|---|---|---|---|"]
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
    lines += ["", "Mask scaling with multi-step unmasking (answer accuracy; last row: relative degradation "
              "(max - min) / max over the sweep):", "", "| model | extra masks | SM off | SM on |", "|---|---|---|---|"]
    for name, r in results["models"].items():
        ms = r["mask_scaling"]
        for x in sorted({v["x"] for v in ms.values() if "x" in v}):
            lines.append(f"| {name} | {x} | {ms[f'{x}/off']['accuracy']:.3f} | {ms[f'{x}/on']['accuracy']:.3f} |")
        lines.append(f"| {name} | degradation | {ms['degradation/off']['relative_degradation']:.3f} | "
                     f"{ms['degradation/on']['relative_degradation']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, r in results["models"].items():
        for mode, style in (("off", "--"), ("on", "-")):
            fs = [v for v in r["few_step"].values() if v["soft_mask"] == mode]
            axes[0].plot([v["tokens_per_step"] for v in fs], [v["accuracy"] for v in fs], style, marker="o",
                         label=f"{name}, SM {mode}")
            axes[1].plot([v["tokens_per_step"] for v in fs], [v["agreement"] for v in fs], style, marker="o")
            ms = [v for v in r["mask_scaling"].values() if v.get("soft_mask") == mode and "x" in v]
            axes[2].plot([v["x"] for v in ms], [v["accuracy"] for v in ms], style, marker="o")
    titles = ("answer accuracy", "agreement with 1 token/step", "mask scaling (multi-step unmask)")
    for ax, title, xl in zip(axes, titles, ("tokens per step", "tokens per step", "extra masks"), strict=True):
        ax.set_title(title)
        ax.set_xlabel(xl)
        ax.set_xscale("symlog", linthresh=1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = evaluate(args)
    except MasktaxError as err:
        print(f"sm_eval: error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sm_eval.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "sm_eval.md").write_text(markdown(results))
    plot(results, args.out / "sm_eval.png")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
