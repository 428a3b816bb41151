"""Peak memory of gradient attribution on LLaDA-8B's layer shape, measured on CPU and extrapolated.

Does `masktax probe attribution` on LLaDA-8B in bf16 fit one 80 GB GPU at the paper's context
length? Without a GPU we measure what we can: a random-weight native LLaDA with 8B's width
(d 4096, MLP 12288, 32 heads, vocabulary 126,464) but only 1 and 2 layers, in bf16, runs the probe's
own `embedding_gradients` (forward + backward to the input embeddings, weights frozen, the head at
the answer row only) on `--seq-len`-token rows. Each configuration runs in a fresh process; its peak
resident memory above the built model (Linux VmHWM after resetting it through clear_refs) is the
activation memory. The per-layer cost is the 2-layer minus the 1-layer figure, so

    activations(32 layers) = act(1) + 31 * (act(2) - act(1))
    peak(32 layers, batch b) = weights(8B, bf16) + b * activations(32 layers, batch 1)

and both are printed next to `masktax.models.batching.backward_bytes_per_token`, the estimate the
probe sizes its batches with. CPU kernels are not CUDA kernels (SDPA's CPU flash kernel and cuBLAS
workspaces differ), so this checks the estimate's structure, not a GPU's exact peak.

    python bench/bench_attribution_memory.py                 # seq 1300, batches 1 and 2 (~3 min, 8 GB RAM)
    python bench/bench_attribution_memory.py --seq-len 1100 --batch-sizes 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

GIB = 2**30
GPU_BYTES = 80e9  # "one 80 GB GPU"


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child(layers: int, seq_len: int, batch: int) -> dict:
    """Build, then measure one attribution batch; runs in its own process."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_llada_forward import SHAPES

    from masktax.models.batching import backward_bytes_per_token
    from masktax.models.llada import LLaDAConfig, LLaDAModelLM
    from masktax.models.loaded import LoadedModel
    from masktax.probes.gradients import embedding_gradients

    torch.manual_seed(0)
    cfg = LLaDAConfig(**{**SHAPES["8b"], "n_layers": layers})
    with torch.device("meta"):
        model = LLaDAModelLM(cfg)
    model = model.to_empty(device="cpu").to(torch.bfloat16)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(1.0) if name.endswith("norm.weight") or name.endswith("ln_f.weight") else p.normal_(0.0, 0.02)
    model.eval()
    lm = LoadedModel(name=f"llada-8b-width-{layers}l", model=model, tokenizer=None, kind="mdlm", mask_id=None,
                      shift=False, max_length=cfg.max_sequence_length)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq_len))
    answer = torch.full((batch,), seq_len - 50)
    embedding_gradients(lm, ids[:, :64], torch.full((batch,), 10))  # warm the kernels up
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _status("VmRSS")
    start = time.perf_counter()
    grads, _ = embedding_gradients(lm, ids, answer)
    seconds = time.perf_counter() - start
    assert torch.isfinite(grads.float()).all()
    return {
        "layers": layers, "batch": batch, "seq_len": seq_len, "seconds": seconds,
        "activation_bytes": _status("VmHWM") - base,
        "estimate_bytes": batch * seq_len * backward_bytes_per_token(lm, seq_len, full_logits=False),
    }


def measure(layers: int, seq_len: int, batch: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(layers), str(seq_len), str(batch)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def weights_8b_bytes() -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_llada_forward import SHAPES

    from masktax.models.llada import LLaDAConfig, LLaDAModelLM

    with torch.device("meta"):
        model = LLaDAModelLM(LLaDAConfig(**SHAPES["8b"]))
    return sum(p.numel() for p in model.parameters()) * 2  # bf16


def estimate_8b_bytes_per_seq(seq_len: int) -> int:
    """The probe's estimate for the real 32-layer shape (meta model, no memory)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_llada_forward import SHAPES

    from masktax.models.batching import backward_bytes_per_token
    from masktax.models.llada import LLaDAConfig, LLaDAModelLM
    from masktax.models.loaded import LoadedModel

    with torch.device("meta"):
        model = LLaDAModelLM(LLaDAConfig(**SHAPES["8b"])).to(torch.bfloat16)
    lm = LoadedModel(name="llada-8b", model=model, tokenizer=None, kind="mdlm", mask_id=None, shift=False,
                      max_length=4096)
    return seq_len * backward_bytes_per_token(lm, seq_len, full_logits=False)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(_child(*(int(x) for x in sys.argv[2:]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq-len", type=int, default=1300, help="suite's longest prompt + 200 masks, LLaDA tokenizer")
    ap.add_argument("--batch-sizes", default="1,2")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args()
    rows = []
    print(f"LLaDA-8B width, bf16, CPU, seq_len {args.seq_len}: forward + backward to the embeddings")
    print("| layers | batch | seconds | measured GiB | estimate GiB |")
    print("|---|---|---|---|---|")
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        for layers in (1, 2):
            r = measure(layers, args.seq_len, batch)
            rows.append(r)
            print(f"| {layers} | {batch} | {r['seconds']:.1f} | {r['activation_bytes'] / GIB:.3f} | "
                  f"{r['estimate_bytes'] / GIB:.3f} |")
    weights = weights_8b_bytes()
    est = estimate_8b_bytes_per_seq(args.seq_len)
    print(f"\nLLaDA-8B weights in bf16: {weights / GIB:.2f} GiB")
    summary = []
    for batch in sorted({r["batch"] for r in rows}):
        one, two = (next(r for r in rows if r["batch"] == batch and r["layers"] == n) for n in (1, 2))
        per_layer = two["activation_bytes"] - one["activation_bytes"]
        act32 = one["activation_bytes"] + 31 * per_layer
        per_seq = act32 / batch
        fits = int((GPU_BYTES - weights) // per_seq)
        summary.append({"batch": batch, "per_layer_bytes": per_layer, "activations_32_layers": act32,
                        "per_seq_bytes": per_seq, "estimate_per_seq_bytes": est, "max_batch_80gb": fits})
        print(f"batch {batch}: per layer {per_layer / GIB:.3f} GiB -> 32 layers {act32 / GIB:.2f} GiB "
              f"({per_seq / GIB:.2f} GiB/row; estimate {est / GIB:.2f} GiB/row, ratio {est / per_seq:.2f}); "
              f"weights + one row {(weights + per_seq) / 1e9:.1f} GB; rows that fit 80 GB: {fits}")
    if args.json:
        Path(args.json).write_text(json.dumps({"seq_len": args.seq_len, "weights_bytes": weights, "rows": rows,
                                               "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
