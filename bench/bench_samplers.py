"""Speed of every sampler, and the overhead of soft-masking, on one model and one prompt batch.

All figures are ratios to a baseline measured in the same process: LLaDA's semi-AR sampler with
low-confidence remasking and steps = gen_length (one token per step). Per sampler it prints
tokens/s (and the ratio to the baseline) and forward passes per generated token. Soft-masking
[P2] overhead is the time per forward pass with soft-masking divided by the same sampler's
without it (the paper reports ~12%); lambda is forced on (omega_s = 0.5, fraction = 1) so the
blend is computed at every step.

By default the model is a random LLaDA-architecture model of a CPU-friendly shape (d_model 256,
4 layers, vocabulary 1024); `--logit-scale` multiplies its output head so its predictions are as
peaked as a trained model's (a random head gives near-uniform predictions, and the threshold
sampler would then commit one token per step).

    python bench/bench_samplers.py                                  # CPU, ~1 minute
    python bench/bench_samplers.py --model GSAI-ML/LLaDA-8B-Instruct --gen-length 256 --batch 4
"""

from __future__ import annotations

import argparse
import time

import torch

from masktax.models.loaded import LoadedModel
from masktax.samplers import SoftMaskConfig, generate_dream, generate_semi_ar, generate_threshold

SOFT = SoftMaskConfig(k=3, omega_s=0.5, omega_a=6.66, omega_b=-0.75, fraction=1.0)


def random_llada(vocab: int, d_model: int, n_layers: int, logit_scale: float, seed: int) -> LoadedModel:
    """A random native LLaDA (in-place logits) as an LoadedModel; mask = last id, EOS = 1."""
    from masktax.models.llada import LLaDAConfig, LLaDAModelLM

    cfg = LLaDAConfig(d_model=d_model, n_heads=4, n_kv_heads=4, n_layers=n_layers, mlp_hidden_size=3 * d_model,
                      vocab_size=vocab, embedding_size=vocab, max_sequence_length=4096, rope_theta=10000.0,
                      mask_token_id=vocab - 1)
    model = LLaDAModelLM(cfg)
    model.reset_parameters(seed)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(logit_scale)
    return LoadedModel(name="random-llada", model=model.eval(), tokenizer=None, kind="mdlm", mask_id=vocab - 1,
                   shift=False, max_length=4096, pad_id=1, eos_id=1)


def configs(gen: int, block: int) -> list[tuple[str, object, dict]]:
    """(label, sampler, kwargs); the first one is the baseline."""
    return [
        (f"semi_ar low_conf steps={gen}", generate_semi_ar, {"steps": gen, "block_length": block}),
        (f"semi_ar low_conf steps={gen // 2}", generate_semi_ar, {"steps": gen // 2, "block_length": block}),
        (f"semi_ar low_conf steps={gen // 4}", generate_semi_ar, {"steps": gen // 4, "block_length": block}),
        (f"dream maskgit_plus steps={gen}", generate_dream, {"steps": gen}),
        (f"dream maskgit_plus steps={gen // 4}", generate_dream, {"steps": gen // 4}),
        ("threshold 0.9", generate_threshold, {"block_length": block, "threshold": 0.9}),
    ]


def measure(lm: LoadedModel, fn, ids: torch.Tensor, gen: int, repeats: int, **kwargs) -> dict[str, float]:
    """Fastest of `repeats` decodes without and with soft-masking, interleaved so that load from
    other processes hits both alike (one untimed warm-up of each first)."""
    out: dict[str, list[float]] = {"plain": [], "soft": []}
    passes: dict[str, int] = {}
    for rep in range(repeats + 1):
        for key, soft in (("plain", None), ("soft", SOFT)):
            t0 = time.perf_counter()
            _, hist = fn(lm, ids, gen_length=gen, return_history=True, soft_mask=soft, **kwargs)
            if ids.device.type == "cuda":
                torch.cuda.synchronize(ids.device)
            if rep > 0:
                out[key].append(time.perf_counter() - t0)
            passes[key] = hist.forward_passes
    return {"secs": min(out["plain"]), "passes": passes["plain"],
            "soft_secs": min(out["soft"]), "soft_passes": passes["soft"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="masktax model name/path (default: random LLaDA shape)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--logit-scale", type=float, default=25.0)
    ap.add_argument("--prompt-length", type=int, default=64)
    ap.add_argument("--gen-length", type=int, default=64)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    if args.model:
        from masktax.models import load

        lm = load(args.model, device=args.device)
    else:
        lm = random_llada(args.vocab, args.d_model, args.layers, args.logit_scale, args.seed)
        if args.device:
            lm.model.to(args.device)
    vocab = lm.embedding_weight().shape[0]
    gen = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(2, min(vocab, lm.mask_id) - 1, (args.batch, args.prompt_length), generator=gen)
    ids = ids.to(lm.device)
    tokens = args.batch * args.gen_length
    print(f"model {lm.name}, device {lm.device}, threads {torch.get_num_threads()}, batch {args.batch}, "
          f"prompt {args.prompt_length}, gen {args.gen_length}, block {args.block_length}, "
          f"fastest of {args.repeats}")
    print(f"{'sampler':34s} {'tokens/s':>9s} {'speed':>7s} {'passes/token':>13s} {'soft overhead':>14s}")
    base_tps = None
    for label, fn, kw in configs(args.gen_length, args.block_length):
        m = measure(lm, fn, ids, args.gen_length, args.repeats, **kw)
        secs, passes = m["secs"], m["passes"]
        tps = tokens / secs
        base_tps = base_tps or tps
        overhead = (m["soft_secs"] / m["soft_passes"]) / (secs / passes)
        print(f"{label:34s} {tps:9.1f} {tps / base_tps:6.2f}x {passes / args.gen_length:13.3f} "
              f"{overhead:13.3f}x")


if __name__ == "__main__":
    main()
