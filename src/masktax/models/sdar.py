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
from torch import nn
from transformers.modeling_outputs import MaskedLMOutput

from masktax.errors import MasktaxError
from masktax.models import attention, blocks, moe
from masktax.models.native import NativeConfig, NativeModel

BLOCK_SIZE = 4  # the block SDAR and TraDo were trained with (dLLM-RL configs: "the block size of your model")


@dataclasses.dataclass
class SDARConfig(NativeConfig):
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
    def kv_heads(self) -> int:
        return self.num_key_value_heads or self.num_attention_heads

    @property
    def dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads


class SDARAttention(nn.Module):
    def __init__(self, cfg: SDARConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, hd, bias = cfg.hidden_size, cfg.dim, cfg.attention_bias
        self.q_proj = nn.Linear(d, cfg.num_attention_heads * hd, bias=bias)
        self.k_proj = nn.Linear(d, cfg.kv_heads * hd, bias=bias)
        self.v_proj = nn.Linear(d, cfg.kv_heads * hd, bias=bias)
        self.o_proj = nn.Linear(cfg.num_attention_heads * hd, d, bias=bias)
        self.q_norm = blocks.RMSNorm(hd, cfg.rms_norm_eps)
        self.k_norm = blocks.RMSNorm(hd, cfg.rms_norm_eps)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None,
                kv: tuple[attention.BlockCache, int] | None = None) -> torch.Tensor:
        cfg = self.cfg
        q = self.q_norm(attention.heads(self.q_proj(x), cfg.num_attention_heads))  # [b, h, l, hd]
        k = self.k_norm(attention.heads(self.k_proj(x), cfg.kv_heads))  # [b, kv, l, hd]
        v = attention.heads(self.v_proj(x), cfg.kv_heads)  # [b, kv, l, hd]
        q, k = attention.rope(q, *rope), attention.rope(k, *rope)
        if kv is not None:
            k, v = kv[0].extend(kv[1], k, v)  # [b, kv, P + l, hd] the cached blocks, then this window
        return self.o_proj(attention.attend(q, k, v, mask))  # [b, l, d]


class SDARDecoderLayer(nn.Module):
    def __init__(self, cfg: SDARConfig) -> None:
        super().__init__()
        self.input_layernorm = blocks.RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = SDARAttention(cfg)
        self.post_attention_layernorm = blocks.RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = moe.SwiGLU(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None,
                kv: tuple[attention.BlockCache, int] | None = None) -> torch.Tensor:
        h = x + self.self_attn(self.input_layernorm(x), rope, mask, kv)  # [b, l, d]
        return h + self.mlp(self.post_attention_layernorm(h))  # [b, l, d]


class SDARBackbone(nn.Module):
    """Holds the layers so that parameter names start `model.` as published."""

    def __init__(self, cfg: SDARConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(SDARDecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = blocks.RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class SDARForCausalLM(NativeModel):
    """SDAR / TraDo block-diffusion LM; `forward` returns raw in-place logits `[b, l, vocab_size]`."""

    config_class = SDARConfig
    model_type = "sdar"
    architectures = ("SDARForCausalLM",)
    config: SDARConfig

    def __init__(self, config: SDARConfig) -> None:
        super().__init__(config)
        self.model = SDARBackbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.tie_weights()

    @property
    def block_size(self) -> int | None:
        """Attention blocks (None: bidirectional)."""
        return self.config.block_size or None

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def tied_names(self) -> tuple[str, ...]:
        return ("lm_head.weight",) if self.config.tie_word_embeddings else ()

    def _rope(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        return blocks.rope_cos_sin(pos, cfg.dim, cfg.rope_theta)  # 2 x [b, l, r]

    def _head(self, x: torch.Tensor, logits_to_keep: torch.Tensor | None) -> MaskedLMOutput:
        return self._output(self.lm_head(self.model.norm(self._keep(x, logits_to_keep))))  # [b, l or k, V]

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        logits_to_keep: torch.Tensor | None = None,
        cache: attention.BlockCache | None = None,
        kv_cache: None = None,
    ) -> MaskedLMOutput:
        """With `cache` (`attention.BlockCache`, no padding): the window after the cached blocks."""
        attention.refuse_approximate_cache(kv_cache, "SDAR")
        x = self._embed_input(input_ids, inputs_embeds)  # [b, l, d]
        b, n, _ = x.shape
        if cache is not None:
            pos, mask = attention.cached_window(cache, n, self.block_size, x.device)  # [1, w], [1, 1, w, P + w]
            x = attention.run_layers(self.model.layers, x, self._rope(pos), mask, cache)  # [b, w, d]
            return self._head(x, logits_to_keep)
        if attention_mask is not None and attention_mask.dim() == 4 and attention_mask.is_floating_point():
            attention_mask = attention_mask > 0  # SDAR's 4-D masks are 0/1 (its sampler's `tril` over blocks)
        pos = blocks.position_ids(attention.padding_of(attention_mask), b, n, x.device)  # [b, l]
        rope = self._rope(pos)  # 2 x [b, l, r]
        mask = attention.layer_mask(attention_mask, pos, self.block_size)  # [b, 1, l, l] or None
        x = self._run_blocks(self.model.layers, x, rope, mask)  # [b, l, d]
        return self._head(x, logits_to_keep)  # [b, l or k, V]
