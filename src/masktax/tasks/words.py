"""Curated English word lists, one per category, shipped as package data (`tasks/data/words.json`).

The probe categories are the ones the suite of [P1] draws options from; the extra categories
feed the embedded model's training corpus only (so the model learns to infer a rule in context
over more categories than the 8 probe tasks), never the probes.

Invariants (checked by the tests): every word is letters only; no word appears in two categories,
case-insensitively; words that plausibly belong to two categories ("orange": fruit and colour,
"duck": verb and animal, "Jordan": country and first name) are left out altogether.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

# Categories the probe suite draws options from (targets and foils of the 8 relevant tasks).
PROBE_CATEGORIES = (
    "countries", "first_names", "capitalised", "lower_case", "verbs", "adjectives", "prepositions",
    "objects", "animals", "fruits", "sports", "colours", "emotions",
)
# Categories used only by the embedded model's training corpus.
EXTRA_CATEGORIES = (
    "vegetables", "body_parts", "occupations", "vehicles", "instruments", "tools", "clothing",
    "furniture", "drinks", "metals", "shapes", "weather", "cities", "languages",
)


@lru_cache(maxsize=1)
def load_words() -> dict[str, tuple[str, ...]]:
    """Every category's words, probe categories first, in the order of the two tuples above.

    The result is cached; callers must not mutate it (the word tuples are immutable).
    """
    raw = json.loads(resources.files("masktax.tasks").joinpath("data/words.json").read_text("utf-8"))
    expected = set(PROBE_CATEGORIES) | set(EXTRA_CATEGORIES)
    if set(raw) != expected:
        raise RuntimeError(f"words.json categories {sorted(raw)} differ from {sorted(expected)}")
    return {name: tuple(raw[name]) for name in (*PROBE_CATEGORIES, *EXTRA_CATEGORIES)}


def all_words() -> tuple[str, ...]:
    """Every word of every category, sorted (the vocabulary of the embedded word-level tokenizer)."""
    return tuple(sorted(w for words in load_words().values() for w in words))


@lru_cache(maxsize=1)
def _word_index() -> dict[str, str]:
    return {w.lower(): cat for cat, words in load_words().items() for w in words}


def category_of(word: str) -> str | None:
    """The category a word belongs to (compared case-insensitively), or None if it is in no list."""
    return _word_index().get(word.lower())
