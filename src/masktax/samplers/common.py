"""Pieces every sampler shares: the model runner, token choice, selection, schedules, text helpers.

A sampler takes either an `LoadedModel` (its logits are already aligned: position i predicts
token i) or any HF-style module whose `forward(input_ids=..., inputs_embeds=...,
attention_mask=...)` returns `.logits`; for a bare module, `shift=True` says that its raw
logits predict the next token (Dream) and are shifted right by one here.

Batched prompts of different lengths are LEFT-padded (`left_pad`) with an `attention_mask`
`[b, l_prompt]` (1 = real token, 0 = pad), so every row's generation starts at the same column.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from masktax.errors import MasktaxError
from masktax.models.blocks import KVCache
from masktax.models.loaded import LoadedModel, forward_kept, region_rows, shift_logits
from masktax.models.native import NativeModel

NEG_INF = float("-inf")
CACHES = ("none", "prefix", "dual")  # Fast-dLLM's block caches; "none" runs the full sequence every step


class ModelRunner:
    """Calls the model with ids or embeddings and returns aligned logits; counts forward passes."""

    def __init__(self, model: LoadedModel | nn.Module, *, shift: bool | None = None) -> None:
        if isinstance(model, LoadedModel):
            if shift:
                raise MasktaxError("shift=True is only for bare modules: a LoadedModel already aligns its logits")
            self.lm: LoadedModel | None = model
            self.module = model.model
            self.shift = False
            self.raw_shift = model.shift  # what the module's own logits do (the lm aligns them)
            self.honours_attention_mask = model.honours_attention_mask
            self.eos_id = model.eos_id
            self.default_mask_id = model.mask_id
        elif isinstance(model, nn.Module):
            self.lm = None
            self.module = model
            self.shift = bool(shift)
            self.raw_shift = self.shift
            self.honours_attention_mask = True
            self.eos_id = None
            self.default_mask_id = None
            self.keeps = True  # until the module refuses or ignores the 2-D logits_to_keep
        else:
            raise MasktaxError(f"a sampler needs a LoadedModel or a torch module, got {type(model).__name__}")
        self.forward_passes = 0

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def _raw(self, **kwargs) -> torch.Tensor:
        out = self.module(**kwargs)
        raw = out.logits if hasattr(out, "logits") else out[0]  # [b, l, V]
        return shift_logits(raw) if self.shift else raw

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None, *, passes: int = 1) -> torch.Tensor:
        """Aligned logits `[b, l, V]`; `passes` is how many forward passes this call counts as."""
        self.forward_passes += passes
        if self.lm is not None:
            return self.lm.logits(ids, attention_mask=attention_mask)
        return self._raw(input_ids=ids, attention_mask=attention_mask)

    def logits_from_embeds(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor | None, *, passes: int = 1
    ) -> torch.Tensor:
        """Aligned logits `[b, l, V]` from input embeddings `[b, l, d]`."""
        self.forward_passes += passes
        if self.lm is not None:
            return self.lm.logits_from_embeds(embeds, attention_mask=attention_mask)
        return self._raw(inputs_embeds=embeds, attention_mask=attention_mask)

    @property
    def keeps_rows(self) -> bool:
        """Whether the vocabulary head may run on chosen rows only (the 2-D `logits_to_keep`); False once
        the model refused or ignored it (then the full logits are computed and sliced)."""
        if self.lm is not None:
            return bool(self.lm.extra.get("logits_to_keep", True)) and self.lm.kind != "uniform"
        return self.keeps

    def logits_from(
        self, ids: torch.Tensor | None, embeds: torch.Tensor | None, attention_mask: torch.Tensor | None,
        start: int, *, passes: int = 1,
    ) -> torch.Tensor:
        """Aligned logits `[b, l - start, V]` of positions `start`..l-1 from ids `[b, l]` or embeds
        `[b, l, d]`, equal to `logits(...)[:, start:]`; the head runs only there when the model allows it."""
        if self.lm is not None:
            self.forward_passes += passes
            return self.lm.logits_from(ids, start, attention_mask, embeds=embeds)
        if self.keeps:
            ref = ids if embeds is None else embeds
            keep = region_rows(ref.shape[0], ref.shape[1], start, self.shift, ref.device)  # [b, l - start]
            z = forward_kept(self.module, keep, input_ids=ids, inputs_embeds=embeds, attention_mask=attention_mask)
            if z is not None:
                self.forward_passes += passes
                return z  # [b, l - start, V]
            self.keeps = False
        if embeds is None:
            return self.logits(ids, attention_mask, passes=passes)[:, start:]
        return self.logits_from_embeds(embeds, attention_mask, passes=passes)[:, start:]

    def window_logits(
        self, ids: torch.Tensor | None, embeds: torch.Tensor | None, attention_mask: torch.Tensor | None,
        kv_cache: KVCache, *, passes: int = 1, logits_to_keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """RAW logits `[b, w, V]` of the cache's window (ids `[b, w]` or embeds `[b, w, d]`), or `[b, k, V]`
        at the window's rows `logits_to_keep` `[b, k]`; `attention_mask` `[b, L]` covers every position the
        keys hold. Unshifted: the caller aligns."""
        self.forward_passes += passes
        keep = {} if logits_to_keep is None else {"logits_to_keep": logits_to_keep}
        out = self.module(input_ids=ids, inputs_embeds=embeds, attention_mask=attention_mask, kv_cache=kv_cache,
                          **keep)
        return out.logits if hasattr(out, "logits") else out[0]  # [b, w or k, V]

    def check_cache(self, cache: str) -> None:
        """A MasktaxError unless `cache` is known and, when not "none", the model has the KV-cache path."""
        if cache not in CACHES:
            raise MasktaxError(f"unknown cache '{cache}'; choose one of {', '.join(CACHES)}")
        if cache != "none" and not isinstance(self.module, NativeModel):
            raise MasktaxError(
                f"--cache {cache} needs a native LLaDA or Dream model (its KV-cache path); "
                f"this model is {type(self.module).__name__}"
            )

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings `[b, l, d]`."""
        if self.lm is not None:
            return self.lm.embed(ids)
        return self.module.get_input_embeddings()(ids)

    def embedding_weight(self) -> torch.Tensor:
        """The input embedding matrix `[V, d]`."""
        if self.lm is not None:
            return self.lm.embedding_weight()
        return self.module.get_input_embeddings().weight

    def resolve_mask_id(self, mask_id: int | None) -> int:
        if mask_id is not None:
            return int(mask_id)
        if self.lm is not None:
            return self.lm.require_mask("generation")
        raise MasktaxError("mask_id is required when the model is a bare module, not a LoadedModel")


