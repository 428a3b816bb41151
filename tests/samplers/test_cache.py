"""Sampler caches (Fast-dLLM's prefix and dual caches; the AR baseline's exact KV cache).

For a bidirectional model the block caches are approximations, so the tests pin what must hold
exactly: each block's first step is the no-cache step; with one step per block the whole decode is
the no-cache decode (soft-masking and CFG included); later steps run only the window; AR decoding
with its cache equals decoding without it.
"""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_dream, tiny_llada, tiny_llama_ar, tiny_mask_id, tiny_tokenizer

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.samplers import SoftMaskConfig, generate_ar, generate_dream, generate_semi_ar, generate_threshold
from masktax.samplers.common import token_confidence

MASK = tiny_mask_id()

pytestmark = pytest.mark.usefixtures("one_thread")


def _lm(family: str) -> LoadedModel:
    tok = tiny_tokenizer()
    build = {"llada": tiny_llada, "dream": tiny_dream}[family]
    return LoadedModel(name=family, model=build(seed=2).eval(), tokenizer=tok, kind="mdlm", mask_id=MASK,
                       shift=family == "dream", max_length=4096, pad_id=tok.pad_token_id, eos_id=tok.eos_token_id)


def _prompts(b: int = 2, n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(5, 40, (b, n), generator=torch.Generator().manual_seed(1))  # [b, n]
    am = torch.ones_like(ids)
    ids[1, :3], am[1, :3] = 0, 0  # left-padded second row
    return ids, am


@pytest.mark.parametrize("family", ["llada", "dream"])
@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_one_step_per_block_is_the_no_cache_decode(family, cache):
    lm, (ids, am) = _lm(family), _prompts()
    soft = SoftMaskConfig(omega_s=0.5, fraction=1.0)
    for kw in ({}, {"soft_mask": soft}, {"cfg_scale": 1.0}):
        args = dict(steps=3, gen_length=12, block_length=4, attention_mask=am, **kw)
        assert torch.equal(generate_semi_ar(lm, ids, cache=cache, **args), generate_semi_ar(lm, ids, **args))
    one = dict(gen_length=12, block_length=4, max_steps_per_block=1, attention_mask=am)
    assert torch.equal(generate_threshold(lm, ids, cache=cache, **one), generate_threshold(lm, ids, **one))


@pytest.mark.parametrize("family", ["llada", "dream"])
@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_each_blocks_first_step_is_the_no_cache_step(family, cache):
    lm, (ids, am) = _lm(family), _prompts()
    full = torch.cat([am, torch.ones(2, 12, dtype=am.dtype)], dim=1)
    seen = [torch.full((2, ids.shape[1] + 12), MASK)]  # the state before each step
    seen[0][:, : ids.shape[1]] = ids

    def snap(event):
        seen.append(event.x.clone())

    _, hist = generate_semi_ar(lm, ids, steps=12, gen_length=12, block_length=4, attention_mask=am, cache=cache,
                               return_history=True, on_step=snap)
    for step in (0, 4, 8):  # the first step of each of the 3 blocks (4 steps per block)
        logits = lm.logits(seen[step], full)  # [b, l, V] a plain forward of the state before that step
        logits[..., MASK] = float("-inf")
        rec = hist.steps[step]
        tokens = logits.argmax(-1)  # [b, l]
        assert torch.equal(rec.tokens[rec.committed], tokens[rec.committed])
        conf = token_confidence(logits, tokens).float()  # [b, l]
        assert torch.equal(rec.confidence[rec.committed], conf[rec.committed])


@pytest.mark.parametrize("family,shift", [("llada", 0), ("dream", 1)])
@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_later_steps_run_only_the_window(family, shift, cache):
    lm, (ids, am) = _lm(family), _prompts()
    lengths: list[int] = []  # positions each forward runs
    heads: list[int] = []  # rows of its vocabulary head

    def seen(m, a, kw, out):
        lengths.append((kw["input_ids"] if kw.get("input_ids") is not None else kw["inputs_embeds"]).shape[1])
        heads.append(out.logits.shape[1])

    hook = lm.model.register_forward_hook(seen, with_kwargs=True)
    try:
        generate_semi_ar(lm, ids, steps=6, gen_length=12, block_length=6, attention_mask=am, cache=cache)
    finally:
        hook.remove()
    lp, total = ids.shape[1], ids.shape[1] + 12
    if cache == "prefix":
        want = [total] + [12 + shift] * 2 + [total] + [6 + shift] * 2
    else:
        want = [total] + [6 + shift] * 2 + [total] + [6 + shift] * 2
    assert lengths == want, (lp, lengths)
    assert heads == [12 if n == total else n for n in want], heads  # a full forward's head: the generated region


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cached_decodes_finish_with_soft_masking_and_dream_schedule(cache):
    lm, (ids, am) = _lm("dream"), _prompts()
    soft = SoftMaskConfig(omega_s=0.5, fraction=1.0)
    for out in (
        generate_semi_ar(lm, ids, steps=12, gen_length=12, block_length=4, attention_mask=am, cache=cache, soft_mask=soft),
        generate_threshold(lm, ids, gen_length=12, block_length=4, threshold=0.5, attention_mask=am, cache=cache,
                           soft_mask=soft),
        generate_dream(lm, ids, steps=6, gen_length=12, attention_mask=am, cache=cache, soft_mask=soft),
    ):
        assert torch.equal(out[:, : ids.shape[1]], ids)
        assert not bool((out[:, ids.shape[1]:] == MASK).any())


def test_ar_kv_cache_decoding_equals_no_cache_decoding():
    tok = tiny_tokenizer()
    model = tiny_llama_ar(seed=4).eval()
    lm = LoadedModel(name="ar", model=model, tokenizer=tok, kind="ar", mask_id=None, shift=True, max_length=4096,
                     pad_id=tok.pad_token_id, eos_id=tok.eos_token_id)
    ids, am = _prompts()
    plain, h_plain = generate_ar(lm, ids, gen_length=10, attention_mask=am, return_history=True)
    cached, h_cached = generate_ar(lm, ids, gen_length=10, attention_mask=am, cache="prefix", return_history=True)
    assert torch.equal(plain, cached)
    for a, b in zip(h_plain.steps, h_cached.steps, strict=True):
        torch.testing.assert_close(a.confidence, b.confidence, rtol=0, atol=1e-5, equal_nan=True)
    # And the cache-free decode is honest greedy decoding: each token is the argmax after the row so far.
    row = plain[0].tolist()
    for cur in range(ids.shape[1], ids.shape[1] + 10):
        nxt = model(input_ids=torch.tensor([row[:cur]])).logits[0, -1].argmax().item()
        assert row[cur] == nxt


def test_bad_cache_values_are_one_line_errors():
    lm, (ids, _) = _lm("llada"), _prompts()
    with pytest.raises(MasktaxError, match="unknown cache 'full'; choose one of none, prefix, dual"):
        generate_semi_ar(lm, ids, steps=4, gen_length=4, block_length=4, cache="full")
    ar = LoadedModel(name="ar", model=tiny_llama_ar().eval(), tokenizer=None, kind="ar", mask_id=None, shift=True,
                     max_length=4096)
    with pytest.raises(MasktaxError, match="needs a native LLaDA or Dream"):
        generate_semi_ar(ar.model, ids, steps=4, gen_length=4, block_length=4, mask_id=MASK, cache="prefix")
    with pytest.raises(MasktaxError, match="use --cache prefix"):
        generate_ar(ar, ids, gen_length=2, cache="dual")
    with pytest.raises(MasktaxError, match="for causal"):
        generate_ar(lm, ids, gen_length=2)
