"""Native SDAR and TraDo (JetLM/SDAR-*-Chat, Gen-Verse/TraDo-*): Qwen3's layout with block-causal attention.

Reads the published `config.json` (model_type "sdar", `SDARForCausalLM`) and safetensors by their
published names (reference: Gen-Verse/dLLM-RL `models/sdar/modeling_sdar.py`, and its block sampler
`generate.py`, adapted from JetAstra/SDAR): `model.embed_tokens`, `model.layers.N.{input_layernorm,
self_attn.{q,k,v,o}_proj, self_attn.{q,k}_norm, post_attention_layernorm, mlp.{gate,up,down}_proj}`,
`model.norm`, `lm_head`. Per layer (pre-norm, Qwen3):

    h = x + o_proj(Attn(RoPE(qn(q_proj(n))), RoPE(kn(k_proj(n))), v_proj(n))),   n = input_layernorm(x)
    y = h + down_proj(silu(gate_proj(m)) * up_proj(m)),                          m = post_attention_layernorm(h)

with per-head RMSNorms `qn`, `kn`, `head_dim` from the config, biases on q/k/v/o when
`attention_bias`. The published forward attends bidirectionally unless given a 4-D mask; its
sampler passes the block-causal one (blocks of `block_length` from position 0, KV cache of the
finished blocks) as 0/1 floats, which are read as such here too (1 = may attend). Here block-causal attention is the model's own default (`block_size`, not in the
published config: 4, the block SDAR and TraDo were trained with; None or 0 means bidirectional).
Logits are in place: position i predicts token i (the sampler reads a block's logits at the
block's own positions). The mask token is 151669 (`<|MASK|>`).

    model = SDARForCausalLM.from_pretrained("path/to/SDAR-4B-Chat", device="cuda", dtype=torch.bfloat16)
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from masktax.errors import MasktaxError
from masktax.models import attention, blocks, moe
from masktax.models.native import BlockCausalLM, DecoderConfig

BLOCK_SIZE = 4  # the block SDAR and TraDo were trained with (dLLM-RL configs: "the block size of your model")


@dataclasses.dataclass
class SDARConfig(DecoderConfig):
    """The fields of the published `configuration_sdar.py` that the forward pass uses."""

    vocab_size: int = 151936
    hidden_size: int = 4096
    intermediate_size: int = 22016
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int | None = 32
    head_dim: int | None = 128
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    attention_bias: bool = False  # biases on q/k/v/o
    use_sliding_window: bool = False
    max_position_embeddings: int = 32768
    tie_word_embeddings: bool = False
    mask_token_id: int | None = None  # 151669 for the published checkpoints
    block_size: int | None = BLOCK_SIZE  # masktax's: attention blocks (not in the published config)
    required: ClassVar[tuple[str, ...]] = ("hidden_size", "intermediate_size", "num_hidden_layers",
                                           "num_attention_heads", "vocab_size")

    def __post_init__(self) -> None:
        self.require_positive("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                              "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings")
        if self.hidden_act != "silu":
            raise MasktaxError(f"SDAR config has hidden_act={self.hidden_act!r}; only 'silu' is supported")
        if self.rope_scaling:
            raise MasktaxError("SDAR config sets rope_scaling, which the native SDAR does not support")
        if self.use_sliding_window:
            raise MasktaxError("SDAR config enables sliding-window attention, which the native SDAR does not support")
        if self.num_attention_heads % self.kv_heads:
            raise MasktaxError("SDAR config: num_attention_heads is not a multiple of num_key_value_heads")
        if self.block_size is not None and self.block_size < 0:
            raise MasktaxError(f"field 'block_size' must be positive (or 0/null: bidirectional), got {self.block_size}")

    @property
    def dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads


class SDARDecoderLayer(attention.DecoderLayer):
    """Qwen3's layer: per-head q/k norms, biases on q/k/v/o when `attention_bias`, a SwiGLU MLP."""

    def __init__(self, cfg: SDARConfig, index: int) -> None:
        bias = cfg.attention_bias
        super().__init__(cfg.hidden_size, cfg.rms_norm_eps,
                         attention.SelfAttention(cfg.hidden_size, cfg.num_attention_heads, cfg.kv_heads, cfg.dim,
                                                 qkv_bias=bias, o_bias=bias, qk_norm=True, eps=cfg.rms_norm_eps),
                         moe.SwiGLU(cfg.hidden_size, cfg.intermediate_size))


class SDARForCausalLM(BlockCausalLM):
    """SDAR / TraDo block-diffusion LM; `forward` returns raw in-place logits `[b, l, vocab_size]`.

    Layout and forward are `native.BlockCausalLM`'s; SDAR's own 4-D masks are 0/1 floats."""

    config_class = SDARConfig
    model_type = "sdar"
    architectures = ("SDARForCausalLM",)
    family = "SDAR"
    layer_class = SDARDecoderLayer
    config: SDARConfig

    @property
    def block_size(self) -> int | None:
        return self.config.block_size or None

    def _read_mask(self, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        if attention_mask is not None and attention_mask.dim() == 4 and attention_mask.is_floating_point():
            return attention_mask > 0  # SDAR's 4-D masks are 0/1 (its sampler's `tril` over blocks)
        return attention_mask

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        return blocks.rope_cos_sin(positions, cfg.dim, cfg.rope_theta)  # 2 x [b, l, hd]
