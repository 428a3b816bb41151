"""`masktax.models.load`: dispatch, mask ids, tokenizers, errors, remote code, cards and the CLI."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch
from remote_toy import TOY_MODEL
from tiny import save_tiny_checkpoint, tiny_checkpoint, tiny_llada, tiny_llama_ar, tiny_tokenizer

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.models import MODEL_CARDS, auto_batch_size, load
from masktax.models.batching import bytes_per_token

load_module = importlib.import_module("masktax.models.load")  # the module, not the function
IDS = torch.tensor([[5, 17, 300, 2, 41, 999, 8], [7, 7, 2, 120, 64, 3, 11]])


def _edit_config(path: Path, **changes) -> None:
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(changes)
    (path / "config.json").write_text(json.dumps(cfg))


def test_ar_model_is_shifted_and_padding_safe(tmp_path):
    lm = load(tiny_checkpoint("ar", tmp_path / "ar"))
    assert (lm.kind, lm.shift, lm.mask_id, lm.is_causal) == ("ar", True, None, True)
    assert lm.max_length == 4096 and lm.eos_id == tiny_tokenizer().eos_token_id
    with torch.no_grad():
        raw = lm.model(input_ids=IDS).logits
        torch.testing.assert_close(lm.logits(IDS)[:, 1:], raw[:, :-1])
        torch.testing.assert_close(lm.logits_from_embeds(lm.embed(IDS)), lm.logits(IDS))
        short = IDS[0, :4]
        padded = torch.cat([torch.full((3,), lm.pad_id), short])[None]
        mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1]])
        got = lm.logits(padded, attention_mask=mask)[0, 4:]  # first real token: nothing predicts it
        torch.testing.assert_close(got, lm.logits(short[None])[0, 1:], atol=1e-5, rtol=1e-5)


def test_masked_lm_takes_mask_from_tokenizer(tmp_path):
    from transformers import BertConfig, BertForMaskedLM

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    bert = BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=4, intermediate_size=64, max_position_embeddings=512))
    lm = load(save_tiny_checkpoint(bert, tok, tmp_path / "bert"))
    assert (lm.kind, lm.shift, lm.mask_id) == ("mdlm", False, tok.mask_token_id)
    assert lm.max_length == 512 and lm.logits(IDS).shape == (2, 7, len(tok))


def test_checkpoint_without_tokenizer_uses_config_mask(tmp_path):
    path = tiny_checkpoint("llada", tmp_path / "m", with_tokenizer=False)
    _edit_config(path, mask_token_id=7)
    lm = load(path)
    assert lm.tokenizer is None and lm.mask_id == 7
    assert load(path, mask_token_id=9).mask_id == 9  # explicit wins
    with pytest.raises(MasktaxError, match="outside the vocabulary"):
        load(path, mask_token_id=10**6)


def test_dream_inherited_context_becomes_2048(tmp_path):
    path = tiny_checkpoint("dream", tmp_path / "d")
    _edit_config(path, max_position_embeddings=131072)
    assert load(path).max_length == 2048


def test_native_family_with_auto_map_needs_no_remote_code(tmp_path):
    path = tiny_checkpoint("llada", tmp_path / "m")
    _edit_config(path, auto_map={"AutoModel": "modeling_llada.LLaDAModelLM"})
    assert load(path).extra["family"] == "llada"  # modeling_llada.py does not even exist here


def test_remote_code_refused_without_flag_and_never_imported(tmp_path):
    path = tmp_path / "remote"
    path.mkdir()
    (path / "config.json").write_text(json.dumps(
        {"model_type": "masktax_test_remote", "architectures": ["EvilModel"],
         "auto_map": {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"}}))
    sentinel = tmp_path / "imported"
    for mod in ("configuration_evil", "modeling_evil"):
        (path / f"{mod}.py").write_text(f"open({str(sentinel)!r}, 'w').write('x')\n")
    with pytest.raises(MasktaxError, match="--trust-remote-code"):
        load(path)
    assert not sentinel.exists()
    assert not [m for m in list(sys.modules.values())
                if str(path) in str(getattr(m, "__file__", "") or "") or "evil" in getattr(m, "__name__", "")]


def test_unknown_model_and_bad_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MasktaxError, match="unknown model .*masktax models"):
        load("nobody-xyz/does-not-exist-masktax")
    with pytest.raises(MasktaxError, match="unknown model"):
        load(str(tmp_path / "missing-dir"))
    path = tiny_checkpoint("llada", tmp_path / "m")
    with pytest.raises(MasktaxError, match="unknown family"):
        load(path, family="gpt")
    with pytest.raises(MasktaxError, match="unknown dtype"):
        load(path, dtype="int3")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MasktaxError, match="config.json"):
        load(tmp_path / "empty")
    _edit_config(path, model_type="nonexistent_arch", architectures=["Nothing"])
    with pytest.raises(MasktaxError, match="unsupported model_type"):
        load(path)


def test_embedded_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(load_module, "EMBEDDED_DIR", tmp_path)
    with pytest.raises(MasktaxError, match="embedded weights 'embedded-mdlm' are not installed"):
        load("embedded-mdlm")
    save_tiny_checkpoint(tiny_llada(seed=3), tiny_tokenizer(), tmp_path / "embedded-mdlm")
    save_tiny_checkpoint(tiny_llama_ar(seed=3), tiny_tokenizer(), tmp_path / "embedded-ar")
    mdlm, ar = load("embedded-mdlm"), load("embedded-ar")
    assert (mdlm.name, mdlm.kind, mdlm.mask_id, mdlm.max_length) == (
        "embedded-mdlm", "mdlm", tiny_tokenizer().mask_token_id, 2048)
    assert (ar.kind, ar.shift, ar.mask_id) == ("ar", True, None)


def test_model_cards():
    assert MODEL_CARDS["GSAI-ML/LLaDA-8B-Base"].mask_id == 126336
    assert MODEL_CARDS["GSAI-ML/LLaDA-8B-Base"].context_length == 4096
    assert MODEL_CARDS["Dream-org/Dream-v0-Instruct-7B"].mask_id == 151666
    assert MODEL_CARDS["Dream-org/Dream-v0-Base-7B"].shift and not MODEL_CARDS["GSAI-ML/LLaDA-8B-Base"].shift
    assert MODEL_CARDS["google/diffusiongemma-26B-A4B-it"].family == "diffusion_gemma"
    assert {"embedded-mdlm", "embedded-ar", "embedded-mdlm-dream"} <= MODEL_CARDS.keys()
    for card in MODEL_CARDS.values():
        assert (card.mask_id is None) or card.family in ("llada", "dream", "mmada", "lladamoe", "llada2_moe", "sdar", "sdar_moe",
                                                             "fast_dllm_v2")
        assert card.shift == (card.family in ("dream", "ar", "fast_dllm_v2"))


def test_cli_models_lists_every_card(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MODEL_CARDS)
    assert len(out.strip().splitlines()) == len(MODEL_CARDS) + 1


def test_auto_batch_size_cpu(tmp_path):
    lm = load(tiny_checkpoint("llada", tmp_path / "m"))
    assert auto_batch_size(lm, 1300) == 4
    assert auto_batch_size(lm, 1300, max_batch=2) == 2
    assert bytes_per_token(lm, 2000) > bytes_per_token(lm, 100) > 0
    # one logits row per sequence (LoadedModel.logits_at) instead of one per token
    vocab = lm.embedding_weight().shape[0]
    saved = bytes_per_token(lm, 1000) - bytes_per_token(lm, 1000, full_logits=False)
    assert saved == 8 * vocab - -(-8 * vocab // 1000)
    from masktax.models.batching import backward_bytes_per_token

    assert backward_bytes_per_token(lm, 1000) > bytes_per_token(lm, 1000)  # every layer kept
    rows = lm.embedding_weight().shape[0]
    one_row = backward_bytes_per_token(lm, 1000) - backward_bytes_per_token(lm, 1000, full_logits=False)
    assert one_row == 2 * 8 * rows - -(-2 * 8 * rows // 1000)  # fp32 model: logits + their gradient, one row kept
    with pytest.raises(MasktaxError):
        auto_batch_size(lm, 0)


REMOTE_CONFIG = '''
from transformers import PretrainedConfig


class ToyDiffConfig(PretrainedConfig):
    model_type = "masktax_toy_diff"

    def __init__(self, vocab_size=64, hidden=8, mask_token_id=63, **kwargs):
        self.vocab_size, self.hidden, self.mask_token_id = vocab_size, hidden, mask_token_id
        super().__init__(**kwargs)
'''

REMOTE_MODEL = '''
import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from .configuration_toy import ToyDiffConfig

''' + TOY_MODEL.format(name="ToyDiffModel", config="ToyDiffConfig")


def test_remote_code_loads_when_trusted(tmp_path):
    from transformers import AutoConfig, AutoModel

    path = tmp_path / "toy"
    path.mkdir()
    (path / "configuration_toy.py").write_text(REMOTE_CONFIG)
    (path / "modeling_toy.py").write_text(REMOTE_MODEL)
    (path / "config.json").write_text(json.dumps(
        {"model_type": "masktax_toy_diff", "vocab_size": 64, "hidden": 8, "mask_token_id": 63,
         "auto_map": {"AutoConfig": "configuration_toy.ToyDiffConfig", "AutoModel": "modeling_toy.ToyDiffModel"}}))
    AutoModel.from_config(AutoConfig.from_pretrained(path, trust_remote_code=True), trust_remote_code=True
                          ).save_pretrained(path)
    with pytest.raises(MasktaxError, match="--trust-remote-code"):
        load(path)
    lm = load(path, trust_remote_code=True)
    assert (lm.extra["family"], lm.kind, lm.mask_id) == ("remote", "mdlm", 63)
    assert lm.honours_attention_mask is False and lm.tokenizer is None
    assert lm.logits(torch.tensor([[1, 2, 63]])).shape == (1, 3, 64)


def test_known_model_type_with_auto_map_loads_without_its_code(tmp_path):
    """A checkpoint transformers can build itself (model_type llama) is loaded with transformers' own
    class even when config.json points at bundled code: that code is never imported."""
    path = tiny_checkpoint("ar", tmp_path / "ar_with_code")
    sentinel = tmp_path / "imported"
    (path / "modeling_evil.py").write_text(f"open({str(sentinel)!r}, 'w').write('x')\n")
    _edit_config(path, auto_map={"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"})
    lm = load(path)
    assert (lm.kind, type(lm.model).__name__) == ("ar", "LlamaForCausalLM")
    assert not sentinel.exists()


def test_peek_kind_tells_the_kind_without_loading(tmp_path, monkeypatch):
    """From the card (no file read), a directory's config.json, else None (left to `load`)."""
    peek_kind = load_module.peek_kind
    monkeypatch.setattr(load_module, "build_model", lambda *a, **k: pytest.fail("peek_kind built a model"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert peek_kind("google/diffusiongemma-26B-A4B-it") == "uniform"
    assert peek_kind("embedded-ar@main") == "ar"
    assert peek_kind(tiny_checkpoint("dream", tmp_path / "dream")) == "mdlm"
    assert peek_kind(tmp_path / "nothing-here") is None
    assert peek_kind("no-such-org/no-such-model") is None