def check_prompt(prompt_ids: torch.Tensor, attention_mask: torch.Tensor | None, runner: ModelRunner) -> None:
    """Validate the prompt batch `[b, l]` and its optional left-padding mask."""
    if not isinstance(prompt_ids, torch.Tensor) or prompt_ids.dim() != 2:
        shape = tuple(prompt_ids.shape) if isinstance(prompt_ids, torch.Tensor) else type(prompt_ids).__name__
        raise MasktaxError(f"prompt_ids must be a 2-D tensor [batch, length], got {shape}")
    if prompt_ids.dtype not in (torch.long, torch.int32, torch.int64):
        raise MasktaxError(f"prompt_ids must hold integer token ids, got dtype {prompt_ids.dtype}")
    if attention_mask is None:
        return
    if attention_mask.shape != prompt_ids.shape:
        raise MasktaxError(
            f"attention_mask shape {tuple(attention_mask.shape)} differs from prompt_ids {tuple(prompt_ids.shape)}"
        )
    if bool((attention_mask == 0).any()) and not runner.honours_attention_mask:
        raise MasktaxError(
            "this model ignores attention_mask, so padded prompts would change its output; "
            "generate prompts of different lengths in separate calls"
        )


def check_positive(**values: float) -> None:
    """Each named value must be a positive integer."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise MasktaxError(f"{name} must be a positive integer, got {value!r}")


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists to one batch: (ids `[b, l]`, attention_mask `[b, l]`, 1 = real)."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise MasktaxError("every prompt must hold at least one token")
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)  # [b, l]
    mask = torch.zeros((len(prompts), width), dtype=torch.long)  # [b, l]
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[row, width - len(p):] = 1
    return ids, mask


Generators = torch.Generator | Sequence[torch.Generator] | None  # a sequence: one generator per row


def uniform(shape: Sequence[int], generator: Generators, device: torch.device) -> torch.Tensor:
    """U(0, 1) draws `shape` in float64; with one generator per row (a sequence), row r comes from
    generator r alone, so a row's draws do not depend on the other rows of its batch."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.rand(tuple(shape), dtype=torch.float64, device=device, generator=generator)
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} generators for {shape[0]} rows")
    return torch.stack([torch.rand(tuple(shape[1:]), dtype=torch.float64, device=device, generator=g)
                        for g in generator])  # [b, ...]


