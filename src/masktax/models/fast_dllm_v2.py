"""Native Fast-dLLM v2 (Efficient-Large-Model/Fast_dLLM_v2_7B, _1.5B): Qwen2.5 turned block diffusion, shifted logits.

Reads the published `config.json` (model_type "Fast_dLLM_Qwen", `Fast_dLLM_QwenForCausalLM`) and
safetensors by their published names, Qwen2's: `model.embed_tokens`, `model.layers.N.
{input_layernorm, self_attn.{q,k,v,o}_proj (biases on q/k/v), post_attention_layernorm,
mlp.{gate,up,down}_proj}`, `model.norm`, `lm_head`. The layers are Qwen2.5's; what changes is the
attention: in evaluation the published forward always builds a block-causal mask (blocks of its
`block_size` argument, 32, from position 0; a query sees its own block and the earlier ones) and
ignores any `attention_mask` it is given, so it cannot pad. Here the same mask comes from the
config's `bd_size` (32, the block of its training mask), padding is honoured as for the other
families, and a 4-D mask is used as given.

Logits are SHIFTED like Qwen's (the raw logits at position i predict token i+1: the published sampler
reads a block's predictions one position earlier, and the token after a finished block from its
last position), so the LoadedModel aligns them; the mask token is 151665. Its sampler decodes a
block in sub-blocks of 8 with a confidence threshold, caching finished blocks.

Checked against: the Hub checkpoint's `modeling.py` as copied in Satgoy152/DualDiffusion
(`FastDLLM_inferencing/Fast_dLLM_v2_7B/modeling.py`); NVlabs/Fast-dLLM's own `v2/` was not in the
snapshot available here (docs/models.md).

    model = Fast_dLLM_QwenForCausalLM.from_pretrained("path/to/Fast_dLLM_v2_7B", device="cuda", dtype=torch.bfloat16)
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from masktax.errors import MasktaxError
from masktax.models import attention, blocks, moe
from masktax.models.native import BlockCausalLM, DecoderConfig

BLOCK_SIZE = 32  # bd_size of the published config and block_size of its forward


@dataclasses.dataclass
class FastDLLMQwenConfig(DecoderConfig):
    """The fields of the published configuration (Qwen2's, plus `bd_size`) that the forward pass uses."""

    vocab_size: int = 151936
    hidden_size: int = 3584
    intermediate_size: int = 18944
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int | None = 4
    hidden_act: str = "silu"
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1000000.0
    rope_scaling: dict | None = None
    use_sliding_window: bool = False
    max_position_embeddings: int = 32768
    tie_word_embeddings: bool = False
    mask_token_id: int | None = None  # 151665 for the published checkpoints
    bd_size: int | None = BLOCK_SIZE  # attention blocks (None or 0: bidirectional)
    required: ClassVar[tuple[str, ...]] = ("hidden_size", "intermediate_size", "num_hidden_layers",
                                           "num_attention_heads", "vocab_size")

    def __post_init__(self) -> None:
        self.require_positive("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                              "num_attention_heads", "num_key_value_heads", "max_position_embeddings")
        if self.hidden_act != "silu":
            raise MasktaxError(f"Fast-dLLM v2 config has hidden_act={self.hidden_act!r}; only 'silu' is supported")
        if self.rope_scaling:
            raise MasktaxError("Fast-dLLM v2 config sets rope_scaling, which the native model does not support")
        if self.use_sliding_window:
            raise MasktaxError("Fast-dLLM v2 config enables sliding-window attention, which is not supported")
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % self.kv_heads:
            raise MasktaxError("Fast-dLLM v2 config: hidden_size, num_attention_heads, num_key_value_heads do not divide")
        if self.bd_size is not None and self.bd_size < 0:
            raise MasktaxError(f"field 'bd_size' must be positive (or 0/null: bidirectional), got {self.bd_size}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


class FastDLLMQwenDecoderLayer(attention.DecoderLayer):
    """Qwen2's layer: biases on q/k/v (not o), no q/k norms, a SwiGLU MLP."""

    def __init__(self, cfg: FastDLLMQwenConfig, index: int) -> None:
        super().__init__(cfg.hidden_size, cfg.rms_norm_eps,
                         attention.SelfAttention(cfg.hidden_size, cfg.num_attention_heads, cfg.kv_heads, cfg.head_dim,
                                                 qkv_bias=True, o_bias=False, qk_norm=False, eps=cfg.rms_norm_eps),
                         moe.SwiGLU(cfg.hidden_size, cfg.intermediate_size))


class Fast_dLLM_QwenForCausalLM(BlockCausalLM):  # noqa: N801 (the published class name)
    """Fast-dLLM v2 block-diffusion LM; `forward` returns raw SHIFTED logits `[b, l, vocab_size]`.

    Layout and forward are `native.BlockCausalLM`'s, with blocks of the config's `bd_size`."""

    config_class = FastDLLMQwenConfig
    model_type = "Fast_dLLM_Qwen"
    architectures = ("Fast_dLLM_QwenForCausalLM",)
    family = "Fast-dLLM v2"
    layer_class = FastDLLMQwenDecoderLayer
    config: FastDLLMQwenConfig

    @property
    def block_size(self) -> int | None:
        return self.config.bd_size or None

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        return blocks.rope_cos_sin(positions, cfg.head_dim, cfg.rope_theta)  # 2 x [b, l, hd]
