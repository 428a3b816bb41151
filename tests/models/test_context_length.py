"""The context limit comes from whichever field a config declares it in (GPT-2's n_positions, n_ctx,
max_position_embeddings, LLaDA's max_sequence_length), so an over-long prompt is a one-line error."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import save_tiny_checkpoint, tiny_tokenizer

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.models import load
from masktax.models.load import config_max_length


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                           pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id))
    return save_tiny_checkpoint(model.eval(), tok, tmp_path_factory.mktemp("gpt2"))


def test_gpt2_limit_is_n_positions_and_a_long_prompt_is_one_line(gpt2, tmp_path, capsys):
    assert load(gpt2).max_length == 64
    args = ["probe", "accuracy", "--model", str(gpt2), "--out", str(tmp_path / "run"), "--n-items", "1",
            "--datasets", "country__smallest", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exceeds the 64-token context" in err and "Traceback" not in err
    assert main(["generate", "--model", str(gpt2), "--prompt", "word " * 80, "--gen-length", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "context of 64" in err


@pytest.mark.parametrize(("config", "want"), [
    ({"n_positions": 1024}, 1024),
    ({"n_ctx": 2048}, 2048),
    ({"max_seq_len": 512}, 512),
    ({"max_sequence_length": 4096, "max_position_embeddings": 8192}, 4096),
    ({"text_config": {"max_position_embeddings": 300}}, 300),
    ({}, None),
])
def test_context_fields(config, want):
    assert config_max_length(config, "ar") == want


def test_a_context_field_of_the_wrong_type_is_one_line(gpt2, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in gpt2.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "n_positions": "long"}))
    with pytest.raises(MasktaxError, match="field 'n_positions' should be a non-negative integer"):
        load(bad)
