"""Forward throughput, MFU and peak memory of the native LLaDA architecture (random weights).

MFU is measured against the matmul ceiling of the SAME device in the SAME process (time an
N x N x N matmul in the model's dtype), not against a datasheet number:

    flops/token = 2 * (matmul parameters, output head included, embedding lookup excluded)
                + 4 * n_layers * seq_len * d_model            (q k^T and attention-weighted v)
    MFU = (tokens/s * flops/token) / (2 N^3 / matmul seconds)

Peak memory (CUDA) is measured per batch size at `--seq-len` (default 1300: the suite's longest
prompt plus 200 masks with LLaDA's tokenizer) and printed next to what
`masktax.models.auto_batch_size` estimates, so the estimate can be checked.

    python bench/bench_llada_forward.py --shape tiny                  # CPU smoke run
    python bench/bench_llada_forward.py --shape 8b --batch-sizes 1,2,4,8,16   # on a GPU, bf16 + SDPA
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from masktax.models.batching import auto_batch_size, bytes_per_token
from masktax.models.llada import LLaDAConfig, LLaDAModelLM
from masktax.models.loaded import LoadedModel

SHAPES = {
    # GSAI-ML/LLaDA-8B-Base config.json
    "8b": dict(d_model=4096, n_heads=32, n_kv_heads=32, n_layers=32, mlp_hidden_size=12288,
               vocab_size=126464, embedding_size=126464, max_sequence_length=4096, rope_theta=500000.0),
    "tiny": dict(d_model=256, n_heads=4, n_kv_heads=4, n_layers=4, mlp_hidden_size=768,
                 vocab_size=4096, embedding_size=4096, max_sequence_length=4096, rope_theta=500000.0),
}


def build(shape: str, device: torch.device, dtype: torch.dtype) -> LLaDAModelLM:
    """Random-weight LLaDA built on meta and materialised directly on `device` (no CPU copy of 8B)."""
    with torch.device("meta"):
        model = LLaDAModelLM(LLaDAConfig(**SHAPES[shape]))
    model = model.to_empty(device=device).to(dtype)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("ln_f.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    return model.eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, iters: int, warmup: int) -> float:
    """Median seconds per call after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def matmul_ceiling(n: int, device: torch.device, dtype: torch.dtype, iters: int) -> float:
    """Achieved FLOP/s of an n x n x n matmul: `2 n^3 / seconds`."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    seconds = timed(lambda: a @ b, device, iters, warmup=2)
    return 2 * n**3 / seconds


def flops_per_token(cfg: LLaDAConfig, seq_len: int) -> float:
    """Forward FLOPs per token (module docstring)."""
    d, kv_dim = cfg.d_model, cfg.kv_heads * (cfg.d_model // cfg.n_heads)
    per_layer = d * d * 2 + d * kv_dim * 2 + 3 * d * cfg.hidden
    matmul_params = cfg.n_layers * per_layer + d * cfg.rows
    return 2 * matmul_params + 4 * cfg.n_layers * seq_len * d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default=None, help="default: bfloat16 on CUDA, float32 on CPU")
    ap.add_argument("--seq-len", type=int, default=1300)
    ap.add_argument("--batch-sizes", default="1,2,4")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--matmul-n", type=int, default=None, help="default: 8192 on CUDA, 1024 on CPU")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args()

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    torch.manual_seed(0)
    model = build(args.shape, device, dtype)
    cfg = model.config
    lm = LoadedModel(name=f"llada-{args.shape}", model=model, tokenizer=None, kind="mdlm", mask_id=None,
                      shift=False, max_length=cfg.max_sequence_length)
    n = args.matmul_n or (8192 if device.type == "cuda" else 1024)
    ceiling = matmul_ceiling(n, device, dtype, iters=args.iters)
    weights_bytes = torch.cuda.memory_allocated(device) if device.type == "cuda" else None
    fpt = flops_per_token(cfg, args.seq_len)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"dtype {str(dtype).removeprefix('torch.')}, shape {args.shape}, seq_len {args.seq_len}")
    print(f"matmul ceiling ({n}^3): {ceiling / 1e12:.2f} TFLOP/s; model {fpt / 1e9:.2f} GFLOP/token")
    print(f"auto_batch_size -> {auto_batch_size(lm, args.seq_len)}")
    print("| batch | tokens/s | MFU vs matmul | peak GiB | activations GiB/seq | estimate GiB/seq |")
    print("|---|---|---|---|---|---|")
    rows = []
    for bs in (int(x) for x in args.batch_sizes.split(",")):
        ids = torch.randint(0, cfg.vocab_size, (bs, args.seq_len), device=device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            with torch.no_grad():
                seconds = timed(lambda ids=ids: model(input_ids=ids), device, args.iters, warmup=1)
        except torch.OutOfMemoryError:
            print(f"| {bs} | out of memory | | | | |")
            break
        tps = bs * args.seq_len / seconds
        mfu = tps * fpt / ceiling
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        act = (peak - weights_bytes) / bs if peak is not None else None
        est = args.seq_len * bytes_per_token(lm, args.seq_len)
        gib = 2**30
        print(f"| {bs} | {tps:,.0f} | {mfu:.1%} | {'-' if peak is None else f'{peak / gib:.2f}'} | "
              f"{'-' if act is None else f'{act / gib:.3f}'} | {est / gib:.3f} |")
        rows.append({"batch": bs, "tokens_per_s": tps, "mfu": mfu, "peak_bytes": peak,
                     "activation_bytes_per_seq": act, "estimate_bytes_per_seq": est})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"shape": args.shape, "device": str(device), "dtype": str(dtype), "seq_len": args.seq_len,
                       "matmul_flops": ceiling, "flops_per_token": fpt, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
