"""Build the three embedded model families with identical dimensions and one init scheme.

- MDLM (LLaDA-like): native LLaDA layout (`masktax.models.llada`), in-place logits.
- Dream-like MDLM: native Dream layout (`masktax.models.dream`), shifted logits; may be
  initialised from the AR twin (Llama names = Dream names; Dream's q/k/v biases start at zero).
- AR twin: transformers' `LlamaForCausalLM` (the same blocks with a causal mask).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models.blocks import RMSNorm
from masktax.training.pretrain_config import ModelSpec, PretrainConfig


def init_weights(model: nn.Module, std: float, generator: torch.Generator) -> None:
    """GPT-style init: linears and embeddings N(0, std^2), biases 0, norm weights 1."""
    with torch.no_grad():
        for sub in model.modules():
            if isinstance(sub, (nn.Linear, nn.Embedding)):
                sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator) * std)
                if getattr(sub, "bias", None) is not None:
                    sub.bias.zero_()
            elif isinstance(sub, RMSNorm) or type(sub).__name__.endswith("RMSNorm"):
                sub.weight.fill_(1.0)


def _llada(spec: ModelSpec, vocab: int, mask_id: int) -> nn.Module:
    from masktax.models.llada import LLaDAConfig, LLaDAModelLM

    cfg = LLaDAConfig(
        d_model=spec.d_model, n_heads=spec.n_heads, n_kv_heads=spec.n_kv_heads, n_layers=spec.n_layers,
        mlp_hidden_size=spec.d_ff, vocab_size=vocab, embedding_size=vocab, rope_theta=spec.rope_theta,
        max_sequence_length=spec.max_length, rms_norm_eps=spec.rms_norm_eps, weight_tying=spec.tie_embeddings,
        mask_token_id=mask_id,
        extra={"block_type": "llama", "layer_norm_type": "rms", "activation_type": "silu", "rope": True},
    )
    return LLaDAModelLM(cfg)


def _dream(spec: ModelSpec, vocab: int, mask_id: int) -> nn.Module:
    from masktax.models.dream import DreamConfig, DreamModel

    cfg = DreamConfig(
        hidden_size=spec.d_model, intermediate_size=spec.d_ff, num_hidden_layers=spec.n_layers,
        num_attention_heads=spec.n_heads, num_key_value_heads=spec.n_kv_heads, vocab_size=vocab,
        rms_norm_eps=spec.rms_norm_eps, rope_theta=spec.rope_theta, max_position_embeddings=spec.max_length,
        tie_word_embeddings=spec.tie_embeddings, mask_token_id=mask_id,
    )
    return DreamModel(cfg)


def _llama(spec: ModelSpec, vocab: int, eos_id: int) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=spec.d_model, intermediate_size=spec.d_ff,
        num_hidden_layers=spec.n_layers, num_attention_heads=spec.n_heads,
        num_key_value_heads=spec.n_kv_heads, max_position_embeddings=spec.max_length,
        rms_norm_eps=spec.rms_norm_eps, tie_word_embeddings=spec.tie_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": spec.rope_theta}, attention_bias=False, mlp_bias=False, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
        initializer_range=spec.init_std,
    )
    return LlamaForCausalLM(cfg)


def build_model(cfg: PretrainConfig, *, vocab: int, mask_id: int, eos_id: int, init: bool = True) -> nn.Module:
    """A freshly initialised model for `cfg` (seeded by `cfg.seed`), then `init_from` if `init` and set."""
    spec = cfg.model
    if cfg.objective == "ar":
        model = _llama(spec, vocab, eos_id)
    elif cfg.shift:
        model = _dream(spec, vocab, mask_id)
    else:
        model = _llada(spec, vocab, mask_id)
    init_weights(model, spec.init_std, torch.Generator().manual_seed(cfg.seed))
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    if cfg.init_from and init:
        load_init(model, cfg.init_from)
    return model


def load_init(model: nn.Module, path: str) -> None:
    """Copy the weights of the HF checkpoint at `path` (same parameter names, e.g. AR twin -> Dream).

    `path` is a checkpoint directory or a shipped embedded model's name (`embedded-ar`, ...).
    Tensors the source lacks (Dream's q/k/v biases, absent from Llama) keep their init (zeros).
    """
    from safetensors.torch import load_file

    if path.lower().startswith("embedded-") and not Path(path).exists():
        from masktax.models.cards import card_for
        from masktax.models.load import resolve_path

        file = resolve_path(path, card_for(path)) / "model.safetensors"
    else:
        file = Path(path) / "model.safetensors"
    if not file.is_file():
        raise MasktaxError(f"init_from '{path}' has no model.safetensors; point it at a run's final/ directory "
                           "or a shipped embedded model's name")
    source = load_file(str(file))
    target = model.state_dict()
    for name, t in source.items():
        if name not in target:
            raise MasktaxError(f"init_from '{path}' has tensor '{name}' that this model lacks")
        if tuple(t.shape) != tuple(target[name].shape):
            raise MasktaxError(f"init_from tensor '{name}' has shape {tuple(t.shape)}, expected {tuple(target[name].shape)}")
    missing = [n for n in target if n not in source and not n.endswith(("bias", "lm_head.weight"))]
    if missing:
        raise MasktaxError(f"init_from '{path}' lacks tensor '{missing[0]}'")
    model.load_state_dict({k: v.float() for k, v in source.items()}, strict=False)
    if hasattr(model, "tie_weights"):
        model.tie_weights()


def raw_logits(model: nn.Module, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Raw logits `[b, l, V]` of any of the three families."""
    out = model(input_ids=ids, attention_mask=attention_mask)
    return out.logits if hasattr(out, "logits") else out[0]
