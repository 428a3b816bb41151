"""The native models' KV-cache path (`models.blocks.KVCache`): a full forward that fills the cache is
the plain forward bit for bit; a cached window forward over unchanged tokens equals the full forward
at the window (prefix and dual layouts, padding, float64); changed window tokens change only what a
bidirectional model must (the cache is stale by design)."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_dream, tiny_llada, tiny_mask_id

from masktax.models.blocks import KVCache

FAMILIES = {"llada": tiny_llada, "dream": tiny_dream}

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(family: str, dtype=torch.float64):
    return FAMILIES[family](seed=3).to(dtype).eval()


def _ids(b: int = 2, n: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, 40, (b, n), generator=g)  # [b, n]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_filling_forward_is_the_plain_forward_bit_for_bit(family):
    model = _model(family, torch.float32)
    ids = _ids()
    am = torch.ones_like(ids)
    am[1, :5] = 0  # a left-padded row
    with torch.no_grad():
        for mask in (None, am):
            plain = model(input_ids=ids, attention_mask=mask).logits
            cache = KVCache()
            filled = model(input_ids=ids, attention_mask=mask, kv_cache=cache.window(0, write=True)).logits
            assert torch.equal(plain, filled)
            assert len(cache) == ids.shape[1]


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("padded", [False, True])
def test_window_over_unchanged_tokens_equals_the_full_forward(family, padded):
    model = _model(family)
    ids = _ids()
    am = None
    if padded:
        am = torch.ones_like(ids)
        am[0, :3] = 0
    start, end = 10, 16
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=am).logits  # [b, n, V]
        cache = KVCache()
        model(input_ids=ids, attention_mask=am, kv_cache=cache.window(0, write=True))
        dual = model(input_ids=ids[:, start:end], attention_mask=am, kv_cache=cache.window(start, write=False)).logits
        cache.truncate(start)
        assert len(cache) == start
        prefix = model(input_ids=ids[:, start:], attention_mask=am, kv_cache=cache.window(start, write=False)).logits
    torch.testing.assert_close(dual, full[:, start:end], rtol=0, atol=1e-10)
    torch.testing.assert_close(prefix, full[:, start:], rtol=0, atol=1e-10)
    assert len(cache) == start  # a read-only window leaves the cache as it was


@pytest.mark.parametrize("family", list(FAMILIES))
def test_changed_window_is_a_stale_approximation_of_the_full_forward(family):
    model = _model(family)
    ids = _ids(b=1)
    start, end = 10, 16
    changed = ids.clone()
    changed[:, start:end] = tiny_mask_id()
    with torch.no_grad():
        cache = KVCache()
        model(input_ids=ids, kv_cache=cache.window(0, write=True))
        cache.truncate(start)
        cached = model(input_ids=changed[:, start:], kv_cache=cache.window(start, write=False)).logits
        exact = model(input_ids=changed).logits[:, start:]
        # With the prefix computed from `changed` itself the window is exact again.
        fresh = KVCache()
        model(input_ids=changed, kv_cache=fresh.window(0, write=True))
        fresh.truncate(start)
        refreshed = model(input_ids=changed[:, start:], kv_cache=fresh.window(start, write=False)).logits
    assert (cached - exact).abs().max() > 1e-6  # bidirectional: the prefix saw the old window
    torch.testing.assert_close(refreshed, exact, rtol=0, atol=1e-10)


def test_appending_windows_builds_the_cache_like_one_forward():
    """Writing windows one after the other grows the cache (AR-style appends); the keys of a position
    depend on what the earlier windows saw, so only the first window matches a full forward's keys."""
    model = _model("llada")
    ids = _ids(b=1)
    with torch.no_grad():
        cache = KVCache()
        model(input_ids=ids[:, :8], kv_cache=cache.window(0, write=True))
        model(input_ids=ids[:, 8:12], kv_cache=cache.window(8, write=True))
        assert len(cache) == 12
        whole = KVCache()
        model(input_ids=ids[:, :8], kv_cache=whole.window(0, write=True))
    torch.testing.assert_close(cache.keys[0][:, :, :8], whole.keys[0])


def test_a_window_past_the_cache_is_refused():
    with pytest.raises(ValueError, match="gap"):
        KVCache().window(3, write=False)
