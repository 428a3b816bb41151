"""The few-shot training corpus: determinism, the suite's exact format, correct answers, lengths."""

from __future__ import annotations

import random
import re

import pytest

from masktax.embedded.tokenizer import build_tokenizer
from masktax.errors import MasktaxError
from masktax.training.pretrain.batches import gate_batch
from masktax.training.pretrain.corpus import (
    LETTERS,
    RULES,
    Encoder,
    EpisodeSpec,
    Item,
    all_words,
    render_episode,
    render_item,
    sample_episode,
)
from masktax.training.pretrain.curriculum import Stage

WORDS = {
    "animals": ("cat", "dog", "horse", "sheep", "goat", "mouse"),
    "fruits": ("apple", "pear", "plum", "grape", "lemon", "mango"),
    "colours": ("red", "blue", "green", "yellow", "purple", "orange"),
    "verbs": ("run", "jump", "knit", "swim", "persuade", "write"),
    "countries": ("France", "Japan", "Peru", "Chile", "Kenya", "Spain"),
    "sports": ("tennis", "golf", "rugby", "hockey", "boxing", "rowing"),
}
CAT_OF = {w: c for c, ws in WORDS.items() for w in ws}
ITEM_RE = re.compile(r"Options: \(A\) ([^,\n]+), \(B\) ([^,\n]+), \(C\) ([^,\n]+)\nAnswer:\[([ABC])\]\.")
FULL = EpisodeSpec(n_examples=(10, 50), distractor_share=(0.1, 0.8), max_tokens=1300)


def test_render_item_is_the_suite_format():
    assert render_item(Item(("knit", "quirky", "persuade"), 1, "query")) == (
        "Options: (A) knit, (B) quirky, (C) persuade\nAnswer:[B]."
    )
    assert render_item(Item(("knit", "quirky", "persuade"), 1, "relevant", repeat=True)).endswith("Answer:[B quirky].")


def test_episodes_are_deterministic_and_seed_dependent():
    a = render_episode(sample_episode(random.Random("s/1"), WORDS, FULL))
    b = render_episode(sample_episode(random.Random("s/1"), WORDS, FULL))
    c = render_episode(sample_episode(random.Random("s/2"), WORDS, FULL))
    assert a == b and a != c


def test_episode_text_is_items_joined_by_blank_lines():
    ep = sample_episode(random.Random(3), WORDS, FULL)
    parts = render_episode(ep).split("\n\n")
    assert len(parts) == len(ep.items)
    for text, item in zip(parts, ep.items, strict=True):
        m = ITEM_RE.fullmatch(text)
        assert m is not None, text
        assert m.group(4) == LETTERS[item.answer]
    assert ep.items[-1].role == "query"


def _check(rule: str, item: Item) -> None:
    opts, ans = item.options, item.answer
    if rule.startswith("category:"):
        target = rule.split(":", 1)[1]
        assert CAT_OF[opts[ans]] == target
        assert all(CAT_OF[o] != target for k, o in enumerate(opts) if k != ans)
    elif rule in ("smallest", "largest", "median"):
        nums = [int(o) for o in opts]
        assert len(set(nums)) == 3 and all(1 <= n <= 1000 for n in nums)
        assert nums[ans] == {"smallest": min(nums), "largest": max(nums), "median": sorted(nums)[1]}[rule]
    elif rule == "odd_one_out":
        cats = [CAT_OF[o] for o in opts]
        others = [c for k, c in enumerate(cats) if k != ans]
        assert others[0] == others[1] != cats[ans]
    else:
        assert rule.startswith("fixed_letter:") and LETTERS[ans] == rule[-1]
    assert len(set(opts)) == 3


@pytest.mark.parametrize("family", RULES)
def test_answers_are_correct_for_every_rule(family):
    spec = EpisodeSpec(n_examples=(5, 12), distractor_share=(0.3, 0.6), rules=(family,), n_categories=3)
    for seed in range(20):
        ep = sample_episode(random.Random(seed), WORDS, spec)
        assert ep.rule.split(":")[0] == family
        for item in ep.items:
            _check(ep.rule if item.role != "distractor" else ep.distractor_rule, item)
        # the distractor rule is of the other kind (numbers vs words)
        numeric = {"smallest", "largest", "median"}
        assert (family in numeric) != (ep.distractor_rule in numeric)


def test_n_categories_limits_foils():
    spec = EpisodeSpec(n_examples=(20, 20), distractor_share=(0.0, 0.0), rules=("category",), n_categories=3)
    for seed in range(10):
        ep = sample_episode(random.Random(seed), WORDS, spec)
        assert len({CAT_OF[o] for it in ep.items for o in it.options}) <= 3


