"""Seeded, on-the-fly few-shot episodes in the probe suite's exact item format.

An episode infers a rule in context: it renders `n` context examples (relevant ones of the
episode's rule, mixed with distractor examples of a second rule) and a final query of the
relevant rule, each in the suite's format

    Options: (A) knit, (B) quirky, (C) persuade
    Answer:[B].

joined by "\\n\\n". Rule families:
- word rules: `category` (pick the word of category X; X drawn per episode from ALL categories,
  probe and extra; foils from other categories), `odd_one_out` (two options share a category,
  pick the third), `fixed_letter` (the answer letter is the same in every example);
- number rules: `smallest`, `largest`, `median` of three distinct integers in 1..1000.
The distractor rule is always of the other kind (numbers vs words), so the query's options say
which rule applies, as in the suite (category tasks + smallest/largest distractors).

Honesty note: the probe suite's categories are among the training categories. That is by design
(the model must know the categories), and the probes still measure in-context inference, since
the target category changes every episode and must be read off the context examples.

Stepping stone (curriculum S0/S1): with `repeat_prob`, an example repeats the chosen word after
the letter, `Answer:[B quirky].`; the letter stays the token right after `[`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from masktax.embedded.tokenizer import pieces
from masktax.errors import MasktaxError

LETTERS = ("A", "B", "C")
WORD_RULES = ("category", "odd_one_out", "fixed_letter")
NUMBER_RULES = ("smallest", "largest", "median")
RULES = WORD_RULES + NUMBER_RULES
MAX_NUMBER = 1000


@dataclass(frozen=True)
class EpisodeSpec:
    """What one curriculum stage generates (all ranges inclusive)."""

    n_examples: tuple[int, int] = (10, 50)  # context examples before the query
    distractor_share: tuple[float, float] = (0.0, 0.8)  # share of context examples of the 2nd rule
    repeat_prob: float = 0.0  # stepping stone: repeat the chosen word after the letter
    # categories in a category episode (target + foils); 0 = all; a (lo, hi) range is drawn per
    # episode (the suite's tasks use 2-4: one target and one to three foil categories)
    n_categories: int | tuple[int, int] = 0
    rules: tuple[str, ...] = RULES  # relevant rule families drawn from
    max_tail: int = 0  # trailing EOS tokens appended (0..max_tail), see pretrain's eos_tail
    max_tokens: int = 1300  # episode tokens (before the tail); leading examples dropped to fit
    # examples AFTER the query (0..max_after, same rule mix as the context): the query's answer is
    # followed by text of uncertain length, as an answer is in natural text (0 = the query ends it)
    max_after: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.n_examples
        if not 0 <= lo <= hi:
            raise MasktaxError(f"n_examples must be 0 <= lo <= hi, got {self.n_examples}")
        a, b = self.distractor_share
        if not 0.0 <= a <= b <= 1.0:
            raise MasktaxError(f"distractor_share must be within [0, 1], got {self.distractor_share}")
        if not 0.0 <= self.repeat_prob <= 1.0:
            raise MasktaxError(f"repeat_prob must be within [0, 1], got {self.repeat_prob}")
        n_cat = self.n_categories
        ok = (n_cat == 0 or n_cat >= 2) if isinstance(n_cat, int) else (
            len(n_cat) == 2 and 2 <= n_cat[0] <= n_cat[1])
        if not ok:
            raise MasktaxError(f"n_categories must be 0 (all), at least 2, or a range [lo, hi] with 2 <= lo <= hi, "
                               f"got {n_cat}")
        bad = [r for r in self.rules if r not in RULES]
        if bad or not self.rules:
            raise MasktaxError(f"unknown rule families {bad}; choose from {', '.join(RULES)}")
        if self.max_tail < 0 or self.max_after < 0 or self.max_tokens < 32:
            raise MasktaxError("max_tail and max_after must be >= 0 and max_tokens >= 32")


@dataclass(frozen=True)
class Item:
    options: tuple[str, str, str]
    answer: int  # 0, 1, 2 -> A, B, C
    role: str  # "relevant" | "distractor" | "query" | "after" (an example after the query)
    repeat: bool = False


@dataclass(frozen=True)
class Episode:
    rule: str  # e.g. "category:animals", "smallest", "fixed_letter:B"
    distractor_rule: str
    items: tuple[Item, ...]  # context examples, then the query last


def render_item(item: Item) -> str:
    """One item in the suite's exact format (plus the optional repeat stepping stone)."""
    a, b, c = item.options
    letter = LETTERS[item.answer]
    rep = f" {item.options[item.answer]}" if item.repeat else ""
    return f"Options: (A) {a}, (B) {b}, (C) {c}\nAnswer:[{letter}{rep}]."


