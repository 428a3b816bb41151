"""The samplers' vocabulary head on the generated region only vs on the whole sequence, in one process.

Every sampler step needs the logits of the generated region alone (the prompt holds no masks), so
`DecodeState` asks `LoadedModel.logits_from` for positions lp..l-1 (the native families' 2-D
`logits_to_keep`). The baseline is the former full head, forced through the fallback
(`lm.extra["logits_to_keep"] = False`: the `[b, l, V]` logits of every position, then sliced). Both
decode the same batch (the unmask probe's layout: the prompt, then one block of masks decoded by
the semi-AR sampler in `--steps` steps), alternately, the fastest of `--repeats` each; the decodes
must be equal token for token and step for step. Printed per cache: CPU time of the process
(wall time on a GPU), the largest logits tensor a forward returned ("peak logits", fp32 bytes), the
head's rows per decode, and ratios full / region.

The prompts are the suite's (10 relevant + 40 distractor examples, base format, one test item of
each of the first `--batch` datasets, ending `Answer:[`: 1,220 tokens with the embedded tokenizer),
their first tokens repeated in front up to `--prompt-length` (default 1,223).

    .venv/bin/python bench/bench_sampler_head.py --threads 1
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from masktax.models import load
from masktax.models.loaded import LoadedModel
from masktax.prompts.encode import encode_item
from masktax.prompts.render import arrange
from masktax.samplers import generate_semi_ar
from masktax.tasks.suite import build_suite


def prompts(lm: LoadedModel, batch: int, length: int) -> torch.Tensor:
    """`[batch, length]` prompt ids: one suite item per dataset, each up to its `Answer:[`."""
    rows = []
    for dataset in build_suite(seed=0, n_test=1)[:batch]:
        context = arrange(dataset, "mixed", seed=0)
        item = encode_item(lm.tokenizer, context, dataset.tests[0], suffix="one_mask", mask_id=lm.mask_id)
        ids = item.ids[: item.answer_pos]
        ids = ids[:max(length - len(ids), 0)] + ids  # the first tokens repeated in front up to `length`
        rows.append(ids[-length:])
    if len(rows) < batch:
        raise SystemExit(f"--batch {batch}: the suite has {len(rows)} datasets")
    return torch.tensor(rows, dtype=torch.long)  # [b, lp]


def decode(lm: LoadedModel, ids: torch.Tensor, args, cache: str, full_head: bool):
    """One decode; (seconds, largest logits bytes, head rows, sequences, history)."""
    lm.extra["logits_to_keep"] = not full_head
    peak, rows = [0], [0]

    def seen(module, inputs, out) -> None:
        peak[0] = max(peak[0], out.logits.numel() * out.logits.element_size())
        rows[0] += out.logits.shape[0] * out.logits.shape[1]

    hook = lm.model.register_forward_hook(seen)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        out, hist = generate_semi_ar(lm, ids.to(lm.device), steps=args.steps, gen_length=args.masks,
                                     block_length=args.masks, cache=cache, return_history=True)
        if out.device.type == "cuda":
            torch.cuda.synchronize(out.device)
        secs = time.perf_counter() - t0 if out.device.type == "cuda" else time.process_time() - c0
    finally:
        hook.remove()
        lm.extra.pop("logits_to_keep", None)
    return secs, peak[0], rows[0], out.cpu(), hist


def same(a, b) -> bool:
    (xa, ha), (xb, hb) = a, b
    return torch.equal(xa, xb) and ha.forward_passes == hb.forward_passes and all(
        torch.equal(sa.committed, sb.committed) and torch.equal(sa.tokens, sb.tokens)
        and torch.equal(sa.confidence.nan_to_num(-1.0), sb.confidence.nan_to_num(-1.0))
        for sa, sb in zip(ha.steps, hb.steps, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded-mdlm")
    ap.add_argument("--prompt-length", type=int, default=1223)
    ap.add_argument("--masks", type=int, default=51, help="masked positions decoded (one block)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--caches", default="none,prefix")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load(args.model, device=args.device, dtype="float32")
    ids = prompts(lm, args.batch, args.prompt_length)
    vocab = lm.embedding_weight().shape[0]
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}")
    print(f"{args.model} (V = {vocab}): batch {args.batch}, prompt {ids.shape[1]} tokens, {args.masks} masks, "
          f"{args.steps} steps (semi-AR, one block), fastest of {args.repeats}")
    timer = "wall s" if args.device != "cpu" else "CPU s"
    print(f"| cache | head | {timer} | peak logits | head rows / decode | same decode |")
    print("|---|---|---|---|---|---|")
    decode(lm, ids[:2], args, "none", False)  # warm-up
    for cache in args.caches.split(","):
        best: dict[bool, list] = {}
        for _ in range(args.repeats):
            for full_head in (True, False):
                run = decode(lm, ids, args, cache, full_head)
                if full_head not in best or run[0] < best[full_head][0]:
                    best[full_head] = list(run)
        full, region = best[True], best[False]
        equal = same(full[3:], region[3:])
        for name, r in (("full (before)", full), ("region", region)):
            print(f"| {cache} | {name} | {r[0]:.2f} | {r[1] / 2**20:.1f} MiB | {r[2]:,} | {'yes' if equal else 'NO'} |")
        print(f"| {cache} | **full / region** | **{full[0] / region[0]:.2f}x** | **{full[1] / region[1]:.1f}x** "
              f"| {full[2] / region[2]:.1f}x | |", flush=True)


if __name__ == "__main__":
    main()