def test_n_categories_range_is_drawn_per_episode():
    spec = EpisodeSpec(n_examples=(30, 30), distractor_share=(0.0, 0.0), rules=("category",), n_categories=(2, 4))
    counts = set()
    for seed in range(40):
        ep = sample_episode(random.Random(seed), WORDS, spec)
        counts.add(len({CAT_OF[o] for it in ep.items for o in it.options}))
    assert counts == {2, 3, 4}  # every size in the range occurs, none outside it
    # a stage read from JSON gives the range as a list
    stage = Stage.from_dict({"name": "S", "spec": {"n_categories": [2, 4]}})
    assert stage.spec.n_categories == (2, 4)


def test_encoder_matches_tokenizer_and_marks_answers():
    tok = build_tokenizer(all_words(WORDS))
    enc = Encoder(tok)
    for seed in range(5):
        ep = sample_episode(random.Random(seed), WORDS, EpisodeSpec(n_examples=(3, 6), repeat_prob=0.5))
        e = enc.episode(ep, 1300)
        assert e.ids == tok(render_episode(ep), add_special_tokens=False)["input_ids"]
        assert [e.ids[p] for p in e.answer_positions] == [enc.letter_ids[it.answer] for it in ep.items]
        assert e.ids[e.query_pos - 1] == tok.convert_tokens_to_ids("[")
        assert e.query_answer == ep.items[-1].answer
        assert tok.unk_token_id not in e.ids


def test_examples_after_the_query_keep_the_query_addressable():
    tok = build_tokenizer(all_words(WORDS))
    enc = Encoder(tok)
    spec = EpisodeSpec(n_examples=(4, 8), max_after=5)
    n_after = []
    for seed in range(30):
        ep = sample_episode(random.Random(seed), WORDS, spec)
        roles = [it.role for it in ep.items]
        q = roles.index("query")
        assert roles[q + 1 :] == ["after"] * (len(roles) - q - 1) and "after" not in roles[:q]
        n_after.append(len(roles) - q - 1)
        e = enc.episode(ep, 1300)
        assert e.ids[e.query_pos] == enc.letter_ids[ep.items[q].answer] == enc.letter_ids[e.query_answer]
        if n_after[-1]:
            # the query's item ends where the separator before the first later example is
            assert e.ids[e.query_end - 2 : e.query_end + 1] == enc.ids("].") + [enc.sep]
            assert len(e.answer_positions) == len(ep.items)
        else:
            assert e.query_end is None
    assert set(n_after) == set(range(6))
    # over budget: later examples go first, then leading ones; the query stays
    ep = sample_episode(random.Random(1), WORDS, EpisodeSpec(n_examples=(20, 20), max_after=20))
    e = enc.episode(ep, 300)
    assert len(e.ids) <= 300 and e.query_end is None and e.query_pos == e.answer_positions[-1]
    # the gate's prompt stops at the query's item, as the suite's prompts do
    stage = Stage("S", EpisodeSpec(n_examples=(4, 8), max_after=5))
    g = gate_batch(seed=0, step=0, size=8, words=WORDS, encoder=enc, stage=stage, causal=False)
    for row, att in zip(g.ids.tolist(), g.attention.tolist(), strict=True):
        row = row[: sum(att)]
        assert row[-2:] == enc.ids("].") and row.count(enc.mask_id) == 1


def test_long_episodes_fit_the_token_budget():
    enc = Encoder(build_tokenizer(all_words(WORDS)))
    lengths = []
    for seed in range(30):
        ep = sample_episode(random.Random(seed), WORDS, EpisodeSpec(n_examples=(50, 50), max_tokens=600))
        e = enc.episode(ep, 600)
        lengths.append(len(e.ids))
        assert len(e.ids) <= 600
        assert e.ids[e.query_pos] == enc.letter_ids[ep.items[-1].answer]  # the query survives trimming
    assert max(lengths) > 500  # trimmed close to the budget, not far below
    # the suite's longest prompt (10 + 40 examples) fits the default S4 budget untrimmed
    e = enc.episode(sample_episode(random.Random(0), WORDS, EpisodeSpec(n_examples=(50, 50))), 1300)
    assert len(e.answer_positions) == 51


@pytest.mark.parametrize(
    "kwargs",
    [{"n_examples": (5, 2)}, {"distractor_share": (0.5, 1.5)}, {"repeat_prob": 2.0}, {"n_categories": 1}, {"n_categories": (1, 3)}, {"n_categories": (4, 2)}, {"max_after": -1},
     {"rules": ("bogus",)}, {"max_tokens": 8}],
)
def test_bad_spec_raises(kwargs):
    with pytest.raises(MasktaxError):
        EpisodeSpec(**kwargs)
