"""Sampler caches: speed-up and agreement with `--cache none`, for cache x threshold, on the embedded models.

Fast-dLLM's prefix and dual caches are approximations for a bidirectional MDLM, so speed alone says
nothing: this prints, per model and sampler, the time of decoding the same prompts (CPU time of
the process on a CPU, which a machine shared with other jobs disturbs less than wall time; wall time
on a GPU) with
`cache` none / prefix / dual, the speed-up against the same sampler without a cache AND against
the baseline (semi-AR, one token per step, no cache), token agreement with the same sampler
without a cache (share of generated positions holding the same token), and answer accuracy.

The prompts are the probe suite's (10 relevant + `--distractors` (40) examples mixed, base format,
~1,200 tokens with 40), cut after the test question's options line, so the model has to write `Answer:[X].`
itself: the answer letter is then the first `Answer:[X]` in the decoded text (decoded at the
third or fourth generated position, usually not in the block's first step, where a cache could
not matter). Samplers: semi_ar with steps = gen_length (one token per step; "threshold off") and
threshold 0.9 ("threshold on"), both in blocks of `--block-length`. The AR baseline decodes left to
right, `cache` none / prefix (exact: its agreement must be 100%); threshold does not apply.

    .venv/bin/python bench/bench_sampler_cache.py --threads 1            # the full suite prompts
    .venv/bin/python bench/bench_sampler_cache.py --threads 1 --items 1 --distractors 10   # ~4 CPU-minutes
"""

from __future__ import annotations

import argparse
import platform
import re
import time

import torch

from masktax.models import load
from masktax.models.loaded import LoadedModel
from masktax.prompts.render import arrange, prompt_text
from masktax.samplers import decode, generate_ar, generate_semi_ar, generate_threshold, left_pad
from masktax.tasks.suite import build_suite

ANSWER = re.compile(r"Answer\s*:\s*\[\s*([ABC])\s*\]")
MODELS = ("embedded-mdlm", "embedded-mdlm-dream", "embedded-ar")


def prompts(tokenizer, items: int, distractors: int) -> list[tuple[list[int], str]]:
    """(prompt ids, gold letter) for the first `items` tests of each of the 16 datasets."""
    out = []
    for dataset in build_suite(seed=0, n_test=max(items, 1)):
        context = arrange(dataset, "mixed", seed=0, n_distractor=distractors)
        for query in dataset.tests[:items]:
            text = prompt_text(context, query).prefix
            text = text[: text.rindex("Answer:[")]  # the model writes the answer line itself
            out.append((list(tokenizer(text)["input_ids"]), query.answer))
    return out


def run(lm: LoadedModel, data, batch: int, gen: int, block: int, sampler: str, cache: str) -> tuple[float, float, list, int]:
    """Decode every prompt in batches of `batch`; (wall seconds, CPU seconds of this process, generated
    ids per prompt, forward passes). On a machine shared with other jobs the CPU time is the stabler
    measure of the work done (with one thread it is the compute time)."""
    pad = lm.pad_id if lm.pad_id is not None else 0
    rows, passes, seconds, cpu = [], 0, 0.0, 0.0
    for i in range(0, len(data), batch):
        ids, am = left_pad([p for p, _ in data[i:i + batch]], pad)  # [b, lp]
        mask = None if bool(am.all()) else am
        t0, c0 = time.perf_counter(), time.process_time()
        if sampler == "ar":
            out, hist = generate_ar(lm, ids, gen_length=gen, attention_mask=mask, cache=cache, return_history=True)
        elif sampler == "threshold":
            out, hist = generate_threshold(lm, ids, gen_length=gen, block_length=block, threshold=0.9,
                                           attention_mask=mask, cache=cache, return_history=True)
        else:
            out, hist = generate_semi_ar(lm, ids, steps=gen, gen_length=gen, block_length=block,
                                         attention_mask=mask, cache=cache, return_history=True)
        if out.device.type == "cuda":
            torch.cuda.synchronize(out.device)
        seconds += time.perf_counter() - t0
        cpu += time.process_time() - c0
        passes += hist.forward_passes
        rows += out[:, ids.shape[1]:].tolist()
    return seconds, cpu, rows, passes


def accuracy(lm: LoadedModel, data, rows) -> float:
    """Share of prompts whose first decoded `Answer:[X]` holds the gold letter."""
    hits = 0
    for (_, gold), row in zip(data, rows, strict=True):
        text = decode(lm.tokenizer, torch.tensor([row]), 0, stop_at_eos=False)[0]
        found = ANSWER.search(text)
        hits += bool(found and found.group(1) == gold)
    return hits / len(data)


def agreement(rows, ref) -> float:
    """Share of generated positions holding the same token as the reference decode."""
    same = sum(a == b for r, q in zip(rows, ref, strict=True) for a, b in zip(r, q, strict=True))
    return same / sum(len(r) for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--items", type=int, default=2, help="tests per dataset (16 datasets)")
    ap.add_argument("--distractors", type=int, default=40, help="distractor examples beside the 10 relevant (0-40)")
    ap.add_argument("--gen-length", type=int, default=32)
    ap.add_argument("--block-length", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}")
    timer = "wall s" if args.device != "cpu" else "CPU s"
    print(f"| model | sampler | cache | {timer} | speed-up vs same sampler, no cache | speed-up vs baseline "
          "| forward passes | token agreement vs no cache | answer accuracy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        lm = load(name, device=args.device, dtype="float32")
        data = prompts(lm.tokenizer, args.items, args.distractors)
        lengths = [len(p) for p, _ in data]
        print(f"<!-- {name}: {len(data)} prompts of {min(lengths)}-{max(lengths)} tokens -->", flush=True)
        gen, block = args.gen_length, args.block_length
        plans = [("ar", ("none", "prefix"))] if lm.kind == "ar" else [
            ("semi_ar", ("none", "prefix", "dual")), ("threshold", ("none", "prefix", "dual"))]
        run(lm, data[: args.batch], args.batch, gen, block, plans[0][0], "none")  # warm-up
        base = None
        for sampler, caches in plans:
            ref = None
            for cache in caches:
                wall, cpu, rows, passes = run(lm, data, args.batch, gen, block, sampler, cache)
                secs = wall if args.device != "cpu" else cpu
                if ref is None:
                    ref = (secs, rows)
                base = base or secs
                label = {"semi_ar": "semi_ar, 1 token/step (threshold off)", "threshold": "threshold 0.9 (on)",
                         "ar": "AR, left to right"}[sampler]
                print(f"| {name} | {label} | {cache} | {secs:.1f} | {ref[0] / secs:.2f}x | {base / secs:.2f}x "
                      f"| {passes} | {agreement(rows, ref[1]):.3f} | {accuracy(lm, data, rows):.3f} |", flush=True)


if __name__ == "__main__":
    main()
