"""LLaDA's semi-autoregressive sampler (the reference `generate()` of ML-GSAI/LLaDA), batched.

The generation is split into `gen_length / block_length` blocks decoded left to right, each in
`steps / num_blocks` steps. Before a block, its mask count is split evenly over those steps,
the remainder going to the first steps. In each step every masked position gets a token
(argmax, or Gumbel-max in float64 at temperature > 0: argmax exp(l) / (-log u)^T) and a
confidence: the softmax probability of that token under the un-noised logits (float64), or a
uniform random number for `remasking="random"`; positions after the current block get -inf.
The planned number of highest-confidence masked positions of the block is committed.
Classifier-free guidance runs the sequence with the prompt masked as the unconditional input:
logits = un + (cfg_scale + 1) * (cond - un).

EOS is an ordinary token here: LLaDA ends an answer by filling the rest of the generated block with EOS.
`logits_eos_inf` forbids EOS entirely (LLaDA's option of the same name); `confidence_eos_inf`
ranks positions whose chosen token is EOS after every other candidate, so EOS is committed
last. Cut the text at the first EOS with `masktax.samplers.decode(..., stop_at_eos=True)`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.samplers.common import (
    Generators,
    ModelRunner,
    check_positive,
    check_prompt,
    demote_eos,
    gumbel_argmax,
    num_transfer_tokens,
    resolve_eos_ids,
    select_top,
    suppress_eos,
    token_confidence,
    uniform,
)
from masktax.samplers.decode_state import DecodeHistory, DecodeState, OnStep
from masktax.samplers.soft_mask import SoftMaskConfig

REMASKING = ("low_confidence", "random")


@torch.no_grad()
def generate_semi_ar(
    model: LoadedModel | nn.Module,
    prompt_ids: torch.Tensor,
    *,
    steps: int,
    gen_length: int,
    block_length: int,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    mask_id: int | None = None,
    attention_mask: torch.Tensor | None = None,
    soft_mask: SoftMaskConfig | None = None,
    generator: Generators = None,
    return_history: bool = False,
    shift: bool | None = None,
    logits_eos_inf: bool = False,
    confidence_eos_inf: bool = False,
    eos_ids: Sequence[int] | None = None,
    on_step: OnStep | None = None,
    cache: str = "none",
) -> torch.Tensor | tuple[torch.Tensor, DecodeHistory]:
    """Decode `gen_length` tokens after `prompt_ids` `[b, lp]`; returns `[b, lp + gen_length]`.

    Prompts of different lengths are left-padded, with `attention_mask` `[b, lp]` (see
    `left_pad`). `mask_id` defaults to the lm's. With `return_history=True` also returns
    a `DecodeHistory`. `on_step(StepEvent)` is called after every step (for streaming).
    `cache` "prefix" / "dual": Fast-dLLM's approximate block caches (see `decode_state`).
    """
    runner = ModelRunner(model, shift=shift)
    check_prompt(prompt_ids, attention_mask, runner)
    check_positive(steps=steps, gen_length=gen_length, block_length=block_length)
    if gen_length % block_length != 0:
        raise MasktaxError(f"gen_length {gen_length} must be a multiple of block_length {block_length}")
    num_blocks = gen_length // block_length
    if steps % num_blocks != 0:
        raise MasktaxError(f"steps {steps} must be a multiple of the number of blocks {num_blocks}")
    if remasking not in REMASKING:
        raise MasktaxError(f"unknown remasking '{remasking}'; choose one of {', '.join(REMASKING)}")
    if temperature < 0.0 or cfg_scale < 0.0:
        raise MasktaxError("temperature and cfg_scale must be >= 0")
    eos = resolve_eos_ids(eos_ids, runner, needed=logits_eos_inf or confidence_eos_inf)
    state = DecodeState(
        runner, prompt_ids, gen_length=gen_length, mask_id=runner.resolve_mask_id(mask_id),
        attention_mask=attention_mask, soft_mask=soft_mask, record=return_history, on_step=on_step, cache=cache,
    )
    steps_per_block = steps // num_blocks
    lp = state.prompt_length
    for blk in range(num_blocks):
        start, end = lp + blk * block_length, lp + (blk + 1) * block_length
        state.begin_block(start, end)
        schedule = num_transfer_tokens(state.masked()[:, start:end].sum(dim=-1), steps_per_block)  # [b, s]
        for i in range(steps_per_block):
            logits = state.logits(cfg_scale)  # [b, g, V] the generated region, from column lp
            if logits_eos_inf:
                suppress_eos(logits, eos)
            block_logits = logits[:, start - lp:end - lp]  # [b, B, V]
            x0 = gumbel_argmax(block_logits, temperature, generator)  # [b, B]
            if remasking == "low_confidence":
                conf = token_confidence(block_logits, x0)  # [b, B]
            else:
                conf = uniform(x0.shape, generator, x0.device)  # [b, B]
            rank_conf = demote_eos(conf, x0, eos) if confidence_eos_inf else conf  # [b, B]
            chosen = select_top(rank_conf, state.masked()[:, start:end], schedule[:, i])  # [b, B]
            transfer = torch.zeros_like(state.x, dtype=torch.bool)  # [b, l]
            transfer[:, start:end] = chosen
            tokens = state.x.clone()  # [b, l]
            tokens[:, start:end] = x0
            confidence = torch.zeros_like(state.x, dtype=torch.float64)  # [b, l]
            confidence[:, start:end] = conf
            state.commit(transfer, tokens, confidence, logits, (start, end))
    return state.result(return_history)
