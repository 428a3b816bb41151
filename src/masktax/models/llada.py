"""Native LLaDA (GSAI-ML/LLaDA-8B-Base / -Instruct): a Llama-style transformer run bidirectionally.

Reads the published `config.json` (model_type "llada") and safetensors by their published names,
`model.transformer.{wte, blocks.N.{attn_norm, q_proj, k_proj, v_proj, attn_out, ff_norm, ff_proj,
up_proj, ff_out}, ln_f, ff_out}.weight`, without the remote modeling code. Per block (pre-norm):

    h = x + attn_out(Attn(RoPE(q_proj(n)), RoPE(k_proj(n)), v_proj(n))),  n = attn_norm(x)
    y = h + ff_out(silu(ff_proj(m)) * up_proj(m)),                        m = ff_norm(h)

then `logits = ff_out(ln_f(y))` (or `wte.weight` when `weight_tying`), divided by sqrt(d_model)
if `scale_logits`. RoPE rotates in fp32 (`rope_full_precision`); RMSNorm eps `rms_norm_eps` (1e-5).
Logits are RAW and in place: position i predicts token i. Unlike the remote code (which ignores
`attention_mask` without a bias, LLaDA issues 89/90), padding is masked here.

    model = LLaDAModelLM.from_pretrained("path/to/LLaDA-8B-Base", device="cuda", dtype=torch.bfloat16)
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import MaskedLMOutput

from masktax.errors import MasktaxError
from masktax.models import blocks
from masktax.models.native import NativeConfig, NativeModel

# Architecture switches of the published config that this implementation does not cover.
_REQUIRED = {
    "block_type": ("llama",),
    "layer_norm_type": ("rms",),
    "activation_type": ("silu",),
    "alibi": (False,),
    "rope": (True,),
    "attention_layer_norm": (False,),
    "block_group_size": (1,),
    "layer_norm_with_affine": (True,),
}


@dataclasses.dataclass
class LLaDAConfig(NativeConfig):
    """The fields of LLaDA's `configuration_llada.py` that the forward pass uses (8B values in comments)."""

    d_model: int = 4096  # hidden size
    n_heads: int = 32  # query heads
    n_kv_heads: int | None = None  # key/value heads (None: n_heads, or 1 with multi_query_attention)
    n_layers: int = 32
    mlp_hidden_size: int | None = None  # 12288; None: mlp_ratio * d_model
    mlp_ratio: int = 4
    vocab_size: int = 126464
    embedding_size: int | None = None  # rows of wte / ff_out (>= vocab_size, padded to 128)
    rope_theta: float = 500000.0
    max_sequence_length: int = 4096  # the context length LLaDA was trained with
    rms_norm_eps: float = 1e-5
    weight_tying: bool = False  # output projection = wte
    include_bias: bool = False  # biases on every linear layer
    include_qkv_bias: bool = False  # biases on q/k/v only
    input_emb_norm: bool = False  # multiply embeddings by sqrt(d_model)
    scale_logits: bool = False  # divide logits by sqrt(d_model)
    rope_full_precision: bool = True  # rotate q/k in fp32
    mask_token_id: int | None = 126336
    required: ClassVar[tuple[str, ...]] = ("d_model", "n_heads", "n_layers", "vocab_size")

    def __post_init__(self) -> None:
        self.require_positive("d_model", "n_heads", "n_kv_heads", "n_layers", "mlp_hidden_size", "mlp_ratio",
                              "vocab_size", "embedding_size", "max_sequence_length")
        for key, allowed in _REQUIRED.items():
            if key in self.extra and self.extra[key] not in allowed:
                raise MasktaxError(
                    f"LLaDA config has {key}={self.extra[key]!r}; the native LLaDA supports only {allowed[0]!r}"
                )
        if self.include_bias and self.extra.get("bias_for_layer_norm") is not False:
            raise MasktaxError("LLaDA config asks for layer-norm biases, which the native LLaDA does not support")
        if self.d_model % self.n_heads:
            raise MasktaxError(f"LLaDA config: d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.kv_heads < 1 or self.n_heads % self.kv_heads:
            raise MasktaxError(f"LLaDA config: n_heads {self.n_heads} is not a multiple of n_kv_heads {self.kv_heads}")

    @property
    def kv_heads(self) -> int:
        if self.n_kv_heads is not None:
            return self.n_kv_heads
        return 1 if self.extra.get("multi_query_attention") else self.n_heads

    @property
    def hidden(self) -> int:
        return self.mlp_hidden_size if self.mlp_hidden_size is not None else self.mlp_ratio * self.d_model

    @property
    def rows(self) -> int:
        return self.embedding_size or self.vocab_size


class LLaDALlamaBlock(nn.Module):
    """One pre-norm block, parameters named as in the published checkpoint."""

    def __init__(self, cfg: LLaDAConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, hd, kv = cfg.d_model, cfg.d_model // cfg.n_heads, cfg.kv_heads
        qkv_bias = cfg.include_bias or cfg.include_qkv_bias
        self.attn_norm = blocks.RMSNorm(d, cfg.rms_norm_eps)
        self.q_proj = nn.Linear(d, d, bias=qkv_bias)
        self.k_proj = nn.Linear(d, kv * hd, bias=qkv_bias)
        self.v_proj = nn.Linear(d, kv * hd, bias=qkv_bias)
        self.attn_out = nn.Linear(d, d, bias=cfg.include_bias)
        self.ff_norm = blocks.RMSNorm(d, cfg.rms_norm_eps)
        self.ff_proj = nn.Linear(d, cfg.hidden, bias=cfg.include_bias)  # gate (silu applied)
        self.up_proj = nn.Linear(d, cfg.hidden, bias=cfg.include_bias)
        self.ff_out = nn.Linear(cfg.hidden, d, bias=cfg.include_bias)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None,
        kv: blocks.LayerKV | None = None,
    ) -> torch.Tensor:
        h = x + blocks.attention(
            self.attn_norm(x), self.q_proj, self.k_proj, self.v_proj, self.attn_out,
            n_heads=self.cfg.n_heads, n_kv_heads=self.cfg.kv_heads, rope=rope, mask=mask,
            rope_full_precision=self.cfg.rope_full_precision, kv=kv,
        )  # [b, l, d]
        return h + blocks.swiglu(self.ff_norm(h), self.ff_proj, self.up_proj, self.ff_out)  # [b, l, d]


class LLaDAModel(nn.Module):
    """Holds `transformer` so that parameter names start `model.transformer.` as published."""

    def __init__(self, cfg: LLaDAConfig) -> None:
        super().__init__()
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(cfg.rows, cfg.d_model),
                "blocks": nn.ModuleList(LLaDALlamaBlock(cfg) for _ in range(cfg.n_layers)),
                "ln_f": blocks.RMSNorm(cfg.d_model, cfg.rms_norm_eps),
            }
        )
        if not cfg.weight_tying:
            self.transformer["ff_out"] = nn.Linear(cfg.d_model, cfg.rows, bias=cfg.include_bias)


