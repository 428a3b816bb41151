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


def position_ids(attention_mask: torch.Tensor | None, batch: int, length: int, device: torch.device) -> torch.Tensor:
    """Position of every token among the real tokens of its row `[b, l]`; pads get position 0."""
    if attention_mask is None:
        return torch.arange(length, device=device).expand(batch, length)  # [b, l]
    mask = attention_mask.to(device=device, dtype=torch.long)  # [b, l]
    return (mask.cumsum(-1) - 1).clamp_min(0) * mask  # [b, l]


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
    if full_precision:
        xf = upcast(x)  # [b, h, l, hd]
        return (xf * cos + rotate_half(xf) * sin).to(x.dtype)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_half(x) * sin  # [b, h, l, hd]


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
) -> torch.Tensor:
    """Bidirectional multi-head attention `softmax(q k^T / sqrt(hd) + mask) v`, output projected `[b, l, d]`."""
    b, n, _ = x.shape
    q = q_proj(x).view(b, n, n_heads, -1).transpose(1, 2)  # [b, h, l, hd]
    k = k_proj(x).view(b, n, n_kv_heads, -1).transpose(1, 2)  # [b, kv, l, hd]
    v = v_proj(x).view(b, n, n_kv_heads, -1).transpose(1, 2)  # [b, kv, l, hd]
    cos, sin = rope
    q = apply_rope(q, cos, sin, full_precision=rope_full_precision)
    k = apply_rope(k, cos, sin, full_precision=rope_full_precision)
    if n_kv_heads != n_heads:
        k = k.repeat_interleave(n_heads // n_kv_heads, dim=1)  # [b, h, l, hd]
        v = v.repeat_interleave(n_heads // n_kv_heads, dim=1)  # [b, h, l, hd]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=False)  # [b, h, l, hd]
    return o_proj(out.transpose(1, 2).reshape(b, n, -1))  # [b, l, d]


def swiglu(x: torch.Tensor, gate: nn.Linear, up: nn.Linear, down: nn.Linear) -> torch.Tensor:
    """SwiGLU MLP: `down(silu(gate(x)) * up(x))` `[b, l, d]`."""
    return down(F.silu(gate(x)) * up(x))  # [b, l, d]


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
