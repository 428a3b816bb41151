"""`masktax suite export` and `masktax suite show` end to end, and every bad input (exit 2, one line)."""

from __future__ import annotations

import importlib
import json

import pytest
from tiny import tiny_tokenizer

from masktax.cli.main import main
from masktax.models.tokenizer_only import embedded_tokenizer
from masktax.prompts.encode import encode_item
from masktax.prompts.render import arrange
from masktax.prompts.show import ShowConfig, show_prompt
from masktax.tasks.export import MANIFEST, verify_export
from masktax.tasks.suite import DATASET_NAMES, get_dataset


@pytest.fixture(scope="module")
def tok_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    tiny_tokenizer().save_pretrained(root / "tiny")
    nomask = tiny_tokenizer()
    nomask.mask_token = None
    nomask.save_pretrained(root / "nomask")
    bare = tiny_tokenizer()
    bare.chat_template = None
    bare.save_pretrained(root / "bare")
    (root / "empty").mkdir()
    return {name: str(root / name) for name in ("tiny", "nomask", "bare", "empty")}


def run(capsys, *args):
    code = main(["suite", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_writes_the_tree(tmp_path, capsys):
    code, out, _ = run(capsys, "export", str(tmp_path / "s"), "--n-test", "30", "--seed", "4")
    assert code == 0 and "16 datasets x 30 tests" in out
    names = {p.name for p in (tmp_path / "s").iterdir()}
    assert len(names) == 33 and MANIFEST in names and "verb__largest.context.jsonl" in names
    manifest = verify_export(tmp_path / "s")
    assert manifest["seed"] == 4 and manifest["n_test"] == 30 and manifest["datasets"] == list(DATASET_NAMES)
    first = json.loads((tmp_path / "s" / "country__smallest.jsonl").read_text().splitlines()[0])
    assert first["dataset"] == "country__smallest" and first["index"] == 0


def test_show_masks_ends_with_the_mask_token(capsys):
    code, out, err = run(capsys, "show", "--suffix", "masks", "--n-extra", "2", "--n-distractor", "3")
    assert code == 0
    assert out.endswith("[ <|mask|> <|mask|> <|mask|>")
    (line,) = err.strip().splitlines()
    cfg = ShowConfig(suffix="masks", n_extra=2, n_distractor=3)
    shown = show_prompt(cfg, embedded_tokenizer(), embedded_tokenizer().mask_token_id)
    assert out == shown.text
    assert f"{len(shown.ids)} tokens, answer position {shown.answer_pos}, answer {shown.answer}" in line
    assert shown.answer == get_dataset("country__smallest", n_test=1).tests[0].answer


def test_show_with_a_tokenizer_directory_matches_encode_item(capsys, tok_dirs):
    args = ["show", "--model", tok_dirs["tiny"], "--dataset", "verb__largest", "--index", "7", "--format", "chat",
            "--query-position", "middle", "--arrangement", "block", "--block-position", "5", "--suffix", "filler",
            "--n-extra", "2"]
    code, out, _ = run(capsys, *args)
    assert code == 0
    tok = tiny_tokenizer()
    dataset = get_dataset("verb__largest", n_test=8)
    ctx = arrange(dataset, "block", seed=0, block_position=5)
    item = encode_item(tok, ctx, dataset.tests[7], fmt="chat", query_position="middle", suffix="filler", n_extra=2,
                       mask_id=tok.mask_token_id)
    assert out == tok.decode(item.ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    code, ids_out, _ = run(capsys, *args, "--ids")
    assert code == 0 and [int(i) for i in ids_out.split()] == item.ids


def test_show_without_a_mask_token_shows_the_pad_token(capsys, tok_dirs):
    code, out, err = run(capsys, "show", "--model", tok_dirs["nomask"], "--n-distractor", "0")
    assert code == 0 and out.endswith("Answer : [ <|endoftext|> ] .") and "<|mask|>" not in out
    code, out, _ = run(capsys, "show", "--model", tok_dirs["nomask"], "--n-distractor", "0", "--mask-token-id", "2")
    assert code == 0 and out.endswith("[ <|mask|> ] .")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "--dataset", "nope"], "unknown dataset 'nope'; choose from country__smallest"),
        (["show", "--index", "1000"], "--index must be in 0..999, got 1000"),
        (["show", "--index", "-1"], "--index must be in 0..999, got -1"),
        (["show", "--format", "markdown"], "unknown --format 'markdown'; choose from base, chat"),
        (["show", "--suffix", "canvas"], "unknown --suffix 'canvas'; choose from one_mask, masks, filler"),
        (["show", "--arrangement", "spiral"], "unknown --arrangement 'spiral'"),
        (["show", "--query-position", "top"], "unknown --query-position 'top'"),
        (["show", "--arrangement", "block", "--block-position", "41"], "--block-position must be in 0..40, got 41"),
        (["show", "--block-position", "3"], "--block-position needs --arrangement block"),
        (["show", "--suffix", "masks", "--n-extra", "-1"], "--n-extra must be >= 0, got -1"),
        (["show", "--n-extra", "2"], "--n-extra needs --suffix masks or filler"),
        (["show", "--n-distractor", "41"], "--n-distractor must be in 0..40, got 41"),
        (["show", "--mask-token-id", "99999"], "mask token id 99999 is outside the tokenizer's vocabulary"),
        (["show", "--model", "no-such-org/no-such-model"], "unknown model 'no-such-org/no-such-model'"),
        (["export", "OUT", "--n-test", "0"], "n_test must be at least 1, got 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("masktax: error: ") and message in err
    assert "Traceback" not in err


def test_tokenizer_errors_are_one_line(capsys, tok_dirs):
    code, _, err = run(capsys, "show", "--model", tok_dirs["empty"])
    assert code == 2 and err.startswith("masktax: error: ") and "ships no tokenizer files" in err
    code, out, err = run(capsys, "show", "--model", tok_dirs["bare"], "--format", "chat")
    assert code == 2 and out == "" and err.count("\n") == 1 and "has no chat template; use the base format" in err


def test_embedded_card_name_resolves_to_the_embedded_directory(capsys, tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    monkeypatch.setattr(importlib.import_module("masktax.models.load"), "EMBEDDED_DIR", weights)
    code, _, err = run(capsys, "show", "--model", "embedded-mdlm")
    assert code == 2 and "the embedded weights 'embedded-mdlm' are not installed" in err
    (weights / "embedded-mdlm").mkdir(parents=True)
    (weights / "embedded-mdlm" / "config.json").write_text(json.dumps({"model_type": "llada"}))
    tiny_tokenizer().save_pretrained(weights / "embedded-mdlm")
    code, out, err = run(capsys, "show", "--model", "EMBEDDED-MDLM", "--n-distractor", "0")
    assert code == 0 and out.endswith("[ <|mask|> ] .") and "tokenizer EMBEDDED-MDLM" in err
