"""Native SDAR-MoE (JetLM/SDAR-30B-A3B-Chat, -Sci, -Chat-b32): SDAR's attention on Qwen3-MoE's layers.

Reads the published `config.json` (model_type "sdar_moe", `SDARMoeForCausalLM`) and safetensors by
their published names (reference: the Hub repository's `modeling_sdar_moe.py` and
`configuration_sdar_moe.py`, as copied in Xenearkr/DARE `models/SDAR-30B-A3B-Chat/`; the same file,
edited for TEAM's expert skipping, is in PKU-SEC-Lab/TEAM-MoE-dLLM): `model.embed_tokens`,
`model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, self_attn.{q,k}_norm,
post_attention_layernorm, mlp}`, `model.norm`, `lm_head`. Per layer (pre-norm):

    h = x + o_proj(Attn(RoPE(qn(q_proj(n))), RoPE(kn(k_proj(n))), v_proj(n))),   n = input_layernorm(x)
    y = h + MLP(m),                                                               m = post_attention_layernorm(h)

Attention is SDAR's (`masktax.models.sdar`): per-head q/k RMSNorms, `head_dim` from the config
(else hidden / heads), biases on q/k/v/o when `attention_bias`, and whatever 4-D mask the caller
passes (0/1 floats from the sampler, read as booleans). The MLP of layer i is a MoE block
(`mlp.gate`, `mlp.experts.N.{gate,up,down}_proj`, width `moe_intermediate_size`) when
`i not in mlp_only_layers` and `(i + 1) % decoder_sparse_step == 0`, else a dense SwiGLU of
`intermediate_size`. The router is Qwen3-MoE's: softmax over the experts in fp32, the
`num_experts_per_tok` largest, renormalised to sum to 1 when `norm_topk_prob` (the published
config class defaults to False; the 30B checkpoints set true), cast to the hidden states' dtype; no
shared expert, no expert bias. The published config has no block size: block-causal attention is
the model's own default here (`block_size`, 4 as SDAR was trained; a model card supplies 32 for the
`-b32` checkpoints; 0 or None: bidirectional). Logits are in place; the mask token is 151669.

    model = SDARMoeForCausalLM.from_pretrained("path/to/SDAR-30B-A3B-Chat", device="cuda", dtype=torch.bfloat16)
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models import attention, moe
from masktax.models.sdar import SDARConfig, SDARForCausalLM


@dataclasses.dataclass
class SDARMoeConfig(SDARConfig):
    """The fields of the published `configuration_sdar_moe.py` that the forward pass uses (defaults: its own)."""

    hidden_size: int = 2048
    intermediate_size: int = 6144  # width of the dense layers (mlp_only_layers, decoder_sparse_step)
    num_hidden_layers: int = 24
    num_key_value_heads: int | None = 4
    head_dim: int | None = None  # None: hidden_size // num_attention_heads, as the published attention reads it
    moe_intermediate_size: int = 768  # width of each routed expert
    num_experts: int = 128
    num_experts_per_tok: int = 8  # k of the top-k router
    norm_topk_prob: bool = False  # renormalise the k routing weights (true in the published checkpoints)
    decoder_sparse_step: int = 1  # layer i is MoE when (i + 1) % step == 0 ...
    mlp_only_layers: list | None = None  # ... and i is not listed here
    required: ClassVar[tuple[str, ...]] = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                                           "num_experts", "num_experts_per_tok", "moe_intermediate_size")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require_positive("moe_intermediate_size", "num_experts", "num_experts_per_tok", "decoder_sparse_step")
        if self.num_experts_per_tok > self.num_experts:
            raise MasktaxError("SDAR-MoE config: num_experts_per_tok exceeds num_experts")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in self.mlp_only_layers or []):
            raise MasktaxError(f"SDAR-MoE config: mlp_only_layers should list layer indices, got {self.mlp_only_layers!r:.60}")

    def is_moe(self, index: int) -> bool:
        """Whether layer `index` routes its tokens to experts (else it has a dense SwiGLU)."""
        return index not in (self.mlp_only_layers or []) and (index + 1) % self.decoder_sparse_step == 0


class SDARMoeSparseMoeBlock(nn.Module):
    """`gate` (the router, no bias) and `experts` (published names); softmax top-k, renormalised by `norm_topk_prob`."""

    def __init__(self, cfg: SDARMoeConfig) -> None:
        super().__init__()
        self.k, self.norm = cfg.num_experts_per_tok, cfg.norm_topk_prob
        self.gate = nn.Linear(cfg.hidden_size, cfg.num_experts, bias=False)
        self.experts = nn.ModuleList(moe.SwiGLU(cfg.hidden_size, cfg.moe_intermediate_size)
                                     for _ in range(cfg.num_experts))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        flat = x.reshape(-1, d)  # [T, d]
        weights, ids = moe.softmax_topk(self.gate(flat), self.k, None, norm=self.norm)  # 2 x [T, k]
        # the published block casts the weights to the hidden states' dtype and sums in it
        return moe.run_experts(flat, ids, weights.to(x.dtype), self.experts).view(b, n, d)  # [b, l, d]


class SDARMoeDecoderLayer(attention.DecoderLayer):
    """SDAR's attention (q/k norms, optional biases), then a MoE block or a dense SwiGLU (`cfg.is_moe`)."""

    def __init__(self, cfg: SDARMoeConfig, index: int) -> None:
        bias = cfg.attention_bias
        mlp = SDARMoeSparseMoeBlock(cfg) if cfg.is_moe(index) else moe.SwiGLU(cfg.hidden_size, cfg.intermediate_size)
        super().__init__(cfg.hidden_size, cfg.rms_norm_eps,
                         attention.SelfAttention(cfg.hidden_size, cfg.num_attention_heads, cfg.kv_heads, cfg.dim,
                                                 qkv_bias=bias, o_bias=bias, qk_norm=True, eps=cfg.rms_norm_eps),
                         mlp)


class SDARMoeForCausalLM(SDARForCausalLM):
    """SDAR-MoE block-diffusion LM; `forward` returns raw in-place logits `[b, l, vocab_size]`.

    Forward, block size, 4-D masks and RoPE are SDAR's; only the layers differ."""

    config_class = SDARMoeConfig
    model_type = "sdar_moe"
    architectures = ("SDARMoeForCausalLM",)
    family = "SDAR-MoE"
    layer_class = SDARMoeDecoderLayer
    config: SDARMoeConfig
