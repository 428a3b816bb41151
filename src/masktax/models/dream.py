"""Native Dream (Dream-org/Dream-v0-Base-7B / -Instruct-7B): Qwen2.5's layout run bidirectionally.

Reads the published `config.json` (model_type "Dream") and safetensors by their published names,
`model.embed_tokens`, `model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj (q/k/v with
bias), post_attention_layernorm, mlp.{gate,up,down}_proj}`, `model.norm`, `lm_head`, without the
remote modeling code. Per layer (pre-norm):

    h = x + o_proj(Attn(RoPE(q_proj(n)), RoPE(k_proj(n)), v_proj(n))),  n = input_layernorm(x)
    y = h + down_proj(silu(gate_proj(m)) * up_proj(m)),                  m = post_attention_layernorm(h)

then `logits = lm_head(norm(y))`. RoPE tables are computed in fp32 and cast to the activations'
dtype (as Qwen2); RMSNorm eps `rms_norm_eps` (1e-6); GQA with `num_key_value_heads` (4 of 28).
Logits are RAW: Dream was initialised from an AR model, so raw position i predicts token i+1;
`LoadedModel` (shift=True) aligns them, this module does not.

    model = DreamModel.from_pretrained("path/to/Dream-v0-Base-7B", device="cuda", dtype=torch.bfloat16)
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models import blocks
from masktax.models.native import DecoderConfig, DecoderLM


@dataclasses.dataclass
class DreamConfig(DecoderConfig):
    """The fields of Dream's `configuration_dream.py` the forward pass uses (7B values in comments)."""

    hidden_size: int = 3584
    intermediate_size: int = 18944
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int = 4
    vocab_size: int = 152064
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1000000.0
    max_position_embeddings: int = 131072  # inherited from Qwen2.5; Dream was trained at 2048
    tie_word_embeddings: bool = False
    hidden_act: str = "silu"
    rope_scaling: dict | None = None
    mask_token_id: int | None = 151666
    required: ClassVar[tuple[str, ...]] = ("hidden_size", "intermediate_size", "num_hidden_layers",
                                           "num_attention_heads", "num_key_value_heads", "vocab_size")

    def __post_init__(self) -> None:
        self.require_positive("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                              "num_key_value_heads", "vocab_size", "max_position_embeddings")
        if self.hidden_act != "silu":
            raise MasktaxError(f"Dream config has hidden_act={self.hidden_act!r}; the native Dream supports 'silu'")
        if self.rope_scaling:
            raise MasktaxError("Dream config sets rope_scaling, which the native Dream does not support")
        if self.extra.get("use_sliding_window"):
            raise MasktaxError("Dream config enables sliding-window attention, which the native Dream does not support")
        if self.hidden_size % self.num_attention_heads:
            raise MasktaxError("Dream config: hidden_size is not divisible by num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise MasktaxError("Dream config: num_attention_heads is not a multiple of num_key_value_heads")


class DreamAttention(nn.Module):
    def __init__(self, cfg: DreamConfig) -> None:
        super().__init__()
        d, hd = cfg.hidden_size, cfg.hidden_size // cfg.num_attention_heads
        self.q_proj = nn.Linear(d, cfg.num_attention_heads * hd, bias=True)
        self.k_proj = nn.Linear(d, cfg.num_key_value_heads * hd, bias=True)
        self.v_proj = nn.Linear(d, cfg.num_key_value_heads * hd, bias=True)
        self.o_proj = nn.Linear(cfg.num_attention_heads * hd, d, bias=False)


class DreamMLP(nn.Module):
    def __init__(self, cfg: DreamConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)


class DreamDecoderLayer(nn.Module):
    """One pre-norm layer, parameters named as in the published checkpoint."""

    def __init__(self, cfg: DreamConfig, index: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_layernorm = blocks.RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = DreamAttention(cfg)
        self.post_attention_layernorm = blocks.RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = DreamMLP(cfg)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None,
        kv: blocks.LayerKV | None = None,
    ) -> torch.Tensor:
        a = self.self_attn
        h = x + blocks.attention(
            self.input_layernorm(x), a.q_proj, a.k_proj, a.v_proj, a.o_proj,
            n_heads=self.cfg.num_attention_heads, n_kv_heads=self.cfg.num_key_value_heads,
            rope=rope, mask=mask, rope_full_precision=False, kv=kv,
        )  # [b, l, d]
        m = self.mlp
        return h + blocks.swiglu(self.post_attention_layernorm(h), m.gate_proj, m.up_proj, m.down_proj)  # [b, l, d]


class DreamModel(DecoderLM):
    """Dream masked diffusion LM; `forward` returns raw (unshifted) logits `[b, l, vocab_size]`.

    Layout and forward are `native.DecoderLM`'s (bidirectional, with the approximate `kv_cache`)."""

    config_class = DreamConfig
    model_type = "Dream"
    architectures = ("DreamModel",)
    layer_class = DreamDecoderLayer
    config: DreamConfig

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        return blocks.rope_cos_sin(positions, cfg.hidden_size // cfg.num_attention_heads, cfg.rope_theta)  # 2 x [b, l, hd]
