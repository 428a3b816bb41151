"""Probe throughput against the matmul ceiling measured in the same process (issue 18).

The ceiling is the best achieved FLOP/s of an N x N x N matmul on the same device in the same dtype
(several N, measured before AND after the probes, the best kept, so a busy machine lowers the
ceiling and the probes alike). Model FLOPs are counted analytically, only for what is computed:

    per token of a forward      2 * P + 4 * n_layers * length * width        (P: non-embedding params)
    per vocabulary-head row     2 * width * vocab       (single-pass probes: the answer row only;
                                                          unmask's sampler: every row of every pass)
    attribution (forward + backward to the input embeddings, weights frozen):
                                (2P + 4 L l d) + (2P + 8 L l d) per token, 4 d V at the answer row
    MFU = model FLOP/s / ceiling

Each probe runs end to end through `run_probe` (encoding, batching, storing records; the model
already loaded) into a temporary run dir; the FLOPs are counted from the records it stored. The AR
model runs without its prefix cache here (`--no-prefix-cache`: every token of every prompt is
computed, as counted); bench_prefix_cache.py measures what the cache saves.

    python bench/bench_ceiling.py                          # the embedded models on this CPU, fp32
    python bench/bench_ceiling.py --profile                # + where a single-pass batch spends its time
    python bench/bench_ceiling.py --shape 8b               # LLaDA-8B shape, random weights: GPU, bf16, SDPA flash
    python bench/bench_ceiling.py --shape tiny --n-items 1 # the same code path, random tiny LLaDA, on a CPU
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from masktax.models.loaded import LoadedModel
from masktax.models.precision import time_matmul
from masktax.probes import PROBES, RunConfig, run_probe
from masktax.results.store import read_items

EMBEDDED = ("embedded-mdlm", "embedded-mdlm-dream", "embedded-ar")
SINGLE_PASS = {"accuracy": {}, "masks": {"grid": (0, 20, 200)}}  # one mask (~1225 tokens) .. 200 extra masks
MULTI_PASS = {"unmask": {"steps": (8,), "grid": (0, 10, 50)}, "attribution": {"orderings": 1, "questions": 1}}


def ceiling(device: torch.device, dtype: torch.dtype, sizes: tuple[int, ...]) -> dict[int, float]:
    """Achieved GFLOP/s of an n^3 matmul per n."""
    return {n: 2 * n**3 / time_matmul(n, dtype, device, repeats=5, inner=3) / 1e9 for n in sizes}


def model_dims(lm: LoadedModel) -> dict:
    """Non-embedding parameters P, layers L, width d and vocabulary V of a loaded model."""
    cfg = lm.model.config
    get = lambda *names: next(int(getattr(cfg, n)) for n in names if getattr(cfg, n, None))  # noqa: E731
    emb = lm.embedding_weight()
    out = lm.model.get_output_embeddings()
    skip = {emb.data_ptr()} | ({out.weight.data_ptr()} if out is not None else set())
    params = sum(p.numel() for p in lm.model.parameters() if p.data_ptr() not in skip)
    return {"P": params, "L": get("n_layers", "num_hidden_layers"), "d": get("d_model", "hidden_size"),
            "V": emb.shape[0]}


def record_flops(probe: str, r: dict, dims: dict) -> float:
    """Model FLOPs a stored record cost (see the module docstring)."""
    P, L, d, V = dims["P"], dims["L"], dims["d"], dims["V"]  # noqa: N806
    n = int(r["n_tokens"])
    forward = n * (2 * P + 4 * L * n * d)
    if probe == "attribution":
        return forward + n * (2 * P + 8 * L * n * d) + 4 * d * V
    if probe == "unmask" and r.get("series") != "single-step":
        return int(r.get("forward_passes", 1)) * (forward + n * 2 * d * V)
    return forward + 2 * d * V


def kernel_bound(lm: LoadedModel, dims: dict, *, length: int, rows: int) -> dict:
    """What the model's own kernels reach at a probe's shape, and the MFU bound that follows.

    Times (best of 5, same process) the attention kernel (SDPA, bidirectional, `rows` x heads x
    `length` x head_dim) and one linear of the model's width over rows*length tokens, each as GFLOP/s.
    A forward spends its FLOPs in those two, so even with every other op (norms, RoPE, SiLU, residual
    adds) free its MFU cannot exceed  total / (attention / attention speed + linear / linear speed).
    """
    import torch.nn.functional as F

    cfg = lm.model.config
    heads = next(int(getattr(cfg, n)) for n in ("n_heads", "num_attention_heads") if getattr(cfg, n, None))
    d, dev, dtype = dims["d"], lm.device, lm.dtype
    hd = d // heads
    q, k, v = (torch.randn(rows, heads, length, hd, device=dev, dtype=dtype) for _ in range(3))
    x = torch.randn(rows * length, d, device=dev, dtype=dtype)
    w = torch.randn(3 * d, d, device=dev, dtype=dtype)

    def best(fn) -> float:
        fn()
        return min(_timed(fn, dev) for _ in range(5))

    with torch.inference_mode():
        attn = 4 * rows * heads * length * length * hd / best(lambda: F.scaled_dot_product_attention(q, k, v)) / 1e9
        lin = 2 * rows * length * d * 3 * d / best(lambda: F.linear(x, w)) / 1e9
    attn_flops, lin_flops = 4 * dims["L"] * length * d, 2 * dims["P"]  # per token
    bound = (attn_flops + lin_flops) / (attn_flops / attn + lin_flops / lin)  # GFLOP/s with free elementwise ops
    return {"attention_gflops": attn, "linear_gflops": lin, "bound_gflops": bound}


def bench_probe(probe: str, lm: LoadedModel, options: dict, *, n_items: int, datasets: str | None,
                batch_size: str) -> dict:
    """Run `probe` on one loaded model into a temporary dir; items/s, tokens/s, model GFLOP/s."""
    module = PROBES[probe]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(models=(lm.name,), out=str(Path(tmp) / probe), n_items=n_items, datasets=datasets,
                        progress=False, batch_size=batch_size, prefix_cache=False)  # every token run (FLOPs counted)
        start = time.perf_counter()
        run_probe(module, cfg, module.Options(**options), loaded={lm.name: lm}, report=False)
        seconds = time.perf_counter() - start
        records = list(read_items(Path(tmp) / probe))
    dims = model_dims(lm)
    flops = sum(record_flops(probe, r, dims) for r in records)
    tokens = sum(int(r["n_tokens"]) * (int(r.get("forward_passes", 1)) if probe == "unmask" else 1) for r in records)
    return {"probe": probe, "model": lm.name, "items": len(records), "seconds": seconds,
            "items_per_s": len(records) / seconds, "tokens_per_s": tokens / seconds, "gflops": flops / seconds / 1e9}


def profile_batch(lm: LoadedModel, rows: int, top: int = 12) -> str:
    """torch.profiler's op table for one single-pass batch of `rows` one-mask prompts."""
    from torch.profiler import ProfilerActivity, profile

    from masktax.probes.engine import answer_logits
    from masktax.probes.items import Cell, encode_cell
    from masktax.probes.run import select_datasets

    dataset = select_datasets(RunConfig(models=(lm.name,), out="unused"))[0]
    items = encode_cell(lm, dataset, Cell(series="one_mask", x=0), model=lm.name, probe="accuracy", seed=0,
                        fmt="base", n_items=rows)
    with torch.inference_mode():
        answer_logits(lm, items)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            answer_logits(lm, items)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def machine(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "platform": platform.platform()}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    with contextlib.suppress(OSError):
        info["load_average"] = Path("/proc/loadavg").read_text().split()[:3]
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def embedded_models(names: tuple[str, ...], device: str, dtype: str) -> list[LoadedModel]:
    from masktax.models import load

    return [load(n, device=device, dtype=dtype) for n in names]


