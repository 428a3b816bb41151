"""The 16 datasets of [P1]: order, determinism, letter balance, category and number rules, uniqueness."""

from __future__ import annotations

from collections import Counter

import pytest

from masktax.errors import MasktaxError
from masktax.tasks.suite import (
    DATASET_NAMES,
    DISTRACTOR_TASKS,
    LETTERS,
    N_DISTRACTOR_CONTEXT,
    N_RELEVANT_CONTEXT,
    NUMBER_RANGE,
    RELEVANT_TASKS,
    Example,
    build_dataset,
    build_suite,
    get_dataset,
    item_text,
)
from masktax.tasks.words import category_of

N_TEST = 1000


@pytest.fixture(scope="module")
def suite():
    return build_suite(seed=0, n_test=N_TEST)


def counts(letters) -> list[int]:
    c = Counter(letters)
    return [c[x] for x in LETTERS]


def test_suite_has_16_datasets_in_fixed_order(suite):
    assert [d.name for d in suite] == list(DATASET_NAMES)
    assert len(suite) == len(RELEVANT_TASKS) * len(DISTRACTOR_TASKS) == 16
    assert DATASET_NAMES[:2] == ("country__smallest", "country__largest")
    for d in suite:
        assert len(d.tests) == N_TEST and {t.role for t in d.tests} == {"test"}
        roles = [e.role for e in d.context]
        assert roles == ["relevant"] * N_RELEVANT_CONTEXT + ["distractor"] * N_DISTRACTOR_CONTEXT


def test_same_seed_same_suite_other_seed_differs(suite):
    again = build_suite(seed=0, n_test=N_TEST)
    assert again == suite
    other = build_suite(seed=1, n_test=N_TEST)
    for a, b in zip(suite, other, strict=True):
        assert a.context != b.context and a.tests != b.tests


def test_dataset_does_not_depend_on_suite_order(suite):
    alone = build_dataset("emotion", "largest", seed=0, n_test=N_TEST)
    assert alone == suite[DATASET_NAMES.index("emotion__largest")]


def test_context_letters_exactly_balanced(suite):
    for d in suite:
        assert sorted(counts(e.answer for e in d.relevant_examples)) == [3, 3, 4]
        assert sorted(counts(e.answer for e in d.distractor_examples)) == [13, 13, 14]


def test_every_test_prefix_balanced_within_one():
    d = build_dataset("colour", "smallest", seed=3, n_test=2500)  # crosses the 1000-test blocks
    running = Counter()
    for i, t in enumerate(d.tests, start=1):
        running[t.answer] += 1
        c = counts(running.elements())
        assert max(c) - min(c) <= 1, i
        if i % 3 == 0:
            assert c == [i // 3] * 3, i


def test_smaller_n_test_is_a_prefix():
    small = get_dataset("verb__smallest", n_test=100)
    full = get_dataset("verb__smallest", n_test=1000)
    big = get_dataset("verb__smallest", n_test=2001)
    assert small.context == full.context == big.context
    assert small.tests == full.tests[:100]
    assert full.tests == big.tests[:1000]


def test_relevant_items_follow_the_category_table(suite):
    for d in suite:
        target, foil_cats = RELEVANT_TASKS[d.relevant]
        for e in (*d.relevant_examples, *d.tests):
            assert category_of(e.answer_option) == target, (d.name, e)
            foils = [o for i, o in enumerate(e.options) if i != e.answer_index]
            cats = [category_of(f) for f in foils]
            assert all(c in foil_cats for c in cats), (d.name, e)
            if len(foil_cats) >= 2:  # our choice: two distinct foil categories
                assert cats[0] != cats[1], (d.name, e)


def test_distractor_items_are_distinct_integers_with_min_or_max(suite):
    lo, hi = NUMBER_RANGE
    for d in suite:
        pick = min if d.distractor == "smallest" else max
        for e in d.distractor_examples:
            numbers = [int(o) for o in e.options]
            assert all(str(n) == o for n, o in zip(numbers, e.options, strict=True))
            assert len(set(numbers)) == 3 and all(lo <= n <= hi for n in numbers)
            assert int(e.answer_option) == pick(numbers)


def test_no_option_set_repeats_within_a_dataset(suite):
    for d in suite:
        context_sets = {frozenset(e.options) for e in d.context}
        test_sets = [frozenset(t.options) for t in d.tests]
        assert len(context_sets) == len(d.context)
        assert len(set(test_sets)) == len(test_sets)
        assert not context_sets & set(test_sets)


def test_item_text_matches_the_paper_format():
    e = Example(options=("knit", "quirky", "persuade"), answer="B", role="test")
    assert item_text(e) == "Options: (A) knit, (B) quirky, (C) persuade\nAnswer:[B]."
    assert item_text(e, answer=False) == "Options: (A) knit, (B) quirky, (C) persuade\nAnswer:["


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: build_dataset("planet", "smallest"), "unknown relevant task 'planet'"),
        (lambda: build_dataset("verb", "median"), "unknown distractor task 'median'"),
        (lambda: build_dataset("verb", "smallest", n_test=0), "n_test must be at least 1, got 0"),
        (lambda: get_dataset("verb_smallest"), "unknown dataset 'verb_smallest'; choose from country__smallest"),
        (lambda: Example(options=("a", "b", "B"), answer="A", role="test"), "three distinct options"),
        (lambda: Example(options=("a", "b", "c"), answer="D", role="test"), "answer must be one of A, B, C"),
        (lambda: Example(options=("a", "b", "c"), answer="A", role="query"), "role must be one of"),
    ],
)
def test_bad_input_raises_masktax_error(call, message):
    with pytest.raises(MasktaxError, match=message.replace("(", r"\(")):
        call()