class LLaDAModelLM(NativeModel):
    """LLaDA masked diffusion LM; `forward` returns raw in-place logits `[b, l, embedding_size]`.

    The forward is `NativeModel`'s (bidirectional, with the approximate `kv_cache`); LLaDA supplies its
    own layout (`model.transformer.*`), the embedding scale and its head (tied or not, logit scale)."""

    config_class = LLaDAConfig
    model_type = "llada"
    architectures = ("LLaDAModelLM",)
    config: LLaDAConfig

    def __init__(self, config: LLaDAConfig) -> None:
        super().__init__(config)
        self.model = LLaDAModel(config)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.transformer["wte"]

    def get_output_embeddings(self) -> nn.Module:
        t = self.model.transformer
        return t["wte"] if self.config.weight_tying else t["ff_out"]

    def _embed_input(self, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None) -> torch.Tensor:
        x = super()._embed_input(input_ids, inputs_embeds)  # [b, l, d]
        return x * math.sqrt(self.config.d_model) if self.config.input_emb_norm else x

    def _layers(self) -> nn.ModuleList:
        return self.model.transformer["blocks"]

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        return blocks.rope_cos_sin(positions, cfg.d_model // cfg.n_heads, cfg.rope_theta)  # 2 x [b, l, hd]

    def _head(self, x: torch.Tensor, logits_to_keep: torch.Tensor | None) -> MaskedLMOutput:
        cfg, t = self.config, self.model.transformer
        x = t["ln_f"](self._keep(x, logits_to_keep))  # [b, l or k, d]
        logits = F.linear(x, t["wte"].weight) if cfg.weight_tying else t["ff_out"](x)  # [b, l or k, V]
        if cfg.scale_logits:
            logits = logits / math.sqrt(cfg.d_model)
        return self._output(logits)
