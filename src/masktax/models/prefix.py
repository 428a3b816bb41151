"""A causal model's shared prompt prefix run once: its keys and values reused by every item after it.

In a causal (AR) model the keys and values of positions < p never depend on what follows them, so
prompts that share their first p tokens can run those p tokens once and then only their own
suffixes, attending to the cached prefix. The probe suite is made of such prompts: one fixed set of
in-context examples per dataset (~1,200 tokens) before each ~20-token test question, so a causal
baseline scores a dataset's items with ~60x fewer token-forwards.

Exact in arithmetic, not bit for bit: the suffix's attention runs over cached keys as one short query
block (another kernel path than the single causal pass), so logits move in the last bits (max
|logit difference| ~1e-5 on embedded-ar; `bench/bench_prefix_cache.py` prints the agreement with
the full pass). The probes use it for causal models unless `--no-prefix-cache`.

    shared = run_prefix(lm, prefix_ids)                      # [p] -> one forward of 1 x p tokens
    logits = shared.logits_at(suffix_ids, rows)              # [b, s] right-padded, rows [b] -> [b, V]

The cache is transformers' (`DynamicCache`): any HF causal LM whose forward takes one. Suffixes are
right-padded without an attention mask: a causal row never sees the pads after it.
"""

from __future__ import annotations

import copy
import inspect

import torch
from torch import nn

from masktax.models.loaded import LoadedModel, forward_kept


def cache_keyword(module: nn.Module) -> str:
    """transformers >= 5.24 names the KV cache argument `cache`; earlier releases `past_key_values`."""
    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def takes_prefix_cache(lm: LoadedModel) -> bool:
    """Whether `lm` is a causal model whose forward takes and returns a transformers KV cache (and no
    earlier call found that it does not)."""
    if not lm.is_causal or lm.extra.get("prefix_cache") is False:
        return False
    params = inspect.signature(lm.model.forward).parameters
    return cache_keyword(lm.model) in params and "use_cache" in params


def run_prefix(lm: LoadedModel, prefix: torch.Tensor) -> SharedPrefix | None:
    """Run `prefix` `[p]` (p >= 1) once: its keys and values, or None when the model gives back no
    reusable transformers cache (then remembered: `takes_prefix_cache` is False from then on)."""
    params = inspect.signature(lm.model.forward).parameters
    head = {"logits_to_keep": 1} if "logits_to_keep" in params else {}  # the keys are what is kept
    out = lm.model(input_ids=prefix[None].to(lm.device), use_cache=True, **head)  # one row of p tokens
    cache = getattr(out, cache_keyword(lm.model), None)
    if not hasattr(cache, "batch_repeat_interleave"):
        lm.extra["prefix_cache"] = False
        return None
    return SharedPrefix(lm, int(prefix.shape[0]), cache)


class SharedPrefix:
    """The keys and values of one prefix of `length` tokens (`run_prefix`), and forwards of suffixes
    that follow it."""

    def __init__(self, lm: LoadedModel, length: int, cache) -> None:
        self.lm, self.length, self.cache = lm, length, cache
        self.keyword = cache_keyword(lm.model)

    def logits_at(self, suffix: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Raw logits `[b, V]` at suffix row `rows[i]` of each right-padded suffix `[b, s]` after the prefix
        (raw: a shifted model's row r predicts token r + 1; the caller picks the rows)."""
        b = suffix.shape[0]
        inputs = {"input_ids": suffix.to(self.lm.device), "use_cache": False}
        keep = rows.to(self.lm.device)[:, None]  # [b, 1]
        z = forward_kept(self.lm.model, keep, **inputs, **{self.keyword: self._batch_cache(b)})  # [b, 1, V] or None
        if z is not None:
            return z[:, 0]  # [b, V]
        out = self.lm.model(**inputs, **{self.keyword: self._batch_cache(b)})
        full = out.logits if hasattr(out, "logits") else out[0]  # [b, s, V]
        return full[torch.arange(b, device=full.device), keep[:, 0]]  # [b, V]

    def _batch_cache(self, b: int):
        """A copy of the prefix's cache for b rows (the forward appends the suffix's keys to it)."""
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(b)  # [b, kv, p, hd] per layer
        return cache
