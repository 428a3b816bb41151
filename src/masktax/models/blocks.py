"""Building blocks shared by the native LLaDA and Dream models.

Both families are Llama-style transformers run bidirectionally: pre-norm RMSNorm, rotary position
embeddings (RoPE, "rotate half" variant), grouped-query attention through
`torch.nn.functional.scaled_dot_product_attention` with `is_causal=False`, and a SwiGLU MLP.
Only the parameter names and a few numeric details differ, so the families keep their own
`nn.Module`s (named as published) and call these functions.

Padding: `attention_mask [b, l]` (1 = token, 0 = pad) becomes a boolean key-padding mask, and
position ids count real tokens only (`cumsum(mask) - 1`, as Dream's reference sampler builds
`tok_idx`), so a left- or right-padded row gives the same logits as the unpadded row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def upcast(x: torch.Tensor) -> torch.Tensor:
    """x in at least fp32 (bf16/fp16 -> fp32; fp64 stays fp64, so float64 checks stay exact)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


class RMSNorm(nn.Module):
    """`y = w * (x / sqrt(mean(x^2) + eps))`, normalised in fp32 and cast back before the weight."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = upcast(x)  # [b, l, d]
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)  # [b, l, d]
        return self.weight * h.to(dtype)  # [b, l, d]


def position_ids(
    attention_mask: torch.Tensor | None, batch: int, length: int, device: torch.device, start: int = 0
) -> torch.Tensor:
    """Position of every token among the real tokens of its row `[b, l]`; pads get position 0.

    With a KV cache the forward runs only the window of `length` positions from `start`, and
    `attention_mask` covers every position the keys hold (as in transformers)."""
    if attention_mask is None:
        return torch.arange(start, start + length, device=device).expand(batch, length)  # [b, l]
    mask = attention_mask.to(device=device, dtype=torch.long)  # [b, L]
    return ((mask.cumsum(-1) - 1).clamp_min(0) * mask)[:, start:start + length]  # [b, l]


def key_padding_mask(attention_mask: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    """Boolean SDPA mask `[b, 1, 1, l]` (True = may attend), or None when nothing is padded.

    Only keys are masked: a pad query still attends to the real tokens, so no row is empty (an
    all-False row would make SDPA return NaN), and pad outputs are never used.
    """
    if attention_mask is None:
        return None
    keep = attention_mask.to(device=device).bool()  # [b, l]
    if bool(keep.all()):
        return None
    return keep[:, None, None, :]  # [b, 1, 1, l]


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE tables in fp32 `[b, l, head_dim]`: angle `p * theta^(-2i/head_dim)`, repeated for both halves."""
    inv_freq = 1.0 / (
        theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim)
    )  # [hd/2]
    freqs = positions.float()[..., None] * inv_freq  # [b, l, hd/2]
    angles = torch.cat([freqs, freqs], dim=-1)  # [b, l, hd]
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """`[x1, x2] -> [-x2, x1]` on the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, full_precision: bool) -> torch.Tensor:
    """`x * cos + rotate_half(x) * sin` on `x [b, h, l, hd]`.

    full_precision=True rotates in fp32 and casts back (LLaDA's `rope_full_precision`);
    False casts the tables to x's dtype first (Dream / Qwen2). Identical in fp32.
    """
    cos, sin = cos[:, None], sin[:, None]  # [b, 1, l, hd]
    xf = upcast(x) if full_precision else x  # [b, h, l, hd]
    if not full_precision:
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    if torch.is_grad_enabled() and xf.requires_grad:
        return (xf * cos + rotate_half(xf) * sin).to(x.dtype)
    # Inference: the same IEEE operations on the same operands, half by half, with no cat, no negation
    # and no full-size temporaries ((-a)*b == -(a*b) and p + (-q) == p - q exactly; the tables repeat
    # [f, f], so each half of cos/sin is the whole table): bit-identical, ~8% faster forwards
    # (bench/bench_exact_rewrites.py).
    h = xf.shape[-1] // 2
    x1, x2, c, s = xf[..., :h], xf[..., h:], cos[..., :h], sin[..., :h]
    out = torch.empty_like(xf)  # [b, h, l, hd]
    torch.mul(x1, c, out=out[..., :h]).sub_(x2 * s)
    torch.mul(x2, c, out=out[..., h:]).add_(x1 * s)
    return out.to(x.dtype)


def attention(
    x: torch.Tensor,
    q_proj: nn.Linear,
    k_proj: nn.Linear,
    v_proj: nn.Linear,
    o_proj: nn.Linear,
    *,
    n_heads: int,
    n_kv_heads: int,
    rope: tuple[torch.Tensor, torch.Tensor],
    mask: torch.Tensor | None,
    rope_full_precision: bool,
    kv: LayerKV | None = None,
) -> torch.Tensor:
    """Bidirectional multi-head attention `softmax(q k^T / sqrt(hd) + mask) v`, output projected `[b, l, d]`.

    With `kv` the window's keys and values take their place among the cached ones (see `KVCache`)."""
    b, n, _ = x.shape
    q = q_proj(x).view(b, n, n_heads, -1).transpose(1, 2)  # [b, h, l, hd]
    k = k_proj(x).view(b, n, n_kv_heads, -1).transpose(1, 2)  # [b, kv, l, hd]
    v = v_proj(x).view(b, n, n_kv_heads, -1).transpose(1, 2)  # [b, kv, l, hd]
    cos, sin = rope
    q = apply_rope(q, cos, sin, full_precision=rope_full_precision)
    k = apply_rope(k, cos, sin, full_precision=rope_full_precision)
    if kv is not None:
        k, v = kv.splice(k, v)  # [b, kv, L, hd] the window among the cached positions
    if n_kv_heads != n_heads:
        k = k.repeat_interleave(n_heads // n_kv_heads, dim=1)  # [b, h, l, hd]
        v = v.repeat_interleave(n_heads // n_kv_heads, dim=1)  # [b, h, l, hd]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=False)  # [b, h, l, hd]
    return o_proj(out.transpose(1, 2).reshape(b, n, -1))  # [b, l, d]


class KVCache:
    """Keys and values of every layer, for decoding with a cache (Fast-dLLM's prefix and dual caches).

    Per layer it holds keys and values `[b, kv_heads, L, hd]` of positions 0..L-1 (keys after RoPE,
    before the grouped-query repeat). A forward given the cache runs only a window of positions
    `[start, start + w)` (`window(start, write=...)` sets it): the window's fresh keys and values
    take the place of the cached ones at those positions, the cached positions before and after it
    stay, and attention runs over the result. With `write` the result becomes the cache. So:
    an empty cache, start 0, write: a full forward that fills the cache (same numbers as no cache);
    cache of positions < start, window [start, L): Fast-dLLM's prefix cache; a cache of all L
    positions, window one block: its dual cache (the suffix's keys come from the last full forward).
    For a bidirectional model a cached position's keys are stale once the window's tokens change:
    the cache is an approximation, refreshed by the caller (a full forward per block).
    """

    def __init__(self) -> None:
        self.keys: dict[int, torch.Tensor] = {}  # layer -> [b, kv, L, hd]
        self.values: dict[int, torch.Tensor] = {}  # layer -> [b, kv, L, hd]
        self.start = 0
        self.write = True

    def __len__(self) -> int:
        """Positions cached (0 when empty)."""
        return next(iter(self.keys.values())).shape[2] if self.keys else 0

    def window(self, start: int, *, write: bool) -> KVCache:
        """Set where the next forward's positions begin, and whether it writes the cache; returns self."""
        if not 0 <= start <= len(self):
            raise ValueError(f"a window at {start} leaves a gap after the {len(self)} cached positions")
        self.start, self.write = start, write
        return self

    def truncate(self, length: int) -> None:
        """Keep the cached positions before `length` (the prefix cache)."""
        for cache in (self.keys, self.values):
            for layer, t in cache.items():
                cache[layer] = t[:, :, :length]

    def layer(self, index: int) -> LayerKV:
        return LayerKV(self, index)

    def splice(self, index: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values `[b, kv, L, hd]` of layer `index`: the cache with the window's `k`, `v` in place."""
        if index in self.keys:
            end = self.start + k.shape[2]
            old_k, old_v = self.keys[index], self.values[index]  # [b, kv, L, hd]
            k = torch.cat([old_k[:, :, : self.start], k, old_k[:, :, end:]], dim=2)  # [b, kv, L', hd]
            v = torch.cat([old_v[:, :, : self.start], v, old_v[:, :, end:]], dim=2)  # [b, kv, L', hd]
        elif self.start != 0:
            raise ValueError(f"layer {index} has no cache to place a window at {self.start} in")
        if self.write:
            self.keys[index], self.values[index] = k, v
        return k, v


class LayerKV:
    """One layer's view of a `KVCache` (what `attention` gets)."""

    def __init__(self, cache: KVCache, index: int) -> None:
        self.cache, self.index = cache, index

    def splice(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cache.splice(self.index, k, v)


def swiglu(x: torch.Tensor, gate: nn.Linear, up: nn.Linear, down: nn.Linear) -> torch.Tensor:
    """SwiGLU MLP: `down(silu(gate(x)) * up(x))` `[b, l, d]`."""
    if torch.is_grad_enabled():
        return down(F.silu(gate(x)) * up(x))  # [b, l, d]
    return down(F.silu(gate(x), inplace=True).mul_(up(x)))  # the same roundings, no temporaries


def init_linear_and_embedding(module: nn.Module, generator: torch.Generator) -> None:
    """Seeded random init: N(0, 1/fan_in) truncated at 3 std for linears, N(0, 1/d) for embeddings.

    A fan-in scale (like LLaDA's "mitchell" init) keeps tiny random models' logits far from uniform,
    so tests can see differences. Norm weights get 1 + N(0, 0.01) and biases N(0, 0.02^2), so a
    test also notices if they are dropped on save or load.
    """
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            std = sub.in_features**-0.5
            with torch.no_grad():
                sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator).clamp_(-3, 3) * std)
                if sub.bias is not None:
                    sub.bias.copy_(torch.randn(sub.bias.shape, generator=generator) * 0.02)
        elif isinstance(sub, nn.Embedding):
            with torch.no_grad():
                sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator))
        elif isinstance(sub, RMSNorm):
            with torch.no_grad():
                sub.weight.copy_(1.0 + 0.1 * torch.randn(sub.weight.shape, generator=generator))
