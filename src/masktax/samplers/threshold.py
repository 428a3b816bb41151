"""Confidence-threshold parallel decoding (Fast-dLLM), in LLaDA-style blocks, batched.

Blocks of `block_length` are decoded left to right. In each step, every masked position of the
current block gets a token (argmax, or Gumbel-max at temperature > 0 as in LLaDA) and its
confidence p(x0) (softmax of the un-noised logits, float64). The step commits the top-1
confidence position of the block, plus every other masked position of the block whose
confidence is >= `threshold` (0.9 in Fast-dLLM's scripts). Nothing outside the block is ever
committed, and every step commits at least one token per unfinished row, so a block takes at
most `block_length` steps; `max_steps_per_block` caps it lower (its last step commits all the
block's remaining masks).

By default every step runs the full sequence, so the output is exact for the model; `cache`
"prefix" / "dual" are Fast-dLLM's approximate block caches (see `decode_state`): the block's first
step runs the full sequence, later steps only the block (and, for "prefix", what follows it).
Forward passes are what the history counts, cached or not.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.samplers.common import (
    ModelRunner,
    check_positive,
    check_prompt,
    demote_eos,
    gumbel_argmax,
    resolve_eos_ids,
    select_top,
    suppress_eos,
    token_confidence,
)
from masktax.samplers.decode_state import DecodeHistory, DecodeState, OnStep
from masktax.samplers.soft_mask import SoftMaskConfig


@torch.no_grad()
def generate_threshold(
    model: LoadedModel | nn.Module,
    prompt_ids: torch.Tensor,
    *,
    gen_length: int,
    block_length: int,
    threshold: float = 0.9,
    mask_id: int | None = None,
    max_steps_per_block: int | None = None,
    temperature: float = 0.0,
    attention_mask: torch.Tensor | None = None,
    soft_mask: SoftMaskConfig | None = None,
    generator: torch.Generator | None = None,
    return_history: bool = False,
    shift: bool | None = None,
    logits_eos_inf: bool = False,
    confidence_eos_inf: bool = False,
    eos_ids: Sequence[int] | None = None,
    on_step: OnStep | None = None,
    cache: str = "none",
) -> torch.Tensor | tuple[torch.Tensor, DecodeHistory]:
    """Decode `gen_length` tokens after `prompt_ids` `[b, lp]`; returns `[b, lp + gen_length]`.

    `confidence_eos_inf` never lets an EOS pass the threshold (it can still be the forced
    top-1 when nothing else is left); `logits_eos_inf` forbids EOS outright.
    """
    runner = ModelRunner(model, shift=shift)
    check_prompt(prompt_ids, attention_mask, runner)
    check_positive(gen_length=gen_length, block_length=block_length)
    if gen_length % block_length != 0:
        raise MasktaxError(f"gen_length {gen_length} must be a multiple of block_length {block_length}")
    if not 0.0 < threshold <= 1.0:
        raise MasktaxError(f"threshold must be in (0, 1], got {threshold}")
    if max_steps_per_block is not None:
        check_positive(max_steps_per_block=max_steps_per_block)
    if temperature < 0.0:
        raise MasktaxError("temperature must be >= 0")
    eos = resolve_eos_ids(eos_ids, runner, needed=logits_eos_inf or confidence_eos_inf)
    state = DecodeState(
        runner, prompt_ids, gen_length=gen_length, mask_id=runner.resolve_mask_id(mask_id),
        attention_mask=attention_mask, soft_mask=soft_mask, record=return_history, on_step=on_step, cache=cache,
    )
    lp = state.prompt_length
    for blk in range(gen_length // block_length):
        start, end = lp + blk * block_length, lp + (blk + 1) * block_length
        state.begin_block(start, end)
        n_steps = 0
        while bool(state.masked()[:, start:end].any()):
            logits = state.logits()  # [b, g, V] the generated region, from column lp
            if logits_eos_inf:
                suppress_eos(logits, eos)
            block_logits = logits[:, start - lp:end - lp]  # [b, B, V]
            x0 = gumbel_argmax(block_logits, temperature, generator)  # [b, B]
            conf = token_confidence(block_logits, x0)  # [b, B]
            rank_conf = demote_eos(conf, x0, eos) if confidence_eos_inf else conf  # [b, B]
            cand = state.masked()[:, start:end]  # [b, B]
            chosen = select_top(rank_conf, cand, torch.ones(cand.shape[0], dtype=torch.long))  # [b, B]
            chosen |= cand & (rank_conf >= threshold)
            n_steps += 1
            if max_steps_per_block is not None and n_steps >= max_steps_per_block:
                chosen = cand
            transfer = torch.zeros_like(state.x, dtype=torch.bool)  # [b, l]
            transfer[:, start:end] = chosen
            tokens = state.x.clone()  # [b, l]
            tokens[:, start:end] = x0
            confidence = torch.zeros_like(state.x, dtype=torch.float64)  # [b, l]
            confidence[:, start:end] = conf
            state.commit(transfer, tokens, confidence, logits, (start, end))
    return state.result(return_history)
