"""The block sampler's LLaDA2.1 editing and Fast-dLLM v2 sub-blocks reproduce the PUBLISHED generate functions.

tests/samplers/fixtures/decode_reference.json holds the token ids that the published code decoded
on the tiny block-causal fixtures (fp32; greedy, and LLaDA2.1 also sampled; scripts/make_decode_fixtures.py,
run in a throwaway transformers-4.57 environment). The published functions stop at the first EOS (and
Fast-dLLM v2 decodes whole blocks plus the next block's first token), so the comparison is over the
tokens they returned; masktax decodes at least as many. LLaDA2.0's `generate` checks the default
(plain) rule too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from masktax.models import load
from masktax.samplers.block_diffusion import generate_block_diffusion

FIXTURES = Path(__file__).parents[1] / "models" / "fixtures"
REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "decode_reference.json").read_text())


def _id(case: dict) -> str:
    return f"P{len(case['prompt'])}-t{case['threshold']}" + (f"-T{case['temperature']}" if case.get("temperature") else "")


@pytest.fixture(scope="module")
def models():  # on the CPU, in fp32 as the references
    return {name: load(FIXTURES / name, device="cpu") for name in ("llada2_moe", "fast_dllm_v2")}


def _decoded(out, case: dict) -> list[int]:
    plen = len(case["prompt"])
    return out.sequences[0, plen:plen + len(case["output"])].tolist()


def _llada21(models, case: dict, use_cache: bool = True, **overrides):
    kw = dict(gen_length=case["gen_length"], threshold=case["threshold"], edit_threshold=case["editing_threshold"],
              max_post_steps=case["max_post_steps"], temperature=case["temperature"], mask_id=case["mask_id"],
              use_cache=use_cache, generator=torch.Generator().manual_seed(case["seed"]))
    return generate_block_diffusion(models[case["fixture"]], torch.tensor([case["prompt"]]), **{**kw, **overrides})


def _fast(models, case: dict, use_cache: bool = True, **overrides):
    kw = dict(gen_length=len(case["output"]), threshold=case["threshold"], sub_block_size=case["small_block_size"],
              mask_id=case["mask_id"], use_cache=use_cache)
    return generate_block_diffusion(models[case["fixture"]], torch.tensor([case["prompt"]]), **{**kw, **overrides})


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("case", REFERENCE["llada21"], ids=_id)
def test_llada21_token_editing_reproduces_the_published_generate(models, case, use_cache):
    """Greedy and sampled (the published code draws from the default generator seeded with `seed`)."""
    assert _decoded(_llada21(models, case, use_cache), case) == case["output"]
    assert len(case["output"]) == case["gen_length"] or case["output"][-1] == case["eos_id"]


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("case", REFERENCE["llada20"], ids=_id)
def test_the_plain_rule_reproduces_llada20s_published_generate(models, case, use_cache):
    """The default rule (even schedule, threshold; greedy confidence softmax(logits)) against LLaDA2.0's loop."""
    out = generate_block_diffusion(
        models[case["fixture"]], torch.tensor([case["prompt"]]), gen_length=case["gen_length"],
        steps_per_block=case["steps_per_block"], threshold=case["threshold"], mask_id=case["mask_id"],
        use_cache=use_cache)
    assert _decoded(out, case) == case["output"]


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
@pytest.mark.parametrize("case", REFERENCE["fast_dllm_v2"], ids=_id)
def test_fast_dllm_v2_sub_blocks_reproduce_the_published_generate(models, case, use_cache):
    assert _decoded(_fast(models, case, use_cache), case) == case["output"]


def test_the_reference_cases_exercise_the_rules(models):
    """Editing happens (prompt tokens in a decoded block are never edited) and changes the result; the
    post-step cap and Fast-dLLM v2's sub-blocks and first token decide tokens: the plain rule differs."""
    edits, differs = 0, 0
    for case in REFERENCE["llada21"]:
        out = _llada21(models, case)
        edited = torch.stack(out.edited).any(0)[0]  # [L]
        assert not edited[: len(case["prompt"])].any()
        edits += int(edited.sum())
        plain = _llada21(models, case, edit_threshold=None, max_post_steps=16)
        differs += _decoded(plain, case) != case["output"]
    assert edits >= 20 and differs >= 4
    differs = sum(_decoded(_fast(models, case, sub_block_size=None), case) != case["output"]
                  for case in REFERENCE["fast_dllm_v2"])
    assert differs >= 3
