"""`masktax generate --sampler block` (and `auto`) on the block-causal fixtures: it decodes exactly as
`generate_block_diffusion`; a bidirectional model asked for it gets a one-line error."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from tiny import tiny_checkpoint

from masktax.cli.main import main
from masktax.embedded.tokenizer import build_tokenizer
from masktax.models import load
from masktax.samplers import SoftMaskConfig, decode
from masktax.samplers.block_diffusion import generate_block_diffusion
from masktax.samplers.generate import GenerateConfig, run

FIXTURES = Path(__file__).parents[1] / "models" / "fixtures"
PROMPT = "Options: (A) 1, (B) 2\nAnswer:"  # 14 tokens: not a whole number of blocks


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """The block-causal fixtures (vocabulary 64, mask 2, EOS/pad 1) with a word-level tokenizer that fits."""
    root = tmp_path_factory.mktemp("block")
    tok = build_tokenizer((), max_number=40)  # 62 tokens; [UNK] 0, EOS 1, mask 2
    assert len(tok) <= 64 and tok.mask_token_id == 2
    paths = {}
    for name in ("sdar", "llada2_moe", "fast_dllm_v2"):
        shutil.copytree(FIXTURES / name, root / name)
        tok.save_pretrained(root / name)
        paths[name] = root / name
    paths["llada"] = tiny_checkpoint("llada", root / "llada", seed=5)
    return paths


def direct_text(path, *, gen_length, temperature=0.0, **kw) -> str:
    lm = load(path)
    ids = lm.tokenizer(PROMPT)["input_ids"]
    gen = torch.Generator().manual_seed(0)
    out = generate_block_diffusion(lm, torch.tensor([ids]), gen_length=gen_length, temperature=temperature,
                                   generator=gen, **kw)
    assert out.sequences.shape[1] > len(ids) + gen_length  # rounded up to whole blocks; generate cuts
    return decode(lm.tokenizer, out.sequences[:, : len(ids) + gen_length], len(ids), stop_at_eos=False)[0]


@pytest.mark.parametrize("name", ["sdar", "llada2_moe", "fast_dllm_v2"])
@pytest.mark.parametrize("soft", [False, True])
def test_cli_block_equals_block_diffusion(ckpts, capsys, name, soft):
    args = ["generate", "--model", str(ckpts[name]), "--prompt", PROMPT, "--sampler", "block", "--gen-length", "9",
            "--threshold", "0.3", "--steps-per-block", "2", "--cache", "prefix", "--keep-eos"]
    assert main(args + (["--soft-mask", "--omega-s", "0.5"] if soft else [])) == 0
    out, err = capsys.readouterr()
    sm = SoftMaskConfig(omega_s=0.5) if soft else None
    want = direct_text(ckpts[name], gen_length=9, steps_per_block=2, threshold=0.3, soft_mask=sm, use_cache=True)
    assert out == want + "\n" and want.strip()
    assert "sampler block" in err and "cache prefix" in err


def test_auto_picks_block_and_sampling_matches(ckpts):
    cfg = GenerateConfig(model=str(ckpts["sdar"]), prompt=PROMPT, gen_length=7, temperature=1.0, seed=0,
                         stop_at_eos=False)
    assert cfg.sampler == "auto"
    result = run(cfg)
    assert result.sampler == "block" and result.cache == "none"
    assert result.text == direct_text(ckpts["sdar"], gen_length=7, temperature=1.0, use_cache=False)
    # 14 prompt + 7 masks: blocks 3 to 5 of size 4, at most 4 steps (the block size) each, no cache
    assert 3 <= result.forward_passes <= 12


def test_auto_keeps_semi_ar_for_a_bidirectional_model(ckpts):
    result = run(GenerateConfig(model=str(ckpts["llada"]), prompt="Answer:", gen_length=4, steps=4, block_length=4))
    assert result.sampler == "semi_ar"


@pytest.mark.parametrize("model,extra,match", [
    ("llada", [], r"needs a block-causal model .* attends bidirectionally"),
    ("sdar", ["--steps", "4"], "--steps-per-block, not --steps"),
    ("sdar", ["--block-length", "8"], "attention blocks of 4"),
    ("sdar", ["--cache", "dual"], "'none' or 'prefix'"),
    ("sdar", ["--steps-per-block", "9"], "steps_per_block <= block size"),
])
def test_block_sampler_bad_input_is_one_line_exit_2(ckpts, capsys, model, extra, match):
    code = main(["generate", "--model", str(ckpts[model]), "--prompt", "Answer:", "--sampler", "block",
                 "--gen-length", "4", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("masktax: error: ") and re.search(match, err[0])


def test_steps_per_block_needs_the_block_sampler(ckpts, capsys):
    code = main(["generate", "--model", str(ckpts["llada"]), "--prompt", "x", "--sampler", "semi_ar",
                 "--steps-per-block", "2"])
    assert code == 2 and "only supported by the block sampler" in capsys.readouterr().err
