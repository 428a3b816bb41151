"""Attention pieces the newer families add to `blocks`: partial rotary, per-head q/k norms, block-causal masks.

LLaDA-MoE, LLaDA2, SDAR and Fast-dLLM v2 keep LLaDA's and Dream's layout (pre-norm RMSNorm, RoPE
"rotate half", grouped-query attention through SDPA) and add:

- partial rotary (`partial_rotary_factor`): RoPE turns only the first `r = head_dim * factor` dims
  of each head (LLaDA2: 0.5); the rest pass through unrotated;
- per-head RMSNorm of queries and keys before RoPE (LLaDA-MoE `qk_layernorm`, LLaDA2 `use_qk_norm`);
- block-causal attention (LLaDA2, SDAR, Fast-dLLM v2): the sequence is cut into blocks of `B`
  positions counted from the first real token; a query in block j sees every key in blocks <= j
  (bidirectional inside its block, causal across blocks):

      allowed[q, k] = real[k] and pos[k] // B <= pos[q] // B

  Positions count real tokens only (`blocks.position_ids`), so a padded row keeps the block
  boundaries of the unpadded row and gives the same logits.

`SelfAttention` (q/k/v/o projections, optional q/k norms and clip) and the pre-norm `DecoderLayer`
are the Llama/Qwen modules SDAR, Fast-dLLM v2 and LLaDA-MoE build their layers from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from masktax.errors import MasktaxError
from masktax.models import blocks


def heads(x: torch.Tensor, n: int) -> torch.Tensor:
    """`[b, l, n * hd] -> [b, n, l, hd]`."""
    b, length, _ = x.shape
    return x.view(b, length, n, -1).transpose(1, 2)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on the first `cos.shape[-1]` dims of each head of `x [b, h, l, hd]`; the rest pass through.

    Tables are cast to x's dtype first (transformers' Llama/Qwen convention); identical in fp32."""
    r = cos.shape[-1]
    turned = blocks.apply_rope(x[..., :r], cos, sin, full_precision=False)  # [b, h, l, r]
    return torch.cat([turned, x[..., r:]], dim=-1) if r < x.shape[-1] else turned  # [b, h, l, hd]


