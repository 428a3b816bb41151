"""Curated word lists (package data `tasks/data/words.json`).

Every word belongs to exactly one category (compared case-insensitively), and words that fit two
categories in ordinary English were left out on purpose ("orange": fruit and colour; "duck": verb
and animal; "book": object and verb; "near": preposition and adjective), so that exactly one option
of a probe item fits the rule. Probe categories feed the 16 datasets; extra categories only feed
the embedded models' training corpus, so those models must infer rules over more categories than
the probes ask about.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

PROBE_CATEGORIES = (
    "countries", "first_names", "capitalised", "lower_case", "verbs", "adjectives", "prepositions",
    "objects", "animals", "fruits", "sports", "colours", "emotions",
)
EXTRA_CATEGORIES = (
    "vegetables", "body_parts", "occupations", "weather", "drinks", "shapes", "metals", "flowers",
    "trees", "cities",
)


@lru_cache(maxsize=1)
def load_words() -> dict[str, tuple[str, ...]]:
    """All categories -> words, in the curated order (probe categories first)."""
    raw = json.loads(resources.files("masktax.tasks").joinpath("data/words.json").read_text("utf-8"))
    return {cat: tuple(raw[cat]) for cat in (*PROBE_CATEGORIES, *EXTRA_CATEGORIES)}


def all_words() -> tuple[str, ...]:
    """Every word of every category (the embedded tokenizer's word vocabulary)."""
    return tuple(w for ws in load_words().values() for w in ws)


def category_of(word: str) -> str | None:
    """The category a word belongs to (case-insensitive), or None."""
    lowered = word.lower()
    for cat, ws in load_words().items():
        if lowered in (w.lower() for w in ws):
            return cat
    return None
