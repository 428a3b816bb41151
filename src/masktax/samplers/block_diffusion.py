"""Block diffusion decoding for block-causal models (LLaDA2, SDAR/TraDo, Fast-dLLM v2), with an exact KV cache.

The published samplers (dllm `llada2/sampler.py`, dLLM-RL `generate.py` after JetAstra/SDAR) lay the
sequence out in blocks of B from position 0 (prompt, then masks up to a whole number of blocks) and
decode one block at a time, left to right:

    for each block after the prompt's whole blocks, for step s = 0, 1, ... while it holds masks:
        p, v = max softmax(logits / T), its token, at every masked position of the block
        n_s  = the even schedule's share of B for step s  (B // steps, the first B % steps get one more)
        commit every masked position with p > threshold if there are at least n_s of them,
               else the n_s most confident ones
    then store the finished block's keys and values.

Because attention is block-causal, a finished block's keys and values never change again: the
cache is exact (the logits equal a full forward over everything so far), unlike Fast-dLLM's caches
for bidirectional models. With `soft_mask`, positions of the block that stay masked are fed back as
a blend of [MASK] and the step's top-k guesses ([P2], `samplers.soft_mask`). For a shifted model
(Fast-dLLM v2) the block's first position is predicted by the previous block's last one.

    out = generate_block_diffusion(lm, prompt_ids, gen_length=64, threshold=0.95)
    out.sequences  # [b, P + gen_length rounded up to whole blocks]

`generate_block` is the same decode behind the interface of `SAMPLERS` ("block", what `masktax
generate` runs): `[b, P + gen_length]`, a `DecodeHistory`, `on_step` and `cache` ("prefix" = the
exact cache above, "none" = a full forward over [0, block end) every step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from masktax.errors import MasktaxError
from masktax.models.attention import BlockCache
from masktax.models.loaded import LoadedModel
from masktax.samplers.decode_state import DecodeHistory, StepEvent, StepRecord
from masktax.samplers.soft_mask import SoftMaskConfig, soft_mask_embeddings


@dataclass
class BlockDecode:
    """What `generate_block_diffusion` returns: the sequences and, per step, the positions it committed."""

    sequences: torch.Tensor  # [b, L]
    block_size: int
    prompt_length: int
    committed: list[torch.Tensor] = field(default_factory=list)  # per step [b, L] bool
    confidence: list[torch.Tensor] = field(default_factory=list)  # per step [b, L] float: committed's score, nan
    forward_passes: int = 0  # window steps plus stores of finished blocks


def even_schedule(block: int, steps: int) -> list[int]:
    """Tokens committed per step: `block` split over `steps` as evenly as possible, earlier steps first."""
    base, extra = divmod(block, steps)
    return [base + (i < extra) for i in range(steps)]


def choose(conf: torch.Tensor, active: torch.Tensor, n: int, threshold: float) -> torch.Tensor:
    """Positions `[b, B]` to commit: those above `threshold` when there are >= n of them, else the top n."""
    high = (conf > threshold) & active  # [b, B]
    k = torch.clamp(active.sum(-1), max=n)  # [b]
    ranks = conf.masked_fill(~active, -torch.inf).argsort(-1, descending=True).argsort(-1)  # [b, B]
    top = (ranks < k[:, None]) & active  # [b, B]
    return torch.where((high.sum(-1) >= n)[:, None], high, top)  # [b, B]


def generate_block_diffusion(
    lm: LoadedModel,
    prompt_ids: torch.Tensor,
    *,
    gen_length: int,
    steps_per_block: int | None = None,
    threshold: float = 0.95,
    temperature: float = 0.0,
    mask_id: int | None = None,
    use_cache: bool = True,
    soft_mask: SoftMaskConfig | None = None,
    generator: torch.Generator | None = None,
    on_step: Callable[[StepEvent], None] | None = None,
) -> BlockDecode:
    """Decode `gen_length` tokens after `prompt_ids [b, P]` (equal-length rows, as the published samplers)."""
    block = lm.block_size
    if not block:
        raise MasktaxError(f"model '{lm.name}' is not block-causal; block diffusion decoding needs one "
                           "(LLaDA2, SDAR/TraDo, Fast-dLLM v2)")
    mask_id = mask_id if mask_id is not None else lm.require_mask("block diffusion decoding")
    steps = steps_per_block or block
    if gen_length < 1 or not 1 <= steps <= block or not 0 <= threshold <= 1:
        raise MasktaxError("need gen_length >= 1, 1 <= steps_per_block <= block size, 0 <= threshold <= 1")
    b, plen = prompt_ids.shape
    total = -(-(plen + gen_length) // block) * block
    x = torch.full((b, total), mask_id, dtype=torch.long, device=lm.device)  # [b, L]
    x[:, :plen] = prompt_ids.to(lm.device)
    out = BlockDecode(x, block, plen)
    cache = BlockCache() if use_cache else None
    first = plen // block
    carry = _store(lm, cache, x[:, : first * block], None) if cache is not None and first else None  # [b, V] raw
    out.forward_passes += carry is not None
    schedule = even_schedule(block, steps)
    with torch.no_grad():
        mask_row = lm.embed(torch.tensor([[mask_id]], device=lm.device))[0, 0]  # [d]
        for blk in range(first, total // block):
            s, e = blk * block, (blk + 1) * block
            soft: torch.Tensor | None = None  # [b, B, d] the window's input embeddings when soft-masked
            for n in schedule:
                active = x[:, s:e] == mask_id  # [b, B]
                if not active.any():
                    break
                logits = _window_logits(lm, x, s, e, cache, carry, soft).float()  # [b, B, V] aligned
                logits[..., mask_id] = -torch.inf
                probs = torch.softmax(logits / max(temperature, 1e-6), dim=-1)  # [b, B, V]
                if temperature > 0:
                    tokens = torch.multinomial(probs.view(-1, probs.shape[-1]), 1, generator=generator).view(b, -1)
                else:
                    tokens = logits.argmax(-1)  # [b, B]
                conf = probs.gather(-1, tokens[..., None])[..., 0]  # [b, B]
                commit = choose(conf, active, n, threshold)  # [b, B]
                x[:, s:e] = torch.where(commit, tokens, x[:, s:e])
                step = torch.zeros_like(x, dtype=torch.bool)
                step[:, s:e] = commit
                out.committed.append(step)
                score = torch.full(x.shape, torch.nan, device=x.device)  # [b, L]
                score[:, s:e] = torch.where(commit, conf, torch.nan)
                out.confidence.append(score)
                out.forward_passes += 1
                if on_step is not None:
                    on_step(StepEvent(step=len(out.committed) - 1, x=x, prompt_length=plen, block=(s, e),
                                      forward_passes=out.forward_passes))
                soft = _soft(lm, soft_mask, logits, x, s, e, mask_id, mask_row, plen, gen_length)
            if cache is not None:
                carry = _store(lm, cache, x[:, s:e], carry)
                out.forward_passes += 1
    return out


def generate_block(
    lm: LoadedModel,
    prompt_ids: torch.Tensor,
    *,
    gen_length: int,
    steps_per_block: int | None = None,
    threshold: float = 0.95,
    temperature: float = 0.0,
    soft_mask: SoftMaskConfig | None = None,
    cache: str = "none",
    attention_mask: torch.Tensor | None = None,
    mask_id: int | None = None,
    generator: torch.Generator | None = None,
    return_history: bool = False,
    on_step: Callable[[StepEvent], None] | None = None,
):
    """`generate_block_diffusion` as a sampler of `SAMPLERS`: `[b, P + gen_length]` (cut from whole blocks),
    plus a `DecodeHistory` with `return_history`. `cache` "prefix" is the exact cache of finished blocks."""
    if not isinstance(lm, LoadedModel):
        raise MasktaxError("the block sampler needs a LoadedModel (masktax.models.load): it reads the block size")
    if cache not in ("none", "prefix"):
        raise MasktaxError(f"the block sampler's cache is 'none' or 'prefix' (exact, finished blocks), not '{cache}'")
    if attention_mask is not None and bool((attention_mask == 0).any()):
        raise MasktaxError("the block sampler decodes rows of equal prompt length (no left padding)")
    block = lm.block_size
    if block and -(-(prompt_ids.shape[1] + gen_length) // block) * block > lm.max_length:
        raise MasktaxError(f"prompt ({prompt_ids.shape[1]} tokens) plus {gen_length} generated, rounded up to whole "
                           f"blocks of {block}, exceeds the model's context of {lm.max_length}")
    out = generate_block_diffusion(lm, prompt_ids, gen_length=gen_length, steps_per_block=steps_per_block,
                                   threshold=threshold, temperature=temperature, mask_id=mask_id,
                                   use_cache=cache == "prefix", soft_mask=soft_mask, generator=generator,
                                   on_step=on_step)
    end = out.prompt_length + gen_length
    seqs = out.sequences[:, :end]  # [b, P + gen_length]
    if not return_history:
        return seqs
    history = DecodeHistory(prompt_length=out.prompt_length, forward_passes=out.forward_passes)
    final = out.sequences[:, :end].cpu()  # committed tokens never change
    for committed, score in zip(out.committed, out.confidence, strict=True):
        committed = committed[:, :end].cpu()
        history.steps.append(StepRecord(committed=committed, tokens=torch.where(committed, final, -1),
                                        confidence=score[:, :end].float().cpu()))
    return seqs, history


def _raw(lm: LoadedModel, ids: torch.Tensor | None, embeds: torch.Tensor | None, cache: BlockCache | None):
    out = lm.model(input_ids=None if embeds is not None else ids, inputs_embeds=embeds, cache=cache)
    return out.logits  # [b, w, V] raw


def _store(lm: LoadedModel, cache: BlockCache, ids: torch.Tensor, carry: torch.Tensor | None) -> torch.Tensor:
    """Append finished blocks `ids [b, w]` to the cache; returns the raw logits at their last position."""
    cache.store = True
    try:
        with torch.no_grad():
            raw = _raw(lm, ids, None, cache)  # [b, w, V]
    finally:
        cache.store = False
    return raw[:, -1]  # [b, V]


def _window_logits(lm: LoadedModel, x: torch.Tensor, s: int, e: int, cache: BlockCache | None,
                   carry: torch.Tensor | None, soft: torch.Tensor | None) -> torch.Tensor:
    """Aligned logits `[b, B, V]` of the window [s, e): from the cache, or a forward over [0, e)."""
    if cache is None:
        if soft is None:
            return lm.logits(x[:, :e])[:, s:e]
        embeds = torch.cat([lm.embed(x[:, :s]), soft], dim=1)  # [b, e, d]
        return lm.logits_from_embeds(embeds)[:, s:e]
    raw = _raw(lm, x[:, s:e], soft, cache)  # [b, B, V]
    if not lm.shift:
        return raw
    first = carry[:, None] if carry is not None else raw[:, :1]  # the previous block's last position predicts s
    return torch.cat([first, raw[:, :-1]], dim=1)  # [b, B, V]


def _soft(lm: LoadedModel, cfg: SoftMaskConfig | None, logits: torch.Tensor, x: torch.Tensor, s: int, e: int,
          mask_id: int, mask_row: torch.Tensor, plen: int, gen_length: int) -> torch.Tensor | None:
    """Next input embeddings of the window `[b, B, d]`, soft where still masked and soft-masking is on."""
    if cfg is None:
        return None
    still = x[:, s:e] == mask_id  # [b, B]
    done = (x[:, plen:plen + gen_length] != mask_id).float().mean(-1)  # [b] committed fraction
    still = still & cfg.active(done)[:, None]
    if not still.any():
        return None
    embeds = lm.embed(x[:, s:e]).clone()  # [b, B, d]
    embeds[still] = soft_mask_embeddings(logits[still], lm.embedding_weight(), mask_row, k=cfg.k,
                                         omega_s=cfg.omega_s, omega_a=cfg.omega_a, omega_b=cfg.omega_b)
    return embeds
