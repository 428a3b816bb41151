"""`masktax generate --sampler block` with LLaDA2.1's token editing and Fast-dLLM v2's sub-blocks: the flags
decode as `generate_block_diffusion` does, the model cards' defaults, and bad input in one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from masktax.cli.main import main
from masktax.embedded.tokenizer import build_tokenizer
from masktax.models import load
from masktax.samplers import decode
from masktax.samplers.block_diffusion import generate_block_diffusion
from masktax.samplers.generate import GenerateConfig

FIXTURES = Path(__file__).parents[1] / "models" / "fixtures"
PROMPT = "Options: (A) 1, (B) 2\nAnswer:"  # 14 tokens


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """The block-causal fixtures with a word-level tokenizer (vocabulary 62 <= 64, mask 2, EOS 1)."""
    root = tmp_path_factory.mktemp("rules")
    tok = build_tokenizer((), max_number=40)
    paths = {}
    for name in ("llada2_moe", "fast_dllm_v2"):
        shutil.copytree(FIXTURES / name, root / name)
        tok.save_pretrained(root / name)
        paths[name] = root / name
    return paths


@pytest.mark.parametrize("name, flags, kw", [
    ("llada2_moe", ["--threshold", "0.3", "--edit-threshold", "0.1", "--max-post-steps", "4"],
     dict(threshold=0.3, edit_threshold=0.1, max_post_steps=4)),
    ("fast_dllm_v2", ["--threshold", "0.15", "--sub-block-size", "4"], dict(threshold=0.15, sub_block_size=4)),
])
def test_cli_rules_equal_block_diffusion(ckpts, capsys, name, flags, kw):
    assert main(["generate", "--model", str(ckpts[name]), "--prompt", PROMPT, "--sampler", "block",
                 "--gen-length", "20", "--cache", "prefix", "--keep-eos", *flags]) == 0
    lm = load(ckpts[name])
    ids = lm.tokenizer(PROMPT)["input_ids"]
    out = generate_block_diffusion(lm, torch.tensor([ids]), gen_length=20, **kw)
    want = decode(lm.tokenizer, out.sequences[:, : len(ids) + 20], len(ids), stop_at_eos=False)[0]
    assert capsys.readouterr().out == want + "\n" and want.strip()


def _kwargs(model: str, **flags) -> dict:
    return GenerateConfig(model=model, prompt="x", **flags).resolved(32).sampler_kwargs()


def test_model_cards_give_the_published_rules():
    llada21 = _kwargs("inclusionAI/LLaDA2.1-mini")
    assert (llada21["threshold"], llada21["edit_threshold"], llada21["max_post_steps"]) == (0.95, 0.9, 16)
    assert llada21["sub_block_size"] is None
    fast = _kwargs("Efficient-Large-Model/Fast_dLLM_v2_7B@main", sampler="block")
    assert (fast["threshold"], fast["sub_block_size"], fast["edit_threshold"]) == (0.9, 8, None)
    plain = _kwargs("inclusionAI/LLaDA2.0-mini")
    assert (plain["threshold"], plain["edit_threshold"], plain["sub_block_size"]) == (0.95, None, None)
    # a rule of one's own replaces the card's; 1 and 0 turn editing and sub-blocks off
    assert _kwargs("inclusionAI/LLaDA2.1-mini", steps_per_block=8)["edit_threshold"] is None
    assert _kwargs("inclusionAI/LLaDA2.1-mini", edit_threshold=1.0)["edit_threshold"] is None
    assert _kwargs("inclusionAI/LLaDA2.1-mini", edit_threshold=0.5, max_post_steps=3)["max_post_steps"] == 3
    off = _kwargs("Efficient-Large-Model/Fast_dLLM_v2_7B", sub_block_size=0, threshold=0.95)
    assert (off["sub_block_size"], off["threshold"]) == (None, 0.95)


@pytest.mark.parametrize("extra, match", [
    (["--sampler", "semi_ar", "--edit-threshold", "0.5"], "--edit-threshold is only supported by the block sampler"),
    (["--sampler", "threshold", "--sub-block-size", "4"], "--sub-block-size is only supported by the block"),
    (["--edit-threshold", "1.5"], r"must be in \[0, 1\]"),
    (["--max-post-steps", "3"], "needs token editing"),
    (["--edit-threshold", "0.5", "--sub-block-size", "4"], "pick one"),
    (["--sub-block-size", "3"], "must divide the block size"),
    (["--edit-threshold", "0.5", "--steps-per-block", "2"], "drop steps_per_block"),
])
def test_rule_flags_bad_input_is_one_line_exit_2(ckpts, capsys, extra, match):
    code = main(["generate", "--model", str(ckpts["llada2_moe"]), "--prompt", "Answer:", "--gen-length", "4", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("masktax: error: ") and re.search(match, err[0])