def render_episode(ep: Episode) -> str:
    """The whole episode text: items joined by a blank line."""
    return "\n\n".join(render_item(it) for it in ep.items)


class _Rule:
    """Draws (options, answer) for one rule instance fixed for an episode."""

    def __init__(self, family: str, words: Mapping[str, Sequence[str]], rng: random.Random,
                 n_cat: int | tuple[int, int]):
        self.family = family
        self.words = words
        cats = sorted(words)
        self.target = ""
        self.foils: list[str] = []
        self.letter = rng.randrange(3)
        if family == "category":
            self.target = rng.choice(cats)
            others = [c for c in cats if c != self.target]
            if not isinstance(n_cat, int):
                n_cat = rng.randint(*n_cat)
            k = len(others) if n_cat == 0 else min(n_cat - 1, len(others))
            self.foils = rng.sample(others, k)
        self.name = {
            "category": f"category:{self.target}",
            "fixed_letter": f"fixed_letter:{LETTERS[self.letter]}",
        }.get(family, family)

    def _word(self, rng: random.Random, cat: str, avoid: set[str]) -> str:
        pool = self.words[cat]
        for _ in range(50):
            w = rng.choice(pool)
            if w not in avoid:
                return w
        raise MasktaxError(f"category {cat!r} has too few distinct words")

    def draw(self, rng: random.Random) -> tuple[tuple[str, str, str], int]:
        f = self.family
        if f in NUMBER_RULES:
            nums = rng.sample(range(1, MAX_NUMBER + 1), 3)
            pick = {"smallest": min, "largest": max}.get(f)
            target = pick(nums) if pick else sorted(nums)[1]
            return tuple(str(n) for n in nums), nums.index(target)  # type: ignore[return-value]
        cats = sorted(self.words)
        if f == "category":
            t = self._word(rng, self.target, set())
            f1 = self._word(rng, rng.choice(self.foils), {t})
            f2 = self._word(rng, rng.choice(self.foils), {t, f1})
            answer = rng.randrange(3)
        elif f == "odd_one_out":
            c_pair, c_odd = rng.sample(cats, 2)
            t = self._word(rng, c_odd, set())
            f1 = self._word(rng, c_pair, {t})
            f2 = self._word(rng, c_pair, {t, f1})
            answer = rng.randrange(3)
        else:  # fixed_letter
            t = self._word(rng, rng.choice(cats), set())
            f1 = self._word(rng, rng.choice(cats), {t})
            f2 = self._word(rng, rng.choice(cats), {t, f1})
            answer = self.letter
        opts = [f1, f2]
        opts.insert(answer, t)
        return (opts[0], opts[1], opts[2]), answer


