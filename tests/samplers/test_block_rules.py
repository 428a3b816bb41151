"""The block sampler's LLaDA2.1 editing and Fast-dLLM v2 sub-block rules: exact cache, batching, history, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from masktax.errors import MasktaxError
from masktax.models import load
from masktax.samplers.block_diffusion import choose, generate_block, generate_block_diffusion
from masktax.samplers.soft_mask import SoftMaskConfig

FIXTURES = Path(__file__).parents[1] / "models" / "fixtures"
MASK = 2
RULES = {"edit": dict(threshold=0.3, edit_threshold=0.1), "sub": dict(threshold=0.15, sub_block_size=4)}


@pytest.fixture(scope="module")
def models():  # on the CPU, in fp32 as the references
    return {name: load(FIXTURES / name, device="cpu") for name in ("llada2_moe", "sdar", "fast_dllm_v2")}


def _prompt(rows: int, length: int = 11, seed: int = 5) -> torch.Tensor:
    return torch.randint(3, 64, (rows, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["llada2_moe", "fast_dllm_v2"])
@pytest.mark.parametrize("rule", ["edit", "sub"])
@pytest.mark.parametrize("soft", [False, True])
def test_cache_is_exact_and_rows_decode_as_alone(models, name, rule, soft):
    lm, prompt = models[name], _prompt(2)
    sm = SoftMaskConfig(omega_s=0.5) if soft else None
    kw = dict(gen_length=13, mask_id=MASK, soft_mask=sm, **RULES[rule])
    cached = generate_block_diffusion(lm, prompt, use_cache=True, **kw)
    assert torch.equal(cached.sequences, generate_block_diffusion(lm, prompt, use_cache=False, **kw).sequences)
    for row in range(2):
        alone = generate_block_diffusion(lm, prompt[row:row + 1], use_cache=True, **kw)
        assert torch.equal(alone.sequences[0], cached.sequences[row])
    assert not (cached.sequences == MASK).any()


def test_history_records_edits_with_the_token_written(models):
    lm = models["llada2_moe"]
    prompt = _prompt(1, 21, 5)
    seqs, history = generate_block(lm, prompt, gen_length=20, threshold=0.3, edit_threshold=0.1, mask_id=MASK,
                                   cache="prefix", return_history=True)
    out = generate_block_diffusion(lm, prompt, gen_length=20, threshold=0.3, edit_threshold=0.1, mask_id=MASK)
    assert torch.equal(seqs, out.sequences[:, :41])
    assert any(bool(e.any()) for e in out.edited)
    replay = prompt.new_full((1, 41), MASK)
    replay[:, :21] = prompt
    for step in history.steps:  # writing each step's tokens in order rebuilds the result, edits included
        replay = torch.where(step.committed, step.tokens, replay)
    assert torch.equal(replay, seqs)
    assert history.forward_passes == out.forward_passes


def test_sub_blocks_write_a_shifted_models_first_token_before_the_block(models):
    """Fast-dLLM v2: from the stored block's logits (no forward) with the cache, one extra forward without."""
    lm, prompt = models["fast_dllm_v2"], _prompt(1, 16)
    blocks = []
    with_cache = generate_block_diffusion(lm, prompt, gen_length=3, sub_block_size=8, threshold=1.0, mask_id=MASK,
                                          on_step=lambda event: blocks.append(event.block))
    assert set(blocks) == {(16, 24)}  # every step, the token's too, shows the whole block
    first = with_cache.committed[0][0]
    assert first[16] and int(first.sum()) == 1  # the first step writes only the block's first position
    without = generate_block_diffusion(lm, prompt, gen_length=3, sub_block_size=8, threshold=1.0, mask_id=MASK,
                                       use_cache=False)
    assert torch.equal(with_cache.sequences, without.sequences)
    steps = len(with_cache.committed) - 1  # window steps after the first token
    assert with_cache.forward_passes == 1 + steps + 1  # prompt's store, window steps, block's store; none for the token
    assert without.forward_passes == 1 + steps  # the token's forward, window steps


@pytest.mark.parametrize("kw, match", [
    (dict(edit_threshold=0.5, sub_block_size=4), "pick one"),
    (dict(edit_threshold=0.5, steps_per_block=2), "drop steps_per_block"),
    (dict(sub_block_size=3), "must divide the block size"),
    (dict(edit_threshold=1.5), "edit_threshold"),
    (dict(edit_threshold=0.5, max_post_steps=-1), "max_post_steps"),
])
def test_bad_rule_options_are_one_line_errors(models, kw, match):
    with pytest.raises(MasktaxError, match=match):
        generate_block_diffusion(models["sdar"], _prompt(1), gen_length=4, mask_id=MASK, **kw)


def test_equal_confidences_commit_the_leftmost_first():
    """As the published code's argmax / topk: of tied guesses the leftmost position goes first."""
    conf = torch.tensor([[0.2, 0.5, 0.5, 0.5, 0.1]])
    active = torch.ones_like(conf, dtype=torch.bool)
    assert choose(conf, active, 1, 0.9).tolist() == [[False, True, False, False, False]]
    assert choose(conf, active, 2, 0.9).tolist() == [[False, True, True, False, False]]
