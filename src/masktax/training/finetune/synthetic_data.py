"""A synthetic instruction set in the embedded models' word-level vocabulary (OpenOrca layout).

The embedded tokenizer knows only the format tokens, the numbers 0..1000 and the category words
(`masktax.tasks.words`), so every instruction is written with those: its keywords are words of
the lists (verbs, prepositions, a lower-case noun). Six task families, none of them the probes'
3-way letter choice (no `Options:` / `Answer:[` format anywhere):

| family   | question                          | response          |
|----------|-----------------------------------|-------------------|
| copy     | `repeat : w1 , w2 , w3`           | `w1 , w2 , w3`    |
| reverse  | `repeat from behind : w1 , w2`    | `w2 , w1`         |
| sort     | `assemble up : 40 , 7 , 300`      | `7 , 40 , 300`    |
| count    | `quantity of : w1 , w2 , w3`      | `3`               |
| pick     | `retrieve 2 of : w1 , w2 , w3`    | `w2`              |
| category | `collect with Bob : Peru , Alice` | `Alice`           |

("category": the list's words of the same category as the key word, in list order.) Lists hold
2 to 8 items; words come from every category (probe and extra). `make_rows(n, seed)` is
deterministic and prefix-stable: the first k rows of n are `make_rows(k, seed)`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

FAMILIES = ("copy", "reverse", "sort", "count", "pick", "category")
MIN_ITEMS, MAX_ITEMS = 2, 8
MAX_NUMBER = 1000

Words = Mapping[str, Sequence[str]]


def _pick_words(rng: random.Random, words: Words, k: int) -> list[str]:
    cats = sorted(words)
    out: list[str] = []
    while len(out) < k:
        w = rng.choice(words[rng.choice(cats)])
        if w not in out:
            out.append(w)
    return out


def _copy(rng: random.Random, words: Words) -> tuple[str, str]:
    items = _pick_words(rng, words, rng.randint(MIN_ITEMS, MAX_ITEMS))
    return f"repeat : {' , '.join(items)}", " , ".join(items)


def _reverse(rng: random.Random, words: Words) -> tuple[str, str]:
    items = _pick_words(rng, words, rng.randint(MIN_ITEMS, MAX_ITEMS))
    return f"repeat from behind : {' , '.join(items)}", " , ".join(reversed(items))


def _sort(rng: random.Random, words: Words) -> tuple[str, str]:
    nums = rng.sample(range(1, MAX_NUMBER + 1), rng.randint(MIN_ITEMS, MAX_ITEMS))
    return f"assemble up : {' , '.join(map(str, nums))}", " , ".join(map(str, sorted(nums)))


def _count(rng: random.Random, words: Words) -> tuple[str, str]:
    items = _pick_words(rng, words, rng.randint(MIN_ITEMS, MAX_ITEMS))
    return f"quantity of : {' , '.join(items)}", str(len(items))


def _pick(rng: random.Random, words: Words) -> tuple[str, str]:
    items = _pick_words(rng, words, rng.randint(MIN_ITEMS, MAX_ITEMS))
    k = rng.randint(1, len(items))
    return f"retrieve {k} of : {' , '.join(items)}", items[k - 1]


def _category(rng: random.Random, words: Words) -> tuple[str, str]:
    cats = sorted(words)
    target = rng.choice(cats)
    key, *same = rng.sample(list(words[target]), 1 + rng.randint(1, 3))
    others = _pick_words(rng, {c: words[c] for c in cats if c != target}, rng.randint(1, MAX_ITEMS - len(same)))
    items = same + others
    rng.shuffle(items)
    answer = [w for w in items if w in same]
    return f"collect with {key} : {' , '.join(items)}", " , ".join(answer)


BUILDERS: dict[str, Callable[[random.Random, Words], tuple[str, str]]] = {
    "copy": _copy, "reverse": _reverse, "sort": _sort, "count": _count, "pick": _pick, "category": _category,
}


def make_rows(n: int, *, seed: int = 0, words: Words | None = None) -> list[dict[str, str]]:
    """`n` OpenOrca-layout rows (empty system prompt), families drawn uniformly, seeded."""
    if words is None:
        from masktax.tasks.words import load_words

        words = load_words()
    rng = random.Random(f"masktax-instruct-{seed}")
    rows = []
    for _ in range(n):
        question, response = BUILDERS[rng.choice(FAMILIES)](rng, words)
        rows.append({"system_prompt": "", "question": question, "response": response})
    return rows
