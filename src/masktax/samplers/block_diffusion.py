"""Block diffusion decoding for block-causal models (LLaDA2, SDAR/TraDo, Fast-dLLM v2), with an exact KV cache.

The published samplers (dllm `llada2/sampler.py`, dLLM-RL `generate.py` after JetAstra/SDAR) lay the
sequence out in blocks of B from position 0 (prompt, then masks up to a whole number of blocks) and
decode one block at a time, left to right:

    for each block after the prompt's whole blocks, for step s = 0, 1, ... while it holds masks:
        p, v = max softmax(logits / T) (T = 1 when greedy), its token, at every masked position of the block
        n_s  = the even schedule's share of B for step s  (B // steps, the first B % steps get one more)
        commit every masked position with p > threshold if there are at least n_s of them,
               else the n_s most confident ones
    then store the finished block's keys and values.

Two published variants replace the rule inside a block (each checked token for token against its
published generate on the tiny fixtures, tests/samplers/test_block_reference.py):

- `edit_threshold` (LLaDA2.1, `generate` of its modeling file): every step commits the masks above
  `threshold`, at least the most confident one, and also rewrites each already-decoded token of the
  block (never the prompt's) whose new guess differs and has p > `edit_threshold`. Once the block
  holds no masks, steps go on while they still edit, at most `max_post_steps` of them.
- `sub_block_size` (Fast-dLLM v2, `generate` of its Hub modeling.py): the block is decoded in
  sub-blocks, left to right; each step runs the whole block and commits the current sub-block's
  masks above `threshold`, at least the most confident one, until the sub-block is done. For a
  shifted model the block's first token is the previous position's greedy guess, written before the
  block's first step (the published code appends it from the forward that stored the last block).

Because attention is block-causal, a finished block's keys and values never change again: the
cache is exact (the logits equal a full forward over everything so far), unlike Fast-dLLM's caches
for bidirectional models; edits only touch the block being decoded, so it stays exact with them.
With `soft_mask`, positions of the block that stay masked are fed back as a blend of [MASK] and the
step's top-k guesses ([P2], `samplers.soft_mask`). For a shifted model (Fast-dLLM v2) the block's
first position is predicted by the previous block's last one. As in every masktax sampler, [MASK]
itself is never decoded (`guess`); the published code could, and with real checkpoints does not.

    out = generate_block_diffusion(lm, prompt_ids, gen_length=64, threshold=0.95)
    out.sequences  # [b, P + gen_length rounded up to whole blocks]
    generate_block_diffusion(lm, prompt_ids, gen_length=64, edit_threshold=0.9)     # LLaDA2.1
    generate_block_diffusion(lm, prompt_ids, gen_length=64, threshold=0.9, sub_block_size=8)  # Fast-dLLM v2

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
    """What `generate_block_diffusion` returns: the sequences and, per step, the positions it wrote."""

    sequences: torch.Tensor  # [b, L]
    block_size: int
    prompt_length: int
    committed: list[torch.Tensor] = field(default_factory=list)  # per step [b, L] bool: unmasked or edited
    confidence: list[torch.Tensor] = field(default_factory=list)  # per step [b, L] float: committed's score, nan
    tokens: list[torch.Tensor] = field(default_factory=list)  # per step [b, L] long: the token written, -1
    edited: list[torch.Tensor] = field(default_factory=list)  # per step [b, L] bool: already-decoded tokens rewritten
    forward_passes: int = 0  # window steps plus stores of finished blocks


@dataclass(frozen=True)
class BlockRule:
    """How a block is decoded: the plain threshold rule, LLaDA2.1's editing or Fast-dLLM v2's sub-blocks."""

    threshold: float
    steps: int  # steps per block (plain rule)
    edit_threshold: float | None = None  # LLaDA2.1: rewrite decoded tokens whose new guess is this confident
    max_post_steps: int = 16  # LLaDA2.1: editing-only steps once the block has no masks
    sub_block: int | None = None  # Fast-dLLM v2: decode the block in sub-blocks of this size


def even_schedule(block: int, steps: int) -> list[int]:
    """Tokens committed per step: `block` split over `steps` as evenly as possible, earlier steps first."""
    base, extra = divmod(block, steps)
    return [base + (i < extra) for i in range(steps)]


def choose(conf: torch.Tensor, active: torch.Tensor, n: int, threshold: float) -> torch.Tensor:
    """Positions `[b, B]` to commit: those above `threshold` when there are >= n of them, else the top n (of equal
    confidences the leftmost first, as the published code's argmax)."""
    high = (conf > threshold) & active  # [b, B]
    k = torch.clamp(active.sum(-1), max=n)  # [b]
    ranks = conf.masked_fill(~active, -torch.inf).argsort(dim=-1, descending=True, stable=True).argsort(-1)  # [b, B]
    top = (ranks < k[:, None]) & active  # [b, B]
    return torch.where((high.sum(-1) >= n)[:, None], high, top)  # [b, B]


def guess(logits: torch.Tensor, mask_id: int, temperature: float,
          generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens `[b, B]` and their confidence `[b, B]` from aligned logits `[b, B, V]`, as the published samplers:
    the confidence is the token's probability under softmax(logits / T) (T = 1 when greedy) over the whole
    vocabulary. Ours: [MASK] is never the token (greedy: the best other one; sampled: a drawn [MASK] is
    drawn again among the other tokens), so a decoded position always holds a real token."""
    probs = torch.softmax(logits / (temperature if temperature > 0 else 1.0), dim=-1)  # [b, B, V]
    if temperature > 0:
        flat = probs.reshape(-1, probs.shape[-1])  # [b*B, V]
        tokens = torch.multinomial(flat, 1, generator=generator)[:, 0]  # [b*B]
        redraw = tokens == mask_id
        if redraw.any():
            rest = flat[redraw].clone()
            rest[:, mask_id] = 0
            tokens[redraw] = torch.multinomial(rest, 1, generator=generator)[:, 0]
        tokens = tokens.view(logits.shape[:-1])  # [b, B]
    else:
        tokens = logits.index_fill(-1, torch.tensor([mask_id], device=logits.device), -torch.inf).argmax(-1)
    return tokens, probs.gather(-1, tokens[..., None])[..., 0]


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
    edit_threshold: float | None = None,
    max_post_steps: int = 16,
    sub_block_size: int | None = None,
    generator: torch.Generator | None = None,
    on_step: Callable[[StepEvent], None] | None = None,
) -> BlockDecode:
    """Decode `gen_length` tokens after `prompt_ids [b, P]` (equal-length rows, as the published samplers).

    `edit_threshold` (LLaDA2.1) and `sub_block_size` (Fast-dLLM v2) switch the block rule (module docstring);
    both need `steps_per_block` None, and they exclude each other."""
    block = lm.block_size
    if not block:
        raise MasktaxError(f"model '{lm.name}' is not block-causal; block diffusion decoding needs one "
                           "(LLaDA2, SDAR/TraDo, Fast-dLLM v2)")
    mask_id = mask_id if mask_id is not None else lm.require_mask("block diffusion decoding")
    rule = _rule(block, steps_per_block, threshold, edit_threshold, max_post_steps, sub_block_size)
    if gen_length < 1:
        raise MasktaxError("need gen_length >= 1")
    b, plen = prompt_ids.shape
    total = -(-(plen + gen_length) // block) * block
    x = torch.full((b, total), mask_id, dtype=torch.long, device=lm.device)  # [b, L]
    x[:, :plen] = prompt_ids.to(lm.device)
    out = BlockDecode(x, block, plen)
    cache = BlockCache() if use_cache else None
    first = plen // block
    carry = _store(lm, cache, x[:, : first * block], None) if cache is not None and first else None  # [b, V] raw
    out.forward_passes += carry is not None
    with torch.no_grad():
        run = _BlockRun(lm, out, cache, mask_id, temperature, soft_mask, generator, on_step, gen_length)
        for blk in range(first, total // block):
            s, e = blk * block, (blk + 1) * block
            run.soft = None
            if rule.sub_block is not None and lm.shift and bool((x[:, s] == mask_id).all()):
                run.first_token(s, carry)
            run.carry = carry
            if rule.edit_threshold is not None:
                run.edit_block(s, e, rule)
            elif rule.sub_block is not None:
                for a in range(s, e, rule.sub_block):
                    run.sub_block(s, e, a, a + rule.sub_block, rule.threshold)
            else:
                run.plain_block(s, e, even_schedule(block, rule.steps), rule.threshold)
            if cache is not None:
                carry = _store(lm, cache, x[:, s:e], carry)
                out.forward_passes += 1
    return out


def _rule(block: int, steps: int | None, threshold: float, edit: float | None, post: int,
          sub: int | None) -> BlockRule:
    if not 0 <= threshold <= 1:
        raise MasktaxError(f"need 0 <= threshold <= 1, got {threshold}")
    if steps is not None and not 1 <= steps <= block:
        raise MasktaxError(f"need 1 <= steps_per_block <= block size ({block}), got {steps}")
    if edit is not None and sub is not None:
        raise MasktaxError("token editing (LLaDA2.1) and sub-blocks (Fast-dLLM v2) are separate rules; pick one")
    if (edit is not None or sub is not None) and steps is not None:
        raise MasktaxError("token editing and sub-blocks decode until the block is done: drop steps_per_block")
    if edit is not None and (not 0 <= edit <= 1 or post < 0):
        raise MasktaxError(f"need 0 <= edit_threshold <= 1 and max_post_steps >= 0, got {edit} and {post}")
    if sub is not None and not (1 <= sub <= block and block % sub == 0):
        raise MasktaxError(f"sub_block_size must divide the block size ({block}), got {sub}")
    return BlockRule(threshold, steps or block, edit, post, sub)


class _BlockRun:
    """The state of one decode that the block rules share: forward, guess, write, record."""

    def __init__(self, lm: LoadedModel, out: BlockDecode, cache: BlockCache | None, mask_id: int,
                 temperature: float, soft_mask: SoftMaskConfig | None, generator: torch.Generator | None,
                 on_step: Callable[[StepEvent], None] | None, gen_length: int) -> None:
        self.lm, self.out, self.x, self.cache, self.mask_id = lm, out, out.sequences, cache, mask_id
        self.temperature, self.soft_mask, self.generator, self.on_step = temperature, soft_mask, generator, on_step
        self.gen_length = gen_length
        self.carry: torch.Tensor | None = None  # [b, V] raw logits at the previous block's last position
        self.soft: torch.Tensor | None = None  # [b, B, d] the window's input embeddings when soft-masked
        self.mask_row = lm.embed(torch.tensor([[mask_id]], device=lm.device))[0, 0]  # [d]

    def guess(self, s: int, e: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward of the window [s, e): tokens and confidences `[b, B]`, and the logits `[b, B, V]`."""
        logits = _window_logits(self.lm, self.x, s, e, self.cache, self.carry, self.soft).float()  # [b, B, V]
        self.out.forward_passes += 1
        return (*guess(logits, self.mask_id, self.temperature, self.generator), logits)

    def write(self, s: int, where: torch.Tensor, tokens: torch.Tensor, conf: torch.Tensor,
              logits: torch.Tensor | None, edited: torch.Tensor | None = None) -> None:
        """Write `tokens` at `where` (`[b, w]`, from column s, the block's start), record the step; with `logits`
        (the whole block's) prepare the next step's soft-masked inputs."""
        x, out, e = self.x, self.out, s + where.shape[1]
        x[:, s:e] = torch.where(where, tokens, x[:, s:e])
        out.committed.append(_widen(where, x, s, False))
        out.confidence.append(_widen(torch.where(where, conf.float(), torch.nan), x, s, torch.nan))
        out.tokens.append(_widen(torch.where(where, tokens, -1), x, s, -1))
        out.edited.append(_widen(torch.zeros_like(where) if edited is None else edited, x, s, False))
        if self.on_step is not None:
            self.on_step(StepEvent(step=len(out.committed) - 1, x=x, prompt_length=out.prompt_length,
                                   block=(s, s + out.block_size), forward_passes=out.forward_passes))
        if logits is not None:
            logits = logits.index_fill(-1, torch.tensor([self.mask_id], device=logits.device), -torch.inf)
            self.soft = _soft(self.lm, self.soft_mask, logits, x, s, e, self.mask_id, self.mask_row,
                              out.prompt_length, self.gen_length)

    def first_token(self, s: int, carry: torch.Tensor | None) -> None:
        """Fast-dLLM v2 (shifted): the block's first token is the previous position's greedy guess, written before
        the block's first step (from the stored block's logits; without a cache, one forward over [0, s + 1))."""
        if carry is None:
            logits = self.lm.logits(self.x[:, : s + 1])[:, s].float()  # [b, V] aligned: predicted at s - 1
            self.out.forward_passes += 1
        else:
            logits = carry.float()
        tokens, conf = guess(logits[:, None], self.mask_id, 0.0, None)  # [b, 1]
        self.write(s, torch.ones_like(tokens, dtype=torch.bool), tokens, conf, None)

    def plain_block(self, s: int, e: int, schedule: list[int], threshold: float) -> None:
        for n in schedule:
            active = self.x[:, s:e] == self.mask_id  # [b, B]
            if not active.any():
                break
            tokens, conf, logits = self.guess(s, e)
            self.write(s, choose(conf, active, n, threshold), tokens, conf, logits)

    def sub_block(self, s: int, e: int, a: int, z: int, threshold: float) -> None:
        """Fast-dLLM v2: until [a, z) holds no mask, commit its masks above `threshold`, at least the most confident."""
        inside = torch.zeros(e - s, dtype=torch.bool, device=self.x.device)  # [B]
        inside[a - s:z - s] = True
        while True:
            active = (self.x[:, s:e] == self.mask_id) & inside  # [b, B]
            if not active.any():
                return
            tokens, conf, logits = self.guess(s, e)
            self.write(s, choose(conf, active, 1, threshold), tokens, conf, logits)

    def edit_block(self, s: int, e: int, rule: BlockRule) -> None:
        """LLaDA2.1: each step commits the masks above `threshold` (at least the most confident) and rewrites every
        decoded, non-prompt token of the block whose new guess differs with confidence above `edit_threshold`; once
        a row's block has no masks it keeps editing until a step edits nothing or after `max_post_steps` steps."""
        x, b = self.x, self.x.shape[0]
        prompt = (torch.arange(s, e, device=x.device) < self.out.prompt_length)[None]  # [1, B]
        post = torch.zeros(b, dtype=torch.long, device=x.device)
        done = torch.zeros(b, dtype=torch.bool, device=x.device)
        while True:
            active = x[:, s:e] == self.mask_id  # [b, B]
            finished = ~active.any(-1)  # [b]
            post += finished & ~done
            done |= post > rule.max_post_steps
            if done.all():
                return
            tokens, conf, logits = self.guess(s, e)
            unmask = choose(conf, active, 1, rule.threshold) & ~done[:, None]  # [b, B]
            edit = ~active & ~prompt & ~done[:, None] & (conf > rule.edit_threshold) & (tokens != x[:, s:e])
            self.write(s, unmask | edit, tokens, conf, logits, edited=edit)
            done |= finished & ~edit.any(-1)
            if done.all():
                return


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
    edit_threshold: float | None = None,
    max_post_steps: int = 16,
    sub_block_size: int | None = None,
    generator: torch.Generator | None = None,
    return_history: bool = False,
    on_step: Callable[[StepEvent], None] | None = None,
):
    """`generate_block_diffusion` as a sampler of `SAMPLERS`: `[b, P + gen_length]` (cut from whole blocks),
    plus a `DecodeHistory` with `return_history`. `cache` "prefix" is the exact cache of finished blocks.
    A step's record holds what it wrote: unmasked positions and, with `edit_threshold`, rewritten ones."""
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
                                   use_cache=cache == "prefix", soft_mask=soft_mask, edit_threshold=edit_threshold,
                                   max_post_steps=max_post_steps, sub_block_size=sub_block_size,
                                   generator=generator, on_step=on_step)
    end = out.prompt_length + gen_length
    seqs = out.sequences[:, :end]  # [b, P + gen_length]
    if not return_history:
        return seqs
    history = DecodeHistory(prompt_length=out.prompt_length, forward_passes=out.forward_passes)
    for committed, tokens, score in zip(out.committed, out.tokens, out.confidence, strict=True):
        history.steps.append(StepRecord(committed=committed[:, :end].cpu(), tokens=tokens[:, :end].cpu(),
                                        confidence=score[:, :end].float().cpu()))
    return seqs, history


def _widen(values: torch.Tensor, x: torch.Tensor, s: int, fill) -> torch.Tensor:
    """`values [b, w]` placed at columns [s, s + w) of a `[b, L]` tensor shaped like `x`, `fill` elsewhere."""
    row = torch.full(x.shape, fill, dtype=values.dtype, device=x.device)  # [b, L]
    row[:, s:s + values.shape[1]] = values
    return row


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
    """Aligned logits `[b, B, V]` of the window [s, e): from the cache, or a forward over [0, e) (its head on the
    window only)."""
    if cache is None:  # the head only on the window's rows
        if soft is None:
            return lm.logits_from(x[:, :e], s)
        embeds = torch.cat([lm.embed(x[:, :s]), soft], dim=1)  # [b, e, d]
        return lm.logits_from(None, s, embeds=embeds)
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
