"""`masktax generate` end to end on tiny checkpoints, and its errors (one line, exit 2)."""

from __future__ import annotations

import pytest
from tiny import tiny_checkpoint

from masktax.cli.main import main
from masktax.samplers import BLOCK_SAMPLER, SAMPLERS, SoftMaskConfig


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    return {fam: tiny_checkpoint(fam, root / fam, seed=5) for fam in ("llada", "dream")}


@pytest.mark.parametrize("sampler", [s for s in SAMPLERS if s != BLOCK_SAMPLER])  # block: test_generate_block
def test_generate_prints_text_and_speed(ckpts, capsys, sampler):
    code = main(["generate", "--model", str(ckpts["llada"]), "--prompt", "Options: (A) cat", "--sampler", sampler,
                 "--gen-length", "8", "--steps", "4", "--block-length", "4"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.strip()  # the decoded text
    assert "tokens/s" in err and "forward passes" in err and f"sampler {sampler}" in err


def test_generate_is_reproducible_and_chat_format_works(ckpts, tmp_path, capsys):
    prompt_file = tmp_path / "p.txt"
    prompt_file.write_text("Options: (A) red, (B) run")
    args = ["generate", "--model", str(ckpts["dream"]), "--prompt-file", str(prompt_file), "--format", "chat",
            "--sampler", "dream", "--gen-length", "8", "--temperature", "1.0", "--seed", "3", "--keep-eos"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first


def test_generate_with_soft_mask_from_checkpoint(ckpts, tmp_path, capsys):
    SoftMaskConfig(omega_s=0.4).save(tmp_path)
    code = main(["generate", "--model", str(ckpts["llada"]), "--prompt", "Answer:[", "--gen-length", "8",
                 "--soft-mask-from", str(tmp_path), "--omega-a", "3.0"])
    assert code == 0 and capsys.readouterr().out.strip()


@pytest.mark.parametrize("extra,match", [
    (["--prompt-file", "/no/such/file"], "does not exist"),
    ([], "exactly one of --prompt and --prompt-file"),
    (["--prompt", "x", "--gen-length", "10", "--block-length", "4"], "multiple of block_length"),
    (["--prompt", "x", "--sampler", "beam"], "unknown sampler"),
    (["--prompt", "x", "--soft-mask"], "needs trained weights"),
    (["--prompt", "x", "--omega-s", "0.3"], "need --soft-mask"),
    (["--prompt", "x", "--sampler", "threshold", "--threshold", "0"], r"\(0, 1\]"),
    (["--prompt", "x", "--format", "poem"], "unknown format"),
    (["--prompt", "x", "--gen-length", "100000"], "exceeds the model's context"),
])
def test_generate_bad_input_is_one_line_exit_2(ckpts, capsys, extra, match):
    import re

    code = main(["generate", "--model", str(ckpts["llada"]), *extra])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert err.startswith("masktax: error: ") and re.search(match, err)
