"""Left-to-right decoding of a causal (AR) baseline, with an exact KV cache.

Each step appends one token: the argmax of the next-token logits, or at temperature > 0 a
Gumbel-max draw in float64 (as the MDLM samplers draw). `cache="none"` runs the whole sequence so
far at every step; `cache="prefix"` runs the prompt once and then feeds only the newest token,
reusing the keys and values of everything before it (transformers' `past_key_values`). For a
causal model that is exact: a position's keys never depend on what follows it, so both give the
same logits up to floating-point rounding (and the same tokens; tested). "dual" means nothing
here: a causal model never sees a suffix. Left-padded batches (`attention_mask`) number positions
by real tokens, as HF generate does.

    out = generate_ar(load("embedded-ar"), ids, gen_length=32, cache="prefix")   # [b, lp + 32]
"""

from __future__ import annotations

import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.models.prefix import cache_keyword
from masktax.samplers.common import CACHES, check_positive, gumbel_argmax, token_confidence
from masktax.samplers.decode_state import DecodeHistory, OnStep, StepEvent, StepRecord

AR_CACHES = ("none", "prefix")


def _causal_module(model: LoadedModel | nn.Module) -> nn.Module:
    if isinstance(model, LoadedModel):
        if model.kind != "ar":
            raise MasktaxError(
                f"'{model.name}' is a {model.kind} model; left-to-right decoding is for causal (AR) models: "
                "use the semi_ar, dream or threshold sampler"
            )
        return model.model
    if isinstance(model, nn.Module):
        return model
    raise MasktaxError(f"a sampler needs a LoadedModel or a torch module, got {type(model).__name__}")


@torch.no_grad()
def generate_ar(
    model: LoadedModel | nn.Module,
    prompt_ids: torch.Tensor,
    *,
    gen_length: int,
    temperature: float = 0.0,
    attention_mask: torch.Tensor | None = None,
    cache: str = "none",
    generator: torch.Generator | None = None,
    return_history: bool = False,
    on_step: OnStep | None = None,
) -> torch.Tensor | tuple[torch.Tensor, DecodeHistory]:
    """Decode `gen_length` tokens after `prompt_ids` `[b, lp]` one at a time; returns `[b, lp + gen_length]`."""
    module = _causal_module(model)
    if cache not in CACHES:
        raise MasktaxError(f"unknown cache '{cache}'; choose one of {', '.join(CACHES)}")
    if cache not in AR_CACHES:
        raise MasktaxError("--cache dual needs a masked suffix, which a causal model never sees; "
                           "use --cache prefix (an exact KV cache for AR models)")
    if not isinstance(prompt_ids, torch.Tensor) or prompt_ids.dim() != 2:
        raise MasktaxError("prompt_ids must be a 2-D tensor [batch, length]")
    check_positive(gen_length=gen_length)
    if attention_mask is not None and attention_mask.shape != prompt_ids.shape:
        raise MasktaxError(
            f"attention_mask shape {tuple(attention_mask.shape)} differs from prompt_ids {tuple(prompt_ids.shape)}"
        )
    if temperature < 0.0:
        raise MasktaxError("temperature must be >= 0")
    device = next(module.parameters()).device
    b, lp = prompt_ids.shape
    x = torch.zeros((b, lp + gen_length), dtype=torch.long, device=device)  # [b, l]
    x[:, :lp] = prompt_ids.to(device)
    am = pos = None
    if attention_mask is not None:
        ones = torch.ones((b, gen_length), dtype=attention_mask.dtype, device=device)
        am = torch.cat([attention_mask.to(device), ones], dim=1)  # [b, l]
        pos = (am.long().cumsum(-1) - 1).clamp_min(0)  # [b, l]
    history = DecodeHistory(prompt_length=lp) if return_history else None
    past = None
    cache_kw = cache_keyword(module)
    for i in range(gen_length):
        cur = lp + i  # the position this step fills
        first = cur - 1 if past is not None else 0  # with the cache: only the newest token runs
        kwargs = {} if am is None else {"attention_mask": am[:, :cur], "position_ids": pos[:, first:cur]}
        kwargs[cache_kw] = past
        out = module(input_ids=x[:, first:cur], use_cache=cache == "prefix", **kwargs)
        if cache == "prefix":
            past = getattr(out, cache_kw)
        logits = (out.logits if hasattr(out, "logits") else out[0])[:, -1]  # [b, V] predicts token cur
        tokens = gumbel_argmax(logits, temperature, generator)  # [b]
        x[:, cur] = tokens
        if history is not None:
            committed = torch.zeros(x.shape, dtype=torch.bool)  # [b, l]
            committed[:, cur] = True
            placed = torch.full(x.shape, -1, dtype=torch.long)  # [b, l]
            placed[:, cur] = tokens.cpu()
            conf = torch.full(x.shape, float("nan"), dtype=torch.float32)  # [b, l]
            conf[:, cur] = token_confidence(logits, tokens).float().cpu()
            history.steps.append(StepRecord(committed=committed, tokens=placed, confidence=conf))
            history.forward_passes = i + 1
        if on_step is not None:
            on_step(StepEvent(i, x, lp, (cur, cur + 1), i + 1))
    if history is None:
        return x
    return x, history
