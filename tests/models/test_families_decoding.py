"""Block diffusion decoding on the block-causal fixtures: the KV cache of finished blocks is exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from masktax.models import load
from masktax.models.attention import BlockCache
from masktax.samplers.block_diffusion import choose, even_schedule, generate_block_diffusion
from masktax.samplers.soft_mask import SoftMaskConfig

FIXTURES = Path(__file__).parent / "fixtures"
MASK = 2  # a token of the fixtures' tiny vocabulary, used as the mask


@pytest.mark.parametrize("name", ["llada2_moe", "sdar", "fast_dllm_v2"])
def test_cached_window_equals_full_forward(name):
    lm = load(FIXTURES / name)
    block = lm.block_size
    ids = torch.randint(3, 64, (2, 3 * block), generator=torch.Generator().manual_seed(0))
    cache = BlockCache()
    with torch.no_grad():
        full = lm.model(input_ids=ids).logits  # [2, 3B, V]
        cache.store = True
        lm.model(input_ids=ids[:, : 2 * block], cache=cache)
        cache.store = False
        window = lm.model(input_ids=ids[:, 2 * block:], cache=cache).logits
    assert len(cache) == 2 * block
    torch.testing.assert_close(window, full[:, 2 * block:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["llada2_moe", "sdar", "fast_dllm_v2"])
@pytest.mark.parametrize("soft", [False, True])
def test_decoding_with_cache_equals_without(name, soft):
    lm = load(FIXTURES / name)
    prompt = torch.randint(3, 64, (2, 11), generator=torch.Generator().manual_seed(1))
    sm = SoftMaskConfig(omega_s=0.5) if soft else None
    kw = dict(gen_length=13, steps_per_block=2, threshold=0.2, mask_id=MASK, soft_mask=sm)
    with_cache = generate_block_diffusion(lm, prompt, use_cache=True, **kw)
    without = generate_block_diffusion(lm, prompt, use_cache=False, **kw)
    assert torch.equal(with_cache.sequences, without.sequences)
    seq, block = with_cache.sequences, lm.block_size
    assert seq.shape[1] % block == 0 and seq.shape[1] >= 24 and torch.equal(seq[:, :11], prompt)
    assert not (seq == MASK).any()
    committed = torch.stack(with_cache.committed).sum(0)  # every generated position exactly once
    assert torch.equal(committed[:, 11:], torch.ones_like(committed[:, 11:])) and not committed[:, :11].any()


def test_schedule_and_threshold_rule():
    assert even_schedule(8, 3) == [3, 3, 2] and sum(even_schedule(32, 32)) == 32
    conf = torch.tensor([[0.99, 0.5, 0.97, 0.1], [0.3, 0.2, 0.6, 0.1]])
    active = torch.tensor([[True, True, True, False], [True, True, True, True]])
    picked = choose(conf, active, 1, 0.95)
    assert picked[0].tolist() == [True, False, True, False]  # both above the threshold
    assert picked[1].tolist() == [False, False, True, False]  # none above: the most confident one


def test_the_approximate_caches_are_refused_cleanly():
    from masktax.errors import MasktaxError

    lm = load(FIXTURES / "sdar")
    with pytest.raises(MasktaxError, match="block_diffusion"):
        lm.model(input_ids=torch.tensor([[3, 4]]), kv_cache=object())
