"""The synthetic instruction set: deterministic (`masktax finetune make-data`), in the embedded vocabulary,
never in the probes' letter-choice format."""

from __future__ import annotations

import json
from pathlib import Path

from masktax.cli.main import main
from masktax.embedded.tokenizer import build_tokenizer
from masktax.tasks.words import all_words
from masktax.training.finetune.synthetic_data import FAMILIES, make_rows


def test_make_data_is_deterministic(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert main(["finetune", "make-data", str(tmp_path / f"{name}.jsonl"), "--n", "50", "--seed", str(seed)]) == 0
    a, b, c = ((tmp_path / f"{n}.jsonl").read_bytes() for n in "abc")
    assert a == b and a != c
    rows = [json.loads(line) for line in a.decode().splitlines()]
    assert len(rows) == 50 and set(rows[0]) == {"system_prompt", "question", "response"}
    assert make_rows(10, seed=3) == make_rows(50, seed=3)[:10]  # prefix-stable


def test_synthetic_rows_fit_the_embedded_vocabulary_and_avoid_the_probe_format() -> None:
    tok = build_tokenizer(all_words())
    rows = make_rows(300, seed=0)
    heads = {" ".join(r["question"].split(":")[0].split()[:2]) for r in rows}
    assert {"repeat", "repeat from", "assemble up", "quantity of", "collect with"} <= heads
    assert any(h.startswith("retrieve") for h in heads)
    assert len(FAMILIES) == 6
    for r in rows:
        assert "Options" not in r["question"] and "Answer" not in r["question"]
        ids = tok(r["question"] + " " + r["response"])["input_ids"]
        assert tok.unk_token_id not in ids, r
    sort = next(r for r in rows if r["question"].startswith("assemble up"))
    nums = [int(x) for x in sort["response"].split(" , ")]
    assert nums == sorted(nums)
