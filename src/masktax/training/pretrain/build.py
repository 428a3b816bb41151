"""Build the three embedded model families with identical dimensions and one init scheme
(`masktax.models.tiny`'s builders and `normal_init`).

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
from masktax.models import tiny
from masktax.training.pretrain.config import ModelSpec, PretrainConfig


def dims(spec: ModelSpec) -> tiny.Dims:
    """The spec's sizes in `masktax.models.tiny`'s terms."""
    return tiny.Dims(hidden=spec.d_model, layers=spec.n_layers, heads=spec.n_heads, kv_heads=spec.n_kv_heads,
                     ffn=spec.d_ff, context=spec.max_length, rope_theta=spec.rope_theta, tie=spec.tie_embeddings)


def build_model(cfg: PretrainConfig, *, vocab: int, mask_id: int, eos_id: int, init: bool = True) -> nn.Module:
    """A freshly initialised model for `cfg` (seeded by `cfg.seed`), then `init_from` if `init` and set."""
    spec = cfg.model
    if cfg.objective == "ar":
        model = tiny.llama(dims(spec), vocab=vocab, eos_id=eos_id, pad_id=eos_id, rms_norm_eps=spec.rms_norm_eps,
                           initializer_range=spec.init_std)
    elif cfg.shift:
        model = tiny.dream(dims(spec), vocab=vocab, mask_id=mask_id, extra={}, rms_norm_eps=spec.rms_norm_eps)
    else:
        model = tiny.llada(dims(spec), vocab=vocab, mask_id=mask_id, extra=dict(tiny.LLADA_ARCH),
                           rms_norm_eps=spec.rms_norm_eps)
    tiny.normal_init(model, spec.init_std, torch.Generator().manual_seed(cfg.seed))
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