def sample_episode(
    rng: random.Random, words: Mapping[str, Sequence[str]], spec: EpisodeSpec, *, query_repeat: bool = True
) -> Episode:
    """One episode: context examples (relevant + distractor, shuffled) then a relevant query.

    The token budget is enforced by `encode_episode` (which drops leading examples).
    """
    family = rng.choice(spec.rules)
    other = NUMBER_RULES if family in WORD_RULES else WORD_RULES
    relevant = _Rule(family, words, rng, spec.n_categories)
    distractor = _Rule(rng.choice(other), words, rng, spec.n_categories)
    n = rng.randint(*spec.n_examples)
    share = rng.uniform(*spec.distractor_share)
    n_dis = min(round(share * n), max(n - 1, 0))  # keep at least one relevant example when n > 0
    roles = ["distractor"] * n_dis + ["relevant"] * (n - n_dis)
    rng.shuffle(roles)
    items = []
    for role in roles:
        opts, ans = (relevant if role == "relevant" else distractor).draw(rng)
        items.append(Item(opts, ans, role, rng.random() < spec.repeat_prob))
    opts, ans = relevant.draw(rng)
    items.append(Item(opts, ans, "query", query_repeat and rng.random() < spec.repeat_prob))
    if spec.max_after:  # drawn only when asked, so episodes without it keep their random stream
        for _ in range(rng.randint(0, spec.max_after)):
            opts, ans = (distractor if rng.random() < share else relevant).draw(rng)
            items.append(Item(opts, ans, "after"))
    return Episode(relevant.name, distractor.name, tuple(items))


@dataclass(frozen=True)
class EncodedEpisode:
    ids: list[int]
    answer_positions: list[int]  # every answer letter (context examples and query)
    query_pos: int  # the query's answer letter
    query_answer: int  # 0, 1, 2
    repeat_positions: tuple[int, ...] = ()  # the repeated word right after a letter (stepping stone)
    query_end: int | None = None  # end of the query item (None: the episode ends with it)


class Encoder:
    """Maps rendered text to ids exactly as the word-level tokenizer does, without its overhead."""

    def __init__(self, tokenizer) -> None:
        self.vocab: dict[str, int] = dict(tokenizer.get_vocab())
        self.unk = self.vocab["[UNK]"]
        self.sep = self.vocab["\n\n"]
        self.letter_ids = tuple(self.vocab[x] for x in LETTERS)
        self.eos_id = int(tokenizer.eos_token_id)
        self.mask_id = int(tokenizer.mask_token_id)

    def ids(self, text: str) -> list[int]:
        return [self.vocab.get(p, self.unk) for p in pieces(text)]

    def item(self, item: Item) -> tuple[list[int], int]:
        """Ids of one item and the offset of its answer letter."""
        a, b, c = item.options
        head = self.ids(f"Options: (A) {a}, (B) {b}, (C) {c}\nAnswer:[")
        rep = f" {item.options[item.answer]}" if item.repeat else ""
        return head + [self.letter_ids[item.answer]] + self.ids(f"{rep}]."), len(head)

    def episode(self, ep: Episode, max_tokens: int) -> EncodedEpisode:
        """Encode, dropping leading context examples (then trailing ones after the query) until the
        episode fits `max_tokens`."""
        parts = [self.item(it) for it in ep.items]
        lengths = [len(p[0]) + 1 for p in parts]  # + separator
        qi = next(i for i, it in enumerate(ep.items) if it.role == "query")
        start, stop, total = 0, len(parts), sum(lengths) - 1
        while total > max_tokens and stop > qi + 1:
            stop -= 1
            total -= lengths[stop]
        while total > max_tokens and start < qi:
            total -= lengths[start]
            start += 1
        if total > max_tokens:
            raise MasktaxError(f"one item needs {total} tokens, more than max_tokens={max_tokens}")
        ids: list[int] = []
        answers: list[int] = []
        repeats: list[int] = []
        query_end = None
        for k in range(start, stop):
            item_ids, off = parts[k]
            if k > start:
                ids.append(self.sep)
            answers.append(len(ids) + off)
            if ep.items[k].repeat:
                repeats.append(len(ids) + off + 1)
            ids.extend(item_ids)
            if k == qi and stop > qi + 1:
                query_end = len(ids)
        query_pos = answers[qi - start]
        return EncodedEpisode(ids, answers, query_pos, ep.items[qi].answer, tuple(repeats), query_end)


def all_words(words: Mapping[str, Sequence[str]]) -> list[str]:
    """Every word of every category, sorted (the tokenizer's vocabulary)."""
    return sorted({w for ws in words.values() for w in ws})
