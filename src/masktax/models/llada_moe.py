"""Native LLaDA-MoE (inclusionAI/LLaDA-MoE-7B-A1B-Base / -Instruct): an OLMoE-style MoE transformer run bidirectionally.

Reads the published `config.json` (model_type "lladamoe", `LLaDAMoEModelLM`) and safetensors by their
published names (reference: ZHZisZZ/dllm `dllm/pipelines/llada/models/modeling_lladamoe.py`):
`model.embed_tokens`, `model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, self_attn.{q,k}_norm,
post_attention_layernorm, mlp, shared_expert}`, `model.norm`, `lm_head`. Per layer (pre-norm):

    h = x + o_proj(Attn(RoPE(qn(q_proj(n))), RoPE(kn(k_proj(n))), v_proj(n))),   n = input_layernorm(x)
    y = h + MLP(m) + shared_expert(m),                                            m = post_attention_layernorm(h)

`qn`/`kn` are per-head RMSNorms (`qk_layernorm`); RoPE turns the first `head_dim *
partial_rotary_factor` dims. `moe_layer_freq[N]` picks the MLP: 0 a dense SwiGLU
(`dense_intermediate_size`), else `mlp.gate` routing each token to `num_experts_per_tok` of
`mlp.experts` (softmax top-k, see `moe.softmax_topk`); the shared expert (when
`shared_expert_intermediate_size` is set) runs on MoE layers only. Logits are in place (position i
predicts token i); the mask token is 156895. Padding is masked (the published code masks keys too).

    model = LLaDAMoEModelLM.from_pretrained("path/to/LLaDA-MoE-7B-A1B-Base", device="cuda", dtype=torch.bfloat16)
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models import attention, blocks, moe
from masktax.models.native import BlockCausalLM, DecoderConfig


@dataclasses.dataclass
class LLaDAMoEConfig(DecoderConfig):
    """The fields of the published `configuration_lladamoe.py` that the forward pass uses."""

    vocab_size: int = 157184
    hidden_size: int = 2048
    num_hidden_layers: int = 16
    num_attention_heads: int = 16
    num_key_value_heads: int | None = None  # None: num_attention_heads
    dense_intermediate_size: int | None = None  # SwiGLU width of layers with moe_layer_freq 0
    expert_intermediate_size: int = 1024  # SwiGLU width of each routed expert
    shared_expert_intermediate_size: int | None = None  # None: no shared expert
    num_experts: int = 64
    num_experts_per_tok: int = 8  # k of the top-k router
    moe_layer_freq: list | None = None  # per layer: 0 dense MLP, else MoE
    moe_router_enable_expert_bias: bool | None = None  # a learned bias added to the router's probabilities
    qk_layernorm: bool | None = None  # per-head RMSNorm on queries and keys
    attention_bias: bool = False  # biases on q/k/v/o
    clip_qkv: float | None = None  # clamp q, k, v to [-clip, clip]
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-5
    rope_theta: float = 50000.0
    partial_rotary_factor: float = 1.0  # share of each head RoPE turns
    rope_scaling: dict | None = None
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = False
    mask_token_id: int | None = None  # 156895 for the published checkpoints (their tokenizer's <|mask|>)
    required: ClassVar[tuple[str, ...]] = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                                           "num_experts", "num_experts_per_tok", "expert_intermediate_size",
                                           "moe_layer_freq", "rope_theta", "partial_rotary_factor")

    def __post_init__(self) -> None:
        self.require_positive("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                              "num_key_value_heads", "expert_intermediate_size", "num_experts", "num_experts_per_tok",
                              "max_position_embeddings")
        if self.hidden_act != "silu":
            raise MasktaxError(f"LLaDA-MoE config has hidden_act={self.hidden_act!r}; only 'silu' is supported")
        if self.rope_scaling:
            raise MasktaxError("LLaDA-MoE config sets rope_scaling, which the native LLaDA-MoE does not support")
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % self.kv_heads:
            raise MasktaxError("LLaDA-MoE config: hidden_size, num_attention_heads and num_key_value_heads do not divide")
        if not 0 < self.partial_rotary_factor <= 1:
            raise MasktaxError(f"LLaDA-MoE config: partial_rotary_factor {self.partial_rotary_factor} is not in (0, 1]")
        freq = self.moe_layer_freq or []
        if len(freq) != self.num_hidden_layers:
            raise MasktaxError(f"LLaDA-MoE config: moe_layer_freq has {len(freq)} entries for {self.num_hidden_layers} layers")
        if any(f == 0 for f in freq) and not self.dense_intermediate_size:
            raise MasktaxError("LLaDA-MoE config: a dense layer (moe_layer_freq 0) needs dense_intermediate_size")
        if self.num_experts_per_tok > self.num_experts:
            raise MasktaxError("LLaDA-MoE config: num_experts_per_tok exceeds num_experts")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


class LLaDAMoESparseMoeBlock(nn.Module):
    """`gate` (router), `experts`, and `expert_bias` when the config enables it (published names)."""

    def __init__(self, cfg: LLaDAMoEConfig) -> None:
        super().__init__()
        self.k = cfg.num_experts_per_tok
        self.gate = nn.Linear(cfg.hidden_size, cfg.num_experts, bias=False)
        self.experts = nn.ModuleList(moe.SwiGLU(cfg.hidden_size, cfg.expert_intermediate_size)
                                     for _ in range(cfg.num_experts))
        self.expert_bias = moe.expert_bias(cfg.num_experts) if cfg.moe_router_enable_expert_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        flat = x.reshape(-1, d)  # [T, d]
        weights, ids = moe.softmax_topk(self.gate(flat), self.k, self.expert_bias)  # 2 x [T, k]
        # the published block multiplies and sums in the hidden states' dtype
        return moe.run_experts(flat, ids, weights.to(x.dtype), self.experts).view(b, n, d)  # [b, l, d]


class LLaDAMoEDecoderLayer(nn.Module):
    def __init__(self, cfg: LLaDAMoEConfig, index: int) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.input_layernorm = blocks.RMSNorm(d, cfg.rms_norm_eps)
        self.self_attn = attention.SelfAttention(d, cfg.num_attention_heads, cfg.kv_heads, cfg.head_dim,
                                                 qkv_bias=cfg.attention_bias, o_bias=cfg.attention_bias,
                                                 qk_norm=bool(cfg.qk_layernorm), eps=cfg.rms_norm_eps, clip=cfg.clip_qkv)
        self.post_attention_layernorm = blocks.RMSNorm(d, cfg.rms_norm_eps)
        is_moe = cfg.moe_layer_freq[index] != 0
        self.mlp = LLaDAMoESparseMoeBlock(cfg) if is_moe else moe.SwiGLU(d, cfg.dense_intermediate_size)
        if is_moe and cfg.shared_expert_intermediate_size is not None:
            self.shared_expert = moe.SwiGLU(d, cfg.shared_expert_intermediate_size)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None) -> torch.Tensor:
        h = x + self.self_attn(self.input_layernorm(x), rope, mask)  # [b, l, d]
        m = self.post_attention_layernorm(h)  # [b, l, d]
        y = self.mlp(m)  # [b, l, d]
        if hasattr(self, "shared_expert"):
            y = y + self.shared_expert(m)
        return h + y  # [b, l, d]


class LLaDAMoEModelLM(BlockCausalLM):
    """LLaDA-MoE masked diffusion LM; `forward` returns raw in-place logits `[b, l, vocab_size]`.

    Layout and forward are `native.BlockCausalLM`'s, with no blocks: attention is bidirectional."""

    config_class = LLaDAMoEConfig
    model_type = "lladamoe"
    architectures = ("LLaDAMoEModelLM",)
    family = "LLaDA-MoE"
    layer_class = LLaDAMoEDecoderLayer
    config: LLaDAMoEConfig

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        return blocks.rope_cos_sin(positions, attention.rotary_dim(cfg.head_dim, cfg.partial_rotary_factor),
                                   cfg.rope_theta)  # 2 x [b, l, r]