def rotary_dim(head_dim: int, partial_rotary_factor: float) -> int:
    """Dims RoPE turns: `int(head_dim * factor)` (transformers' default RoPE init)."""
    return int(head_dim * partial_rotary_factor)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """`softmax(q k^T / sqrt(hd) + mask) v` with grouped-query keys; q `[b, h, l, hd]`, k/v `[b, kv, L, hd]`,
    mask boolean (True = may attend) or additive, broadcastable to `[b, h, l, L]`. Returns `[b, l, h * hd]`."""
    b, h, n, _ = q.shape
    if mask is not None and mask.is_floating_point():
        mask = mask.to(q.dtype)  # an additive mask in the model's dtype (SDPA wants them equal)
    if k.shape[1] != h:
        k = k.repeat_interleave(h // k.shape[1], dim=1)  # [b, h, L, hd]
        v = v.repeat_interleave(h // v.shape[1], dim=1)  # [b, h, L, hd]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=False)  # [b, h, l, hd]
    return out.transpose(1, 2).reshape(b, n, -1)  # [b, l, h * hd]


def block_causal_mask(
    attention_mask: torch.Tensor | None, positions: torch.Tensor, block_size: int
) -> torch.Tensor:
    """Boolean mask `[b, 1, l, l]`: key k is visible to query q iff k is real and its block is not later.

    `positions [b, l]` from `blocks.position_ids` (pads get 0, so a pad query sees block 0 and its
    row is never empty). Blocks count from position 0, as the published block samplers lay them out."""
    block = positions // block_size  # [b, l]
    allowed = block[:, None, :] <= block[:, :, None]  # [b, q, k]
    if attention_mask is not None:
        allowed = allowed & attention_mask.to(device=positions.device).bool()[:, None, :]
    return allowed[:, None]  # [b, 1, l, l]


def layer_mask(
    attention_mask: torch.Tensor | None, positions: torch.Tensor, block_size: int | None
) -> torch.Tensor | None:
    """The mask every layer uses: block-causal when `block_size` is set, else key padding only (or None).

    A 4-D `attention_mask` (the published block samplers' convention) is used as given: boolean
    True = may attend, or additive float."""
    if attention_mask is not None and attention_mask.dim() == 4:
        return attention_mask
    if block_size:
        return block_causal_mask(attention_mask, positions, block_size)
    return blocks.key_padding_mask(attention_mask, positions.device)


def padding_of(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """The 2-D padding mask positions are counted from (None for a 4-D mask, whose rows are unpadded)."""
    return None if attention_mask is None or attention_mask.dim() == 4 else attention_mask


class BlockCache:
    """Keys and values of FINISHED blocks of a block-causal model, per layer `[b, kv, P, hd]` (after RoPE).

    Exact, unlike a cache of a bidirectional model: a finished block's keys and values depend only
    on it and the blocks before it, which no later step changes. A forward given the cache runs a
    window of positions `[P, P + w)` (P = cached positions, a multiple of the block size); with
    `store` set, the window's keys and values are appended (the caller stores a block once it is
    final, as the published SDAR and LLaDA2 samplers do).
    """

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []  # per layer [b, kv, P, hd]
        self.values: list[torch.Tensor] = []
        self.store = False

    def __len__(self) -> int:
        """Positions cached."""
        return self.keys[0].shape[2] if self.keys else 0

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer `layer`'s keys and values `[b, kv, P + w, hd]`: the cached ones, then the window's."""
        if layer < len(self.keys):
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        if self.store:
            if layer < len(self.keys):
                self.keys[layer], self.values[layer] = k, v
            else:
                self.keys.append(k)
                self.values.append(v)
        return k, v


class SelfAttention(nn.Module):
    """Grouped-query self-attention with the Llama/Qwen names `q_proj`, `k_proj`, `v_proj`, `o_proj`, and per-head
    RMSNorms `q_norm`, `k_norm` when `qk_norm` (Qwen3, OLMoE); `clip` clamps q, k, v to [-clip, clip] (OLMoE):

        o_proj(Attn(RoPE(qn(q_proj(x))), RoPE(kn(k_proj(x))), v_proj(x)))

    With `kv` (a `BlockCache` and this layer's index) the cached blocks' keys and values come first."""

    def __init__(self, hidden: int, heads: int, kv_heads: int, head_dim: int, *, qkv_bias: bool, o_bias: bool,
                 qk_norm: bool, eps: float, clip: float | None = None) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.clip = heads, kv_heads, clip
        self.q_proj = nn.Linear(hidden, heads * head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden, kv_heads * head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(hidden, kv_heads * head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(heads * head_dim, hidden, bias=o_bias)
        self.qk_norm = qk_norm
        if qk_norm:
            self.q_norm = blocks.RMSNorm(head_dim, eps)
            self.k_norm = blocks.RMSNorm(head_dim, eps)

    def forward(self, x: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None,
                kv: tuple[BlockCache, int] | None = None) -> torch.Tensor:
        q = heads(self.q_proj(x), self.heads)  # [b, h, l, hd]
        k = heads(self.k_proj(x), self.kv_heads)  # [b, kv, l, hd]
        v = heads(self.v_proj(x), self.kv_heads)  # [b, kv, l, hd]
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.clip is not None:
            q, k, v = (t.clamp(-self.clip, self.clip) for t in (q, k, v))
        q, k = rope(q, *cos_sin), rope(k, *cos_sin)
        if kv is not None:
            k, v = kv[0].extend(kv[1], k, v)  # [b, kv, P + l, hd] the cached blocks, then this window
        return self.o_proj(attend(q, k, v, mask))  # [b, l, d]


class DecoderLayer(nn.Module):
    """A pre-norm layer with the Llama/Qwen names:

        h = x + self_attn(input_layernorm(x)),   y = h + mlp(post_attention_layernorm(h))"""

    def __init__(self, hidden: int, eps: float, self_attn: nn.Module, mlp: nn.Module) -> None:
        super().__init__()
        self.input_layernorm = blocks.RMSNorm(hidden, eps)
        self.self_attn = self_attn
        self.post_attention_layernorm = blocks.RMSNorm(hidden, eps)
        self.mlp = mlp

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None,
                kv: tuple[BlockCache, int] | None = None) -> torch.Tensor:
        h = x + self.self_attn(self.input_layernorm(x), rope, mask, kv)  # [b, l, d]
        return h + self.mlp(self.post_attention_layernorm(h))  # [b, l, d]


def cached_window(cache: BlockCache, width: int, block_size: int | None, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions `[1, w]` of a window after the cache, and its block-causal mask `[1, 1, w, P + w]`."""
    start = len(cache)
    if not block_size:
        raise ValueError("a KV cache is exact only under block-causal attention; this model attends bidirectionally")
    if start % block_size:
        raise ValueError(f"the cache holds {start} positions, not whole blocks of {block_size}")
    q = torch.arange(start, start + width, device=device)  # [w]
    k = torch.arange(start + width, device=device)  # [P + w]
    return q[None], ((k[None, :] // block_size) <= (q[:, None] // block_size))[None, None]


def run_layers(layers: nn.ModuleList, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
               mask: torch.Tensor | None, cache: BlockCache) -> torch.Tensor:
    """Each layer with its slice of the cache (the cached forward; no gradient checkpointing)."""
    for i, layer in enumerate(layers):
        x = layer(x, rope, mask, (cache, i))
    return x  # [b, w, d]


def refuse_approximate_cache(kv_cache: object | None, family: str) -> None:
    """The samplers' Fast-dLLM prefix/dual caches (`kv_cache=`) are written for LLaDA and Dream; the newer
    families refuse them with a MasktaxError instead of a TypeError."""
    if kv_cache is not None:
        raise MasktaxError(f"--cache prefix/dual is implemented for LLaDA and Dream, not {family}; for a "
                           "block-causal model use masktax.samplers.block_diffusion (its KV cache is exact)")