def gumbel_argmax(logits: torch.Tensor, temperature: float, generator: Generators) -> torch.Tensor:
    """Token choice `[...]` from logits `[..., V]`: argmax at temperature 0, else Gumbel-max in float64.

    LLaDA's `add_gumbel_noise`: argmax of exp(logits) / (-log u)^temperature, u ~ U(0, 1), float64
    because low-precision Gumbel noise lowers generation quality (arXiv 2409.02908).
    """
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    l64 = logits.to(torch.float64)  # [..., V]
    noise = uniform(l64.shape, generator, l64.device)  # [..., V]
    return (l64.exp() / (-torch.log(noise)) ** temperature).argmax(dim=-1)


def token_confidence(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Softmax probability `[...]` (float64, un-noised logits `[..., V]`) of the chosen `tokens`."""
    p = F.softmax(logits.to(torch.float64), dim=-1)  # [..., V]
    return p.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def select_top(confidence: torch.Tensor, candidates: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Per row, the `k[r]` candidate positions of highest confidence: bool `[b, n]`.

    `confidence` `[b, n]`, `candidates` bool `[b, n]`, `k` `[b]`. Never selects a non-candidate;
    ties go to the leftmost position. `k` is clipped to the number of candidates.
    """
    conf = confidence.to(torch.float64).masked_fill(~candidates, NEG_INF)  # [b, n]
    order = conf.argsort(dim=-1, descending=True, stable=True)  # [b, n]
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(conf.shape[1], device=conf.device).expand_as(order))
    k = torch.minimum(k.to(conf.device), candidates.sum(dim=-1))  # [b]
    return (rank < k.unsqueeze(-1)) & candidates  # [b, n]


def num_transfer_tokens(mask_counts: torch.Tensor, steps: int) -> torch.Tensor:
    """LLaDA's schedule `[b, steps]`: the masks split evenly over steps, the remainder to the first steps."""
    base = (mask_counts // steps).unsqueeze(-1)  # [b, 1]
    remainder = (mask_counts % steps).unsqueeze(-1)  # [b, 1]
    extra = torch.arange(steps, device=mask_counts.device).unsqueeze(0) < remainder  # [b, steps]
    return base + extra.long()  # [b, steps]


def resolve_eos_ids(eos_ids: Sequence[int] | int | None, runner: ModelRunner, needed: bool) -> tuple[int, ...]:
    """EOS ids to suppress (explicit, else the lm's EOS); an error if needed and unknown."""
    if isinstance(eos_ids, int):
        eos_ids = (eos_ids,)
    ids = tuple(int(i) for i in eos_ids) if eos_ids is not None else (
        (runner.eos_id,) if runner.eos_id is not None else ()
    )
    if needed and not ids:
        raise MasktaxError("EOS suppression needs eos_ids: the model declares no EOS token")
    return ids


def suppress_eos(logits: torch.Tensor, eos_ids: tuple[int, ...]) -> None:
    """Set the EOS logits `[..., V]` to -inf in place (LLaDA's `logits_eos_inf`)."""
    for eos in eos_ids:
        logits[..., eos] = NEG_INF


def demote_eos(confidence: torch.Tensor, tokens: torch.Tensor, eos_ids: tuple[int, ...]) -> torch.Tensor:
    """Confidence `[b, n]` with EOS choices ranked after every other (scores are <= 1, so -2 does it)."""
    is_eos = torch.zeros_like(tokens, dtype=torch.bool)  # [b, n]
    for eos in eos_ids:
        is_eos |= tokens == eos
    return torch.where(is_eos, confidence - 2.0, confidence)


def strip_after_eos(ids: Sequence[int], eos_ids: Sequence[int]) -> list[int]:
    """The tokens before the first EOS (all of them if there is none)."""
    stop = set(eos_ids)
    out: list[int] = []
    for tok in ids:
        if tok in stop:
            break
        out.append(int(tok))
    return out


def decode(
    tokenizer,
    sequences: torch.Tensor,
    prompt_length: int,
    *,
    stop_at_eos: bool = True,
    eos_ids: Sequence[int] | None = None,
    skip_special_tokens: bool = True,
) -> list[str]:
    """Text of the generated part of each row `[b, l]`.

    The samplers always decode the full `gen_length` positions: an MDLM such as LLaDA fills the
    tail with EOS, and EOS is an ordinary token to them. With `stop_at_eos` the text is cut at
    the first EOS (`eos_ids`, default the tokenizer's `eos_token_id`).
    """
    if eos_ids is None:
        eos = getattr(tokenizer, "eos_token_id", None)
        eos_ids = () if eos is None else (eos,)
    texts = []
    for row in sequences[:, prompt_length:].tolist():
        ids = strip_after_eos(row, eos_ids) if stop_at_eos else row
        texts.append(tokenizer.decode(ids, skip_special_tokens=skip_special_tokens))
    return texts
