"""Instruction data: OpenOrca rows, the length rule, prompt formats, SFT batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny import tiny_tokenizer

from masktax.errors import MasktaxError
from masktax.training.finetune.instruct_data import (
    Pair,
    encode_pairs,
    instruction_batch,
    prompt_ids,
    read_rows,
    resolve_prompt_format,
)


def test_length_rule_keeps_truncates_and_drops() -> None:
    tok = tiny_tokenizer()
    eos = tok.eos_token_id
    rows = [
        {"system_prompt": "", "question": "France Japan", "response": "Alice Bob"},  # 3 + 3 tokens: kept
        {"system_prompt": "", "question": "France", "response": " ".join(["cat"] * 30)},  # truncated
        {"system_prompt": "", "question": " ".join(["dog"] * 30), "response": "red"},  # prompt too long
        {"system_prompt": "", "question": "France", "response": ""},  # empty response
    ]
    pairs, stats = encode_pairs(rows, tok, fmt="plain", eos_id=eos, max_context=20, min_answer_tokens=4)
    assert stats == {"rows": 4, "kept": 1, "truncated": 1, "dropped_long_prompt": 1, "dropped_empty": 1}
    assert pairs[0].answer[-1] == eos  # a complete answer ends with EOS
    assert len(pairs[1].prompt) + len(pairs[1].answer) == 20 and pairs[1].answer[-1] != eos
    with pytest.raises(MasktaxError, match="no usable"):
        encode_pairs(rows[2:], tok, fmt="plain", eos_id=eos, max_context=20, min_answer_tokens=4)


def test_prompt_formats() -> None:
    tok = tiny_tokenizer()
    row = {"system_prompt": "apple", "question": "France", "response": "Peru"}
    assert resolve_prompt_format("auto", tok, "base") == "plain"
    assert resolve_prompt_format("auto", tok, "instruct") == "chat"
    plain = tok.convert_ids_to_tokens(prompt_ids(tok, row, "plain"))
    assert plain == ["apple", "\n\n", "France", "\n\n"]
    chat = tok.convert_ids_to_tokens(prompt_ids(tok, row, "chat"))
    assert chat[0] == "<|system|>" and chat[-2:] == ["<|assistant|>", "\n"] and "France" in chat


def test_read_rows_from_jsonl_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "d.jsonl"
    good.write_text('{"system_prompt": null, "question": "q1", "response": "r1"}\n\n{"question": "q2", "response": "r2"}\n')
    rows = read_rows(str(good))
    assert rows == [{"system_prompt": "", "question": "q1", "response": "r1"},
                    {"system_prompt": "", "question": "q2", "response": "r2"}]
    assert len(read_rows(str(good), limit=1)) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n')
    with pytest.raises(MasktaxError, match="OpenOrca columns"):
        read_rows(str(bad))
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    with pytest.raises(MasktaxError, match="line 1"):
        read_rows(str(broken))
    with pytest.raises(MasktaxError, match="does not exist"):
        read_rows(str(tmp_path / "missing.jsonl"))
    as_list = tmp_path / "d.json"  # a .json file may hold one JSON list (or JSON lines)
    as_list.write_text(json.dumps([{"question": "q1", "response": "r1"}, {"question": "q2", "response": "r2"}], indent=1))
    assert [r["question"] for r in read_rows(str(as_list))] == ["q1", "q2"]
    assert read_rows(str(as_list), limit=1) == [{"system_prompt": "", "question": "q1", "response": "r1"}]
    lines = tmp_path / "l.json"
    lines.write_text(good.read_text())
    assert read_rows(str(lines)) == rows


def test_instruction_batch_is_seeded_and_masks_responses_only() -> None:
    pairs = [Pair((1, 2, 3), (4, 5)), Pair((6,), (7, 8)), Pair((9, 10), (11, 12))]
    a_ids, a_mask = instruction_batch(pairs, seed=0, step=5, batch_size=4, eos_id=0)  # [4, 5]
    b_ids, b_mask = instruction_batch(pairs, seed=0, step=5, batch_size=4, eos_id=0)
    assert torch.equal(a_ids, b_ids) and torch.equal(a_mask, b_mask)
    assert not torch.equal(a_ids, instruction_batch(pairs, seed=0, step=6, batch_size=4, eos_id=0)[0])
    for r in range(4):
        row = a_ids[r].tolist()
        pair = next(p for p in pairs if tuple(row[: len(p.prompt) + len(p.answer)]) == p.prompt + p.answer)
        assert not a_mask[r, : len(pair.prompt)].any() and a_mask[r, len(pair.prompt) :].all()
        assert all(t == 0 for t in row[len(pair.prompt) + len(pair.answer) :])  # EOS padding (part of the response)