def shape_model(shape: str, device: torch.device, dtype: torch.dtype) -> LoadedModel:
    """LLaDA at bench_llada_forward's `shape` ("8b": LLaDA-8B's) with random weights, as a LoadedModel
    with the embedded tokenizer (its ids are valid rows of the larger embedding). "tiny" runs the same
    code path on a CPU."""
    from bench_llada_forward import build

    from masktax.models import load

    tokenizer = load("embedded-mdlm", device="cpu").tokenizer
    model = build(shape, device, dtype)
    return LoadedModel(name=f"llada-{shape}-shape", model=model, tokenizer=tokenizer, kind="mdlm",
                       mask_id=tokenizer.mask_token_id, shift=False, max_length=4096,
                       pad_id=tokenizer.pad_token_id, eos_id=tokenizer.eos_token_id)


def attention_by_head_dim(device: torch.device, dtype: torch.dtype, *, length: int, rows: int, width: int) -> list[dict]:
    """SDPA (bidirectional) at one width split into heads of 32, 64 and 128: the same counted FLOPs
    (4 * length^2 * width per row), but each attention score also costs a softmax exp and a rescale
    whatever the head dim: at head dim 32 they come every 128 counted FLOPs, at 128 every 512, so
    small heads hold the kernel further below the matmul ceiling (the embedded models: 32)."""
    import torch.nn.functional as F

    out = []
    for hd in (32, 64, 128):
        heads = max(1, width // hd)
        q, k, v = (torch.randn(rows, heads, length, hd, device=device, dtype=dtype) for _ in range(3))
        attend = functools.partial(F.scaled_dot_product_attention, q, k, v)
        with torch.inference_mode():
            attend()
            seconds = min(_timed(attend, device) for _ in range(3))
        out.append({"head_dim": hd, "heads": heads, "gflops": 4 * rows * heads * length * length * hd / seconds / 1e9})
    return out


def _timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=("embedded", "tiny", "8b"), default="embedded",
                    help="embedded models, or random-weight LLaDA at the tiny (CPU smoke) or 8B shape")
    ap.add_argument("--models", default=",".join(EMBEDDED), help="embedded shape: comma-separated model names")
    ap.add_argument("--probes", default="accuracy,masks,unmask,attribution")
    ap.add_argument("--n-items", type=int, default=4, help="test points per dataset for the single-pass probes")
    ap.add_argument("--datasets", default=None, help="comma-separated dataset names (default: all 16)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", default="auto")
    ap.add_argument("--profile", action="store_true", help="print the op table of one single-pass batch per model")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args()

    from masktax.models.device import resolve_device

    dev = resolve_device(args.device)
    big = args.shape == "8b"
    dtype = torch.bfloat16 if big or dev.type == "cuda" else torch.float32
    sizes = (4096, 8192) if dev.type == "cuda" else (512, 1024, 2048)
    print(json.dumps(machine(dev)))
    before = {str(dtype): ceiling(dev, dtype, sizes)}
    other = torch.float32 if dtype == torch.bfloat16 else torch.bfloat16
    before[str(other)] = ceiling(dev, other, sizes[:2])
    for name, speeds in before.items():
        print(f"ceiling {name}: " + ", ".join(f"{n}^3 {g:.1f} GFLOP/s" for n, g in speeds.items()))
    if big and dev.type != "cuda":
        raise SystemExit("--shape 8b needs a GPU (bf16 LLaDA-8B shape: ~16 GB of weights)")
    if args.shape != "embedded":
        lms = [shape_model(args.shape, dev, dtype)]
    else:
        lms = embedded_models(tuple(args.models.split(",")), str(dev), str(dtype).removeprefix("torch."))
    probes = args.probes.split(",")
    sdpa = contextlib.nullcontext()
    if big:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        sdpa = sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION])
    rows, bounds = [], {}
    with sdpa:
        for lm in lms:
            for probe in probes:
                options = {**SINGLE_PASS, **MULTI_PASS}[probe]
                n_items = args.n_items if probe in SINGLE_PASS else 1
                rows.append(bench_probe(probe, lm, options, n_items=n_items, datasets=args.datasets,
                                        batch_size=args.batch_size))
                r = rows[-1]
                print(f"{r['model']:22s} {probe:12s} {r['items']:5d} items {r['seconds']:7.1f} s "
                      f"{r['items_per_s']:7.2f} items/s {r['tokens_per_s']:9.0f} tok/s {r['gflops']:7.1f} GFLOP/s",
                      flush=True)
            bounds[lm.name] = kernel_bound(lm, model_dims(lm), length=1223, rows=12)
            if args.profile and dev.type == "cpu":
                print(profile_batch(lm, rows=13))
    after = ceiling(dev, dtype, sizes)
    best = max(*before[str(dtype)].values(), *after.values())
    print(f"ceiling {str(dtype)} after: " + ", ".join(f"{n}^3 {g:.1f}" for n, g in after.items())
          + f"; best {best:.1f} GFLOP/s")
    print(f"\n| model | probe | items | items/s | tokens/s | model GFLOP/s | MFU vs {best:.0f} GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        r["mfu"] = r["gflops"] / best
        print(f"| {r['model']} | {r['probe']} | {r['items']} | {r['items_per_s']:.2f} | {r['tokens_per_s']:,.0f} "
              f"| {r['gflops']:.1f} | {100 * r['mfu']:.1f}% |")
    print(f"\nThe model's own kernels at the suite's shape (12 rows x 1,223 tokens), vs {best:.0f} GFLOP/s:")
    print("| model | attention (SDPA) | linear (width -> 3 x width) | MFU bound with free elementwise ops |")
    print("|---|---|---|---|")
    for name, b in bounds.items():
        print(f"| {name} | {100 * b['attention_gflops'] / best:.1f}% | {100 * b['linear_gflops'] / best:.1f}% "
              f"| {100 * b['bound_gflops'] / best:.1f}% |")
    widths = {model_dims(lm)["d"] for lm in lms}
    heads_table = {w: attention_by_head_dim(dev, dtype, length=1223, rows=12 if w <= 512 else 1, width=w) for w in widths}
    for w, table in heads_table.items():
        print(f"\nAttention alone at width {w}, 1,223 tokens, by head dim (same counted FLOPs), vs {best:.0f} GFLOP/s:")
        print("| head dim | heads | SDPA |")
        print("|---|---|---|")
        for h in table:
            print(f"| {h['head_dim']} | {h['heads']} | {100 * h['gflops'] / best:.1f}% |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(dev), "ceiling_gflops": best, "kernel_bounds": bounds, "before": {
            k: {str(n): g for n, g in v.items()} for k, v in before.items()}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
