"""Bit-exact rewrites of the native blocks' memory-bound ops: are they identical, and how much faster?

A proposal for `masktax/models/blocks.py` (issue 18: probes toward the ceiling WITHOUT changing any
number), checked here before anyone edits the model: the same items are scored with the current
`apply_rope` / `swiglu` and with rewrites that perform the same IEEE operations on the same operands
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


def apply_rope_exact(x, cos, sin, *, full_precision):
    """`blocks.apply_rope` with the same roundings: see the module docstring."""
    cos, sin = cos[:, None], sin[:, None]  # [b, 1, l, hd]
    xf = blocks.upcast(x) if full_precision else x
    if not full_precision:
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    h = xf.shape[-1] // 2
    x1, x2, c, s = xf[..., :h], xf[..., h:], cos[..., :h], sin[..., :h]
    out = torch.empty_like(xf)  # [b, h, l, hd]
    torch.mul(x1, c, out=out[..., :h]).sub_(x2 * s)
    torch.mul(x2, c, out=out[..., h:]).add_(x1 * s)
    return out.to(x.dtype)


def swiglu_exact(x, gate, up, down):
    g = F.silu(gate(x), inplace=True)  # [b, l, f]
    return down(g.mul_(up(x)))  # [b, l, d]


@contextmanager
def rewritten():
    old = blocks.apply_rope, blocks.swiglu
    blocks.apply_rope, blocks.swiglu = apply_rope_exact, swiglu_exact
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
            want = answer_logits(lm, items)
            with rewritten():
                got = answer_logits(lm, items)
            for _ in range(args.rounds):
                for mode in ("current", "rewrite"):
                    start = time.perf_counter()
                    if mode == "rewrite":
                        with rewritten():
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
