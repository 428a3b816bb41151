"""Golden prompts: the exact ids and decoded text for the tiny tokenizer, per format, query position and suffix.

The files under tests/golden/prompts/ pin what a model sees: `<fmt>_<position>_<suffix>.txt` is the
decoded prompt (mask shown as `<|mask|>`; the word-level tokenizer joins tokens with spaces and maps
words outside its tiny vocabulary to [UNK]), `text_<fmt>_<position>.txt` the rendered text before
tokenization (answer letter in place), and `ids.json` the token ids and answer position of every case.
A failure means prompts changed. If the change is intended, rewrite the files and review the diff:

    MASKTAX_UPDATE_GOLDEN=1 python -m pytest tests/prompts/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tiny import tiny_tokenizer

from masktax.prompts.encode import encode_item
from masktax.prompts.render import arrange, render_text
from masktax.tasks.suite import get_dataset

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "prompts"
UPDATE = os.environ.get("MASKTAX_UPDATE_GOLDEN") == "1"
FORMATS = ("base", "chat")
POSITIONS = ("right", "middle")
SUFFIXES = {"one_mask": 0, "masks": 3, "filler": 3}  # suffix -> n_extra


def case_items():
    """(case name, decoded text, ids record) for every golden case; small context (3 + 3 examples)."""
    tok = tiny_tokenizer()
    dataset = get_dataset("country__largest", seed=0, n_test=1)
    ctx = arrange(dataset, "mixed", seed=0, n_relevant=3, n_distractor=3)
    query = dataset.tests[0]
    texts, cases = {}, {}
    for fmt in FORMATS:
        for position in POSITIONS:
            texts[f"text_{fmt}_{position}"] = render_text(ctx, query, fmt=fmt, query_position=position, tokenizer=tok)
            for suffix, n_extra in SUFFIXES.items():
                item = encode_item(tok, ctx, query, fmt=fmt, query_position=position, suffix=suffix, n_extra=n_extra,
                                   mask_id=tok.mask_token_id)
                name = f"{fmt}_{position}_{suffix}"
                texts[name] = tok.decode(item.ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
                cases[name] = {"answer_id": item.answer_id, "answer_pos": item.answer_pos, "ids": item.ids}
    return texts, cases


def ids_json(cases: dict) -> str:
    lines = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True, separators=(',', ':'))}" for k, v in sorted(cases.items())]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def test_golden_prompts():
    texts, cases = case_items()
    files = {f"{name}.txt": text for name, text in texts.items()} | {"ids.json": ids_json(cases)}
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (GOLDEN / name).write_text(text, encoding="utf-8", newline="\n")
    assert len(files) == len(FORMATS) * len(POSITIONS) * (len(SUFFIXES) + 1) + 1
    stale = sorted(p.name for p in GOLDEN.glob("*") if p.name not in files)
    assert not stale, f"golden files no test writes: {stale}"
    for name, text in files.items():
        path = GOLDEN / name
        if not path.is_file():
            pytest.fail(f"missing {path}; run MASKTAX_UPDATE_GOLDEN=1 python -m pytest tests/prompts/{Path(__file__).name}")
        assert path.read_text(encoding="utf-8") == text, f"{name} changed (MASKTAX_UPDATE_GOLDEN=1 rewrites it)"


def test_golden_cases_are_what_they_claim():
    """The stored goldens themselves: masks end the right/masks prompt, middle prompts continue after `].`."""
    cases = json.loads((GOLDEN / "ids.json").read_text())
    mask = tiny_tokenizer().mask_token_id
    right = cases["base_right_masks"]
    assert right["ids"][right["answer_pos"]:] == [mask] * 4
    assert cases["chat_right_one_mask"]["ids"][-3:] == [mask, *tiny_tokenizer().encode("].", add_special_tokens=False)]
    middle = (GOLDEN / "base_middle_filler.txt").read_text()
    assert "<|mask|> . . . ] ." in middle and not middle.rstrip().endswith("<|mask|>")
    assert (GOLDEN / "text_base_right.txt").read_text().count("Options:") == 7
