"""Dtype by capability: bf16 on a CPU only where a short measured matmul says it is faster.

A CPU's bf16 speed depends on its instruction set, not on a config: on AMD EPYC with AVX2 only, a
512^3 bf16 matmul ran 14x SLOWER than fp32 (a pretraining step ~10 s with bf16 autocast, ~2 s
without); on a CPU with AVX512_BF16 / AMX it runs several times faster. So `autocast: auto` asks
this machine, once per process (`matmul_gflops` is cached):

    auto on CUDA        -> bf16
    auto on CPU         -> bf16 if bf16 matmul GFLOP/s >= BF16_MARGIN x fp32 GFLOP/s, else off (fp32)
    auto elsewhere      -> off
    bf16 / off          -> as given; a forced bf16 (or fp16) that measures slower than fp32 on this CPU
                           gets a one-line notice (`slow_dtype_notice`)

The margin keeps measurement noise from flipping the choice on a CPU where the two are close; a
training run also records its choice (env.json, and its checkpoints, which a resume follows).
Probes do not use this for `--dtype auto` (fp32 on CPU): their numbers must not depend on which
CPU ran them.
"""

from __future__ import annotations

import functools
import sys
import time

import torch

BF16_MARGIN = 1.25  # bf16 must be this much faster than fp32 to be chosen
PROBE_N = 512  # the measured matmul is PROBE_N^3 (about 0.27 GFLOP)
AUTOCAST_CHOICES = ("auto", "bf16", "off")


def time_matmul(n: int, dtype: torch.dtype, device: torch.device, *, repeats: int = 3, inner: int = 2) -> float:
    """Best seconds of one n x n x n matmul (`repeats` timings of `inner` calls, after a warm-up)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)  # [n, n]
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)  # [n, n]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a @ b
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            a @ b
        sync()
        best = min(best, (time.perf_counter() - start) / inner)
    return best


@functools.cache
def matmul_gflops(dtype: torch.dtype, device_type: str = "cpu", n: int = PROBE_N) -> float:
    """Measured GFLOP/s of an n^3 matmul in `dtype` (cached per process: measured once)."""
    return 2 * n**3 / time_matmul(n, dtype, torch.device(device_type)) / 1e9


def cpu_speedup(dtype: torch.dtype) -> float:
    """How many times faster a `dtype` matmul runs than fp32 on this CPU (< 1: slower)."""
    return matmul_gflops(dtype) / matmul_gflops(torch.float32)


def autocast_dtype(request: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `request` ("auto", "bf16", "off") on `device`; None = no autocast (fp32)."""
    if request not in AUTOCAST_CHOICES:
        raise ValueError(f"autocast must be one of {AUTOCAST_CHOICES}, got {request!r}")
    if request == "off":
        return None
    if request == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "cpu" and cpu_speedup(torch.bfloat16) >= BF16_MARGIN:
        return torch.bfloat16
    return None


def autocast_record(request: str, device: torch.device, chosen: torch.dtype | None) -> dict:
    """What a run stores about its autocast: asked, chosen and (on CPU) the measurement behind it."""
    out: dict = {"requested": request, "chosen": "bf16" if chosen is torch.bfloat16 else "off"}
    if device.type == "cpu" and (request == "auto" or chosen is not None):
        out["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        out["matmul_gflops"] = {"float32": round(matmul_gflops(torch.float32), 1),
                                "bfloat16": round(matmul_gflops(torch.bfloat16), 1), "n": PROBE_N}
    return out


def slow_dtype_notice(dtype: torch.dtype | None, device: torch.device) -> str | None:
    """A one-line notice when `dtype` (bf16 / fp16 forced by the user) is slower than fp32 on this CPU."""
    if device.type != "cpu" or dtype not in (torch.bfloat16, torch.float16):
        return None
    speedup = cpu_speedup(dtype)
    if speedup >= 1.0:
        return None
    name = str(dtype).removeprefix("torch.")
    return (f"masktax: note: {name} runs {1 / speedup:.1f}x slower than float32 on this CPU "
            f"({torch.backends.cpu.get_cpu_capability()}, measured {PROBE_N}^3 matmul); 'auto' would use float32")


@functools.cache
def print_notice(text: str) -> None:
    """Print a notice once per process (on stderr)."""
    print(text, file=sys.stderr)
