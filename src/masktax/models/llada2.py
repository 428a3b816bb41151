"""Native LLaDA2 (inclusionAI/LLaDA2.0-mini / -flash, LLaDA2.1): a Ling-style MoE transformer with block-causal attention.

Reads the published `config.json` (model_type "llada2_moe", `LLaDA2MoeModelLM`) and safetensors by
their published names (reference: ZHZisZZ/dllm `dllm/pipelines/llada2/models/modeling_llada2_moe.py`
and `llada21/`): `model.word_embeddings`, `model.layers.N.{input_layernorm, attention.
{query_key_value, query_layernorm, key_layernorm, dense}, post_attention_layernorm, mlp}`,
`model.norm`, `lm_head`. Per layer (pre-norm):

    q, k, v = split(query_key_value(n)) by heads,  n = input_layernorm(x)
    h = x + dense(Attn(RoPE(qn(q)), RoPE(kn(k)), v))        (qn, kn per-head RMSNorm; RoPE on the
    y = h + MLP(post_attention_layernorm(h))                 first head_dim * partial_rotary_factor dims)

The first `first_k_dense_replace` layers use a dense SwiGLU (`intermediate_size`); the others a MoE
block: `mlp.gate` (`weight`, `expert_bias`) routes each token to `num_experts_per_tok` of
`mlp.experts` (grouped sigmoid top-k, `moe.grouped_sigmoid_topk`), plus `mlp.shared_experts`
(width `moe_intermediate_size * num_shared_experts`) for every token.

Attention is block-causal: the published samplers pass a 4-D mask in which a query sees its own
block and every earlier one (blocks of 32 from position 0, `block_length` of their `generate`).
Here that is the model's own default (`block_size`, not in the published config; None or 0 means
bidirectional), built from a 2-D padding mask; a 4-D mask is used as given. Logits are in place
(position i predicts token i); the mask token is 156895.

    model = LLaDA2MoeModelLM.from_pretrained("path/to/LLaDA2.0-mini-preview", device="cuda", dtype=torch.bfloat16)
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn
from transformers.modeling_outputs import MaskedLMOutput

from masktax.errors import MasktaxError
from masktax.models import attention, blocks, moe
from masktax.models.native import BlockCausalLM, DecoderConfig

BLOCK_SIZE = 32  # block_length of the published LLaDA2 samplers


@dataclasses.dataclass
class LLaDA2MoeConfig(DecoderConfig):
    """The fields of the published `configuration_llada2_moe.py` that the forward pass uses."""

    vocab_size: int = 157184
    hidden_size: int = 2048
    num_hidden_layers: int = 20
    num_attention_heads: int = 16
    num_key_value_heads: int = 0  # 0: num_attention_heads (as LLaDA2.1's config reads it)
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    intermediate_size: int | None = None  # SwiGLU width of the first_k_dense_replace dense layers
    moe_intermediate_size: int | None = None  # SwiGLU width of each expert
    num_experts: int | None = 16  # None: every layer dense
    num_shared_experts: int | None = 0  # the shared expert is moe_intermediate_size * this wide
    num_experts_per_tok: int = 2  # k of the router
    n_group: int = 8  # expert groups; the router keeps the best topk_group of them
    topk_group: int = 4
    routed_scaling_factor: float = 2.5  # the routed experts' weights are scaled by this
    first_k_dense_replace: int = 0  # layers before this one are dense
    use_qkv_bias: bool = False  # bias on query_key_value
    use_bias: bool = True  # bias on the attention output projection `dense`
    use_qk_norm: bool = True  # per-head RMSNorm on queries and keys
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    partial_rotary_factor: float = 0.5  # share of each head RoPE turns
    rope_scaling: dict | None = None
    max_position_embeddings: int = 16384
    tie_word_embeddings: bool = False
    mask_token_id: int | None = None  # 156895 for the published checkpoints
    block_size: int | None = BLOCK_SIZE  # masktax's: attention blocks (not in the published config)
    required: ClassVar[tuple[str, ...]] = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")

    def __post_init__(self) -> None:
        self.require_positive("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "head_dim",
                              "intermediate_size", "moe_intermediate_size", "num_experts", "num_experts_per_tok",
                              "n_group", "topk_group", "max_position_embeddings")
        if self.hidden_act != "silu":
            raise MasktaxError(f"LLaDA2 config has hidden_act={self.hidden_act!r}; only 'silu' is supported")
        if self.rope_scaling:
            raise MasktaxError("LLaDA2 config sets rope_scaling, which the native LLaDA2 does not support")
        if self.num_attention_heads % self.kv_heads:
            raise MasktaxError("LLaDA2 config: num_attention_heads is not a multiple of num_key_value_heads")
        if not 0 < self.partial_rotary_factor <= 1:
            raise MasktaxError(f"LLaDA2 config: partial_rotary_factor {self.partial_rotary_factor} is not in (0, 1]")
        if self.first_k_dense_replace and not self.intermediate_size:
            raise MasktaxError("LLaDA2 config: dense layers (first_k_dense_replace) need intermediate_size")
        if self.num_experts:
            if not self.moe_intermediate_size:
                raise MasktaxError("LLaDA2 config: MoE layers need moe_intermediate_size")
            if self.num_experts % self.n_group or self.topk_group > self.n_group:
                raise MasktaxError("LLaDA2 config: num_experts must split into n_group groups, topk_group <= n_group")
            if self.num_experts_per_tok > self.topk_group * (self.num_experts // self.n_group):
                raise MasktaxError("LLaDA2 config: num_experts_per_tok exceeds the experts of topk_group groups")
        if self.block_size is not None and self.block_size < 0:
            raise MasktaxError(f"field 'block_size' must be positive (or 0/null: bidirectional), got {self.block_size}")

    @property
    def dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads


class LLaDA2MoeAttention(nn.Module):
    def __init__(self, cfg: LLaDA2MoeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hd, heads = cfg.dim, cfg.num_attention_heads
        self.query_key_value = nn.Linear(cfg.hidden_size, (heads + 2 * cfg.kv_heads) * hd, bias=cfg.use_qkv_bias)
        if cfg.use_qk_norm:
            self.query_layernorm = blocks.RMSNorm(hd, cfg.rms_norm_eps)
            self.key_layernorm = blocks.RMSNorm(hd, cfg.rms_norm_eps)
        self.dense = nn.Linear(heads * hd, cfg.hidden_size, bias=cfg.use_bias)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None,
                kv: tuple[attention.BlockCache, int] | None = None) -> torch.Tensor:
        cfg = self.cfg
        b, n, _ = x.shape
        qkv = self.query_key_value(x).view(b, n, -1, cfg.dim).transpose(1, 2)  # [b, h + 2 kv, l, hd]
        q, k, v = qkv.split([cfg.num_attention_heads, cfg.kv_heads, cfg.kv_heads], dim=1)
        if cfg.use_qk_norm:
            q, k = self.query_layernorm(q), self.key_layernorm(k)
        q, k = attention.rope(q, *rope), attention.rope(k, *rope)
        if kv is not None:
            k, v = kv[0].extend(kv[1], k, v)  # [b, kv, P + l, hd] the cached blocks, then this window
        return self.dense(attention.attend(q, k, v, mask))  # [b, l, d]


class LLaDA2MoeGate(nn.Module):
    """The router: `weight [E, d]` and `expert_bias [E]` (published names)."""

    def __init__(self, cfg: LLaDA2MoeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.weight = nn.Parameter(torch.empty(cfg.num_experts, cfg.hidden_size))
        self.expert_bias = moe.expert_bias(cfg.num_experts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        logits = x.float() @ self.weight.float().T  # [T, E] routed in fp32, as published
        return moe.grouped_sigmoid_topk(logits, cfg.num_experts_per_tok, self.expert_bias, n_group=cfg.n_group,
                                        topk_group=cfg.topk_group, scale=cfg.routed_scaling_factor)


class LLaDA2MoeSparseMoeBlock(nn.Module):
    def __init__(self, cfg: LLaDA2MoeConfig) -> None:
        super().__init__()
        self.experts = nn.ModuleList(moe.SwiGLU(cfg.hidden_size, cfg.moe_intermediate_size)
                                     for _ in range(cfg.num_experts))
        self.gate = LLaDA2MoeGate(cfg)
        if cfg.num_shared_experts is not None:
            self.shared_experts = moe.SwiGLU(cfg.hidden_size, cfg.moe_intermediate_size * cfg.num_shared_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        flat = x.reshape(-1, d)  # [T, d]
        weights, ids = self.gate(flat)  # 2 x [T, k]
        y = moe.run_experts(flat, ids, weights, self.experts).view(b, n, d)  # [b, l, d] summed in fp32
        if hasattr(self, "shared_experts"):
            y = y + self.shared_experts(x)
        return y  # [b, l, d]


class LLaDA2MoeDecoderLayer(nn.Module):
    def __init__(self, cfg: LLaDA2MoeConfig, index: int) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.input_layernorm = blocks.RMSNorm(d, cfg.rms_norm_eps)
        self.attention = LLaDA2MoeAttention(cfg)
        self.post_attention_layernorm = blocks.RMSNorm(d, cfg.rms_norm_eps)
        is_moe = cfg.num_experts is not None and index >= cfg.first_k_dense_replace
        self.mlp = LLaDA2MoeSparseMoeBlock(cfg) if is_moe else moe.SwiGLU(d, cfg.intermediate_size)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None,
                kv: tuple[attention.BlockCache, int] | None = None) -> torch.Tensor:
        h = x + self.attention(self.input_layernorm(x), rope, mask, kv)  # [b, l, d]
        return h + self.mlp(self.post_attention_layernorm(h))  # [b, l, d]


class LLaDA2MoeModelLM(BlockCausalLM):
    """LLaDA2 block-diffusion LM; `forward` returns raw in-place logits `[b, l, vocab_size]` (fp32, as published).

    Layout and forward are `native.BlockCausalLM`'s; the embedding is named `word_embeddings`."""

    config_class = LLaDA2MoeConfig
    model_type = "llada2_moe"
    architectures = ("LLaDA2MoeModelLM",)
    family = "LLaDA2"
    layer_class = LLaDA2MoeDecoderLayer
    embed_name = "word_embeddings"
    config: LLaDA2MoeConfig

    @property
    def block_size(self) -> int | None:
        return self.config.block_size or None

    def reset_parameters(self, seed: int = 0) -> None:
        super().reset_parameters(seed)
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, LLaDA2MoeGate):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=g) * module.weight.shape[1] ** -0.5)

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        return blocks.rope_cos_sin(positions, attention.rotary_dim(cfg.dim, cfg.partial_rotary_factor),
                                   cfg.rope_theta)  # 2 x [b, l, r]

    def _head(self, x: torch.Tensor, logits_to_keep: torch.Tensor | None) -> MaskedLMOutput:
        return self._output(self.lm_head(self.model.norm(self._keep(x, logits_to_keep))).float())  # [b, l or k, V]
