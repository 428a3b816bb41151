"""Bit-exact rewrites of the native blocks' memory-bound ops: are they identical, and how much faster?

The inference path of `masktax/models/blocks.py` (issue 18: probes toward the ceiling WITHOUT changing
any number), checked against the formulas it replaced ("current" below, still used when gradients
flow): the same items are scored with the reference `apply_rope` / `swiglu` and with rewrites that perform the same IEEE operations on the same operands
(no fused multiply-add, no reordered sums), so every logit must be bit-identical; the speed is the
ratio of the two, alternated in one process.

    rope:   x * cos + rotate_half(x) * sin  ->  first half x1*c - x2*s, second half x2*c + x1*s
            ((-a)*b == -(a*b) and p + (-q) == p - q exactly; RoPE's tables repeat, so c and s are
            each half of cos / sin); no cat, no negation, no full-size temporaries
    swiglu: down(silu(gate(x)) * up(x))  ->  the same with silu and * in place

    python bench/bench_exact_rewrites.py --models embedded-mdlm,embedded-mdlm-dream --rows 13 --rounds 4
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from masktax.models import blocks, load
from masktax.probes.engine import answer_logits
from masktax.probes.items import Cell, encode_cell
from masktax.probes.run import RunConfig, select_datasets


def apply_rope_reference(x, cos, sin, *, full_precision):
    """RoPE as written before the rewrite (what `blocks.apply_rope` still does when gradients flow)."""
    cos, sin = cos[:, None], sin[:, None]  # [b, 1, l, hd]
    if full_precision:
        xf = blocks.upcast(x)
        return (xf * cos + blocks.rotate_half(xf) * sin).to(x.dtype)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + blocks.rotate_half(x) * sin


def swiglu_reference(x, gate, up, down):
    return down(F.silu(gate(x)) * up(x))  # [b, l, d]


@contextmanager
def reference():
    old = blocks.apply_rope, blocks.swiglu
    blocks.apply_rope, blocks.swiglu = apply_rope_reference, swiglu_reference
    try:
        yield
    finally:
        blocks.apply_rope, blocks.swiglu = old


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="embedded-mdlm,embedded-mdlm-dream")
    ap.add_argument("--rows", type=int, default=13, help="one batch of this many one-mask prompts (auto: 13)")
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    dataset = select_datasets(RunConfig(models=("x",), out="unused"))[0]
    for name in args.models.split(","):
        lm = load(name)
        items = encode_cell(lm, dataset, Cell(series="masks", x=20, suffix="masks", n_extra=20), model=name,
                            probe="masks", seed=0, fmt="base", n_items=args.rows)
        times = {"current": [], "rewrite": []}
        with torch.inference_mode():
            got = answer_logits(lm, items)
            with reference():
                want = answer_logits(lm, items)
            for _ in range(args.rounds):
                for mode in ("current", "rewrite"):
                    start = time.perf_counter()
                    if mode == "current":
                        with reference():
                            answer_logits(lm, items)
                    else:
                        answer_logits(lm, items)
                    times[mode].append(time.perf_counter() - start)
        same = torch.equal(want, got)
        best = {k: min(v) for k, v in times.items()}
        print(f"{name}: logits bit-identical: {same}; best of {args.rounds}: current {best['current']:.3f} s, "
              f"rewrite {best['rewrite']:.3f} s, speed-up {best['current'] / best['rewrite']:.2f}x")


if __name__ == "__main__":
    main()
