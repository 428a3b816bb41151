"""`--format auto` on checkpoints without a model card: chat only when the tokenizer's chat template
ends turns with one of the model's end-of-sequence tokens (never from the directory name), recorded
with its reason in env.json; and `masktax generate` on a causal LM given `--mask-token-id` decodes
left to right (the MDLM samplers never run on it)."""

from __future__ import annotations

import json

import pytest
from tiny import save_tiny_checkpoint, tiny_llama_ar, tiny_tokenizer

from masktax.cli.main import main
from masktax.models import load
from masktax.samplers.generate import GenerateConfig, run

INSTRUCT_TEMPLATE = ("{% for m in messages %}{{ '<|' + m['role'] + '|>' }}\n{{ m['content'] }}{{ eos_token }}\n"
                     "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}\n{% endif %}")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmt")
    tok = tiny_tokenizer()  # its template ends turns with <|end|>, not with its EOS <|endoftext|>
    base = save_tiny_checkpoint(tiny_llama_ar(0), tok, root / "my-chat-instruct-model")  # the name says nothing
    tok = tiny_tokenizer()
    tok.chat_template = INSTRUCT_TEMPLATE
    chat = save_tiny_checkpoint(tiny_llama_ar(0), tok, root / "plain")
    tok = tiny_tokenizer()
    tok.chat_template = None
    none = save_tiny_checkpoint(tiny_llama_ar(0), tok, root / "no-template")
    return {"base": str(base), "chat": str(chat), "none": str(none)}


def test_auto_reads_the_template_not_the_name(ckpts, tmp_path):
    out = tmp_path / "run"
    args = ["probe", "accuracy", "--out", str(out), "--n-items", "1", "--datasets", "country__smallest", "--no-progress"]
    for m in ckpts.values():
        args += ["--model", m]
    assert main(args) == 0
    models = json.loads((out / "env.json").read_text())["models"]
    assert models[ckpts["chat"]]["format"] == "chat"
    assert "ends turns with its end-of-sequence token <|endoftext|>" in models[ckpts["chat"]]["format_reason"]
    assert models[ckpts["base"]]["format"] == "base"
    assert "does not end turns" in models[ckpts["base"]]["format_reason"]
    assert (models[ckpts["none"]]["format"], models[ckpts["none"]]["format_reason"]) == (
        "base", "the tokenizer has no chat template")
    assert load(ckpts["chat"]).extra["chat"] and not load(ckpts["base"]).extra["chat"]


def test_explicit_format_records_no_reason(ckpts, tmp_path):
    out = tmp_path / "run"
    assert main(["probe", "accuracy", "--model", ckpts["chat"], "--format", "base", "--out", str(out),
                 "--n-items", "1", "--datasets", "country__smallest", "--no-progress"]) == 0
    entry = json.loads((out / "env.json").read_text())["models"][ckpts["chat"]]
    assert entry["format"] == "base" and "format_reason" not in entry


def test_generate_on_a_causal_lm_with_a_mask_id_is_autoregressive(ckpts):
    cfg = dict(model=ckpts["base"], prompt="Options: (A) cat", gen_length=4, device="cpu")
    plain = run(GenerateConfig(**cfg))
    with_mask = run(GenerateConfig(**cfg, mask_token_id=tiny_tokenizer().mask_token_id))
    assert plain.sampler == with_mask.sampler == "ar"
    assert with_mask.text == plain.text and with_mask.forward_passes == plain.forward_passes == 4
