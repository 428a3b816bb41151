"""The decoding state every sampler shares: the sequence, soft-masked inputs, history, callbacks.

A sampler asks the decode state for this step's aligned logits of the generated region (positions
lp..l-1, `[b, gen_length, V]`: the prompt never holds masks, so nothing reads its logits and the
vocabulary head runs only on the region, see `LoadedModel.logits_from`), picks which masked
positions to commit and with which tokens, and hands them back to `commit`. The state guarantees that only
masked positions of the generated region ever change (committed tokens and the prompt stay
fixed), records the decoding history, and prepares the soft-masked inputs of the next step.

With `cache` "prefix" or "dual" (Fast-dLLM; the sampler calls `begin_block` before each block),
the block's first step is one full forward that fills a KV cache (so that step equals no cache
exactly), and every later step of the block runs only a window: from the block's start to the end
of the sequence ("prefix": the keys of the prompt and finished blocks come from the cache), or the
block alone ("dual": the suffix's keys too). For a shifted model (Dream) the window starts one
position earlier, since token i is predicted at position i - 1. Positions of the region outside the
window keep the logits of the block's full forward (whose head, too, runs on the region only). For a bidirectional model this is an approximation: the
cached keys saw the block as it was at its first step. Soft-masked inputs feed the window; with
"dual" the suffix's soft masks enter through the block's full forward only.

Deviation from the reference samplers, on purpose: the mask token's own logit is set to -inf
before any choice, so a committed position always holds a real token (the references can
"commit" [MASK] and end with masks left over), and masks inside the prompt are context, never
filled (the reference LLaDA sampler would spend the block's budget on them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from masktax.errors import MasktaxError
from masktax.models.blocks import KVCache
from masktax.models.loaded import region_rows, shift_logits
from masktax.samplers.common import NEG_INF, ModelRunner
from masktax.samplers.soft_mask import SoftMaskConfig, soft_mask_embeddings


@dataclass(frozen=True)
class StepRecord:
    """One decoding step: what was committed where (tensors on CPU)."""

    committed: torch.Tensor  # [b, l] bool: positions committed in this step
    tokens: torch.Tensor  # [b, l] long: the committed token, -1 elsewhere
    confidence: torch.Tensor  # [b, l] float32: the sampler's score of each committed token, nan elsewhere


@dataclass
class DecodeHistory:
    """Per-step record of a decode, plus the number of forward passes it cost."""

    prompt_length: int
    steps: list[StepRecord] = field(default_factory=list)
    forward_passes: int = 0

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    def counts(self) -> torch.Tensor:
        """Tokens committed per step and row `[steps, b]`."""
        return torch.stack([s.committed.sum(dim=-1) for s in self.steps])  # [steps, b]

    def order(self) -> torch.Tensor:
        """Step at which each position was committed `[b, l]`; -1 for the prompt / never."""
        first = self.steps[0].committed
        out = torch.full(first.shape, -1, dtype=torch.long)  # [b, l]
        for i, s in enumerate(self.steps):
            out[s.committed] = i
        return out


@dataclass(frozen=True)
class StepEvent:
    """What an `on_step` callback sees after each step (do not modify `x`)."""

    step: int  # 0-based step index over the whole decode
    x: torch.Tensor  # [b, l] the sequences after this step
    prompt_length: int
    block: tuple[int, int]  # [start, end) columns of the block being decoded
    forward_passes: int


OnStep = Callable[[StepEvent], None]


class DecodeState:
    """Holds the sequences `[b, lp + gen_length]` being decoded and everything around them."""

    def __init__(
        self,
        runner: ModelRunner,
        prompt_ids: torch.Tensor,
        *,
        gen_length: int,
        mask_id: int,
        attention_mask: torch.Tensor | None,
        soft_mask: SoftMaskConfig | None,
        record: bool,
        on_step: OnStep | None,
        cache: str = "none",
    ) -> None:
        runner.check_cache(cache)
        device = runner.device
        b, lp = prompt_ids.shape
        vocab = runner.embedding_weight().shape[0]
        if not 0 <= mask_id < vocab:
            raise MasktaxError(f"mask id {mask_id} is outside the model's vocabulary of {vocab}")
        self.runner, self.mask_id, self.soft_mask, self.on_step = runner, mask_id, soft_mask, on_step
        self.prompt_length, self.gen_length = lp, gen_length
        self.x = torch.full((b, lp + gen_length), mask_id, dtype=torch.long, device=device)  # [b, l]
        self.x[:, :lp] = prompt_ids.to(device)
        self.attention_mask = None
        if attention_mask is not None:
            ones = torch.ones((b, gen_length), dtype=attention_mask.dtype, device=device)
            self.attention_mask = torch.cat([attention_mask.to(device), ones], dim=1)  # [b, l]
        self.gen = torch.zeros(lp + gen_length, dtype=torch.bool, device=device)  # [l]
        self.gen[lp:] = True
        self.soft_positions: torch.Tensor | None = None  # [b, l] bool
        self.soft_vectors: torch.Tensor | None = None  # [n, d]
        self.step = 0
        self.history = DecodeHistory(prompt_length=lp) if record else None
        self.cache = cache
        self.block: tuple[int, int] | None = None  # [start, end) of the block being decoded
        self.kv: KVCache | None = None
        self.refresh = False  # the next forward is the block's full one
        self.cached_logits: torch.Tensor | None = None  # [B, g, V] aligned region, the window's rows fresh

    def begin_block(self, start: int, end: int) -> None:
        """The block `[start, end)` is decoded next: with a cache, its first forward refreshes it."""
        self.block, self.refresh = (start, end), True

    def masked(self) -> torch.Tensor:
        """Still-masked positions of the generated region `[b, l]`."""
        return (self.x == self.mask_id) & self.gen

    def _inputs(self, ids: torch.Tensor) -> torch.Tensor | None:
        """Input embeddings `[b, l, d]` with the pending soft masks, or None for plain ids."""
        if self.soft_positions is None:
            return None
        embeds = self.runner.embed(ids).clone()  # [b, l, d]
        embeds[self.soft_positions] = self.soft_vectors.to(embeds.dtype)
        return embeds

    def logits(self, cfg_scale: float = 0.0) -> torch.Tensor:
        """This step's aligned logits of the generated region `[b, g, V]` (g = gen_length: index j is
        position prompt_length + j), the mask token's own logit at -inf.

        With `cfg_scale > 0` (classifier-free guidance, LLaDA), a second copy of the sequence
        with the prompt masked is run in the same batch: logits = un + (cfg + 1) * (cond - un).
        """
        runner, x, am = self.runner, self.x, self.attention_mask
        if cfg_scale > 0.0:
            un_x = x.clone()
            un_x[:, : self.prompt_length] = self.mask_id
            both = torch.cat([x, un_x], dim=0)  # [2b, l]
            both_am = None if am is None else torch.cat([am, am], dim=0)  # [2b, l]
            embeds = self._inputs(x)
            if embeds is None:
                out = self._forward(both, None, both_am, passes=2)  # [2b, g, V]
            else:
                un_embeds = runner.embed(un_x).clone()  # [b, l, d]
                un_embeds[self.soft_positions] = self.soft_vectors.to(un_embeds.dtype)
                out = self._forward(None, torch.cat([embeds, un_embeds]), both_am, passes=2)
            cond, un = out.chunk(2, dim=0)  # [b, g, V] each
            logits = un + (cfg_scale + 1.0) * (cond - un)  # [b, g, V]
        else:
            embeds = self._inputs(x)
            if embeds is None:
                logits = self._forward(x, None, am)  # [b, g, V]
            else:
                logits = self._forward(None, embeds, am)  # [b, g, V]
        if not 0 <= self.mask_id < logits.shape[-1]:
            raise MasktaxError(f"mask id {self.mask_id} is outside the model's vocabulary of {logits.shape[-1]}")
        logits[..., self.mask_id] = NEG_INF
        return logits

    def _forward(
        self, ids: torch.Tensor | None, embeds: torch.Tensor | None, am: torch.Tensor | None, passes: int = 1
    ) -> torch.Tensor:
        """Aligned logits `[B, g, V]` of the generated region from ids `[B, l]` or embeds `[B, l, d]`."""
        lp = self.prompt_length
        if self.cache == "none" or self.block is None:
            return self.runner.logits_from(ids, embeds, am, lp, passes=passes)  # [B, g, V]
        runner, (start, end) = self.runner, self.block
        shift = int(runner.raw_shift)
        if self.refresh or self.kv is None:
            self.kv = KVCache()
            window = self.kv.window(0, write=True)
            if runner.keeps_rows:  # the head on the region's raw rows only (shifted: lp - 1 .. l - 2)
                ref = ids if embeds is None else embeds
                keep = region_rows(ref.shape[0], ref.shape[1], lp, bool(shift), ref.device)  # [B, g]
                self.cached_logits = runner.window_logits(ids, embeds, am, window, passes=passes,
                                                          logits_to_keep=keep)  # [B, g, V]
            else:
                raw = runner.window_logits(ids, embeds, am, window, passes=passes)  # [B, l, V]
                self.cached_logits = (shift_logits(raw) if shift else raw)[:, lp:]  # [B, g, V]
            if self.cache == "prefix":
                self.kv.truncate(start - shift)
            self.refresh = False
            return self.cached_logits
        assert self.cached_logits is not None
        first = start - shift  # a shifted model predicts token `start` at position start - 1
        last = ids.shape[1] if ids is not None else embeds.shape[1]  # type: ignore[union-attr]
        last = last if self.cache == "prefix" else end
        window = self.kv.window(first, write=False)
        raw = runner.window_logits(
            None if ids is None else ids[:, first:last], None if embeds is None else embeds[:, first:last], am,
            window, passes=passes,
        )  # [B, last - first, V]
        self.cached_logits[:, start - lp:last - lp] = raw[:, : last - start]
        return self.cached_logits

    def commit(
        self,
        transfer: torch.Tensor,
        tokens: torch.Tensor,
        confidence: torch.Tensor | None,
        logits: torch.Tensor,
        block: tuple[int, int],
    ) -> None:
        """Write `tokens` `[b, l]` at `transfer` `[b, l]` (masked positions only), then record,
        prepare the next step's soft-masked inputs from `logits` `[b, g, V]` (the generated region's,
        as `logits` returns them), and call back."""
        transfer = transfer & self.masked()  # [b, l] never touch the prompt or committed tokens
        self.x = torch.where(transfer, tokens, self.x)  # [b, l]
        if self.history is not None:
            conf = torch.full(transfer.shape, float("nan"), dtype=torch.float32, device=transfer.device)
            if confidence is not None:
                conf = torch.where(transfer, confidence.to(torch.float32), conf)
            self.history.steps.append(
                StepRecord(
                    committed=transfer.cpu(),
                    tokens=torch.where(transfer, tokens, torch.full_like(tokens, -1)).cpu(),
                    confidence=conf.cpu(),
                )
            )
            self.history.forward_passes = self.runner.forward_passes
        self._prepare_soft(logits)
        if self.on_step is not None:
            self.on_step(StepEvent(self.step, self.x, self.prompt_length, block, self.runner.forward_passes))
        self.step += 1

    def _prepare_soft(self, logits: torch.Tensor) -> None:
        """After a step, the still-masked positions of rows still early enough in the decode get
        the soft embedding of [P2], computed from this step's region logits `[b, g, V]` (only at
        those positions)."""
        self.soft_positions = self.soft_vectors = None
        cfg = self.soft_mask
        if cfg is None:
            return
        still = self.masked()  # [b, l]
        committed = 1.0 - still.sum(dim=-1).double() / self.gen_length  # [b]
        still &= cfg.active(committed).unsqueeze(-1)
        if not bool(still.any()):
            return
        weight = self.runner.embedding_weight()  # [V, d]
        self.soft_positions = still
        self.soft_vectors = soft_mask_embeddings(
            logits[still[:, self.prompt_length:]], weight, weight[self.mask_id],
            k=cfg.k, omega_s=cfg.omega_s, omega_a=cfg.omega_a, omega_b=cfg.omega_b,
        )  # [n, d]

    def result(self, return_history: bool) -> torch.Tensor | tuple[torch.Tensor, DecodeHistory]:
        if not return_history:
            return self.x
        assert self.history is not None
        self.history.forward_passes = self.runner.forward_passes
        return self.x, self.history
