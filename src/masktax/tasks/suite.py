"""The probe suite of [P1] ("Masks Can Be Distracting", arXiv 2511.21338): 16 few-shot datasets.

Every item is a 3-way multiple choice whose answer is one letter:

    Options: (A) knit, (B) quirky, (C) persuade
    Answer:[B].

Eight relevant tasks ask for the option of a target category, the two other options come from
foil categories (table of [P1]); two distractor tasks ask for the smallest / largest of three
distinct integers drawn without replacement from 1..1000. 8 x 2 = 16 datasets, each with ONE
fixed set of in-context examples (10 relevant, then 40 distractor, in a fixed order) and
`n_test` test points (1000 in the paper) that ask the relevant rule. The rule can only be
inferred from the examples; arranging them into a prompt is `masktax.prompts.render`'s job.

Choices of ours (not stated by the paper):
- Foils: with >= 2 foil categories, two DISTINCT foil categories are picked uniformly and one
  word is drawn from each; with one foil category both foils are distinct words of it.
- Letters: the in-context letters are an exactly balanced shuffled list (10 -> 4/3/3, the extra
  letters chosen at random); test letters come in consecutive triples that are each a random
  permutation of A, B, C, so every prefix of the tests (e.g. `--n-items 100`) is balanced within 1.
- Uniqueness: no two items of a dataset (in-context or test) share the same option set.
- Seeds: each dataset has its own `random.Random(sha256(f"{seed}:{name}"))`, so outputs are
  byte-identical for a seed and independent of dataset order. Test letters are drawn in blocks
  of 1000 ahead of the items (`draw_tests`), so the tests of `n_test=100` are the first 100 tests
  of `n_test=1000`, which are the first 1000 of `n_test=5000`.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from masktax.errors import MasktaxError
from masktax.tasks.words import load_words

LETTERS = ("A", "B", "C")
ANSWER_PREFIX = "Answer:["  # the text every prompt ends with before the answer letter
ANSWER_CLOSE = "]."  # what follows the answer letter
ITEM_SEPARATOR = "\n\n"

# task -> (target category, foil categories): the table of [P1].
RELEVANT_TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "country": ("countries", ("first_names",)),
    "capitalised": ("capitalised", ("lower_case",)),
    "verb": ("verbs", ("adjectives", "prepositions", "objects")),
    "adjective": ("adjectives", ("verbs", "prepositions", "objects")),
    "animal": ("animals", ("objects", "fruits", "sports")),
    "colour": ("colours", ("animals", "objects")),
    "emotion": ("emotions", ("colours", "objects", "animals")),
    "object": ("objects", ("emotions", "colours", "adjectives")),
}
DISTRACTOR_TASKS: tuple[str, ...] = ("smallest", "largest")
NUMBER_RANGE = (1, 1000)  # distractor options: distinct integers in this closed range
N_RELEVANT_CONTEXT = 10
N_DISTRACTOR_CONTEXT = 40
ROLES = ("relevant", "distractor", "test")
TEST_BLOCK = 1000  # test letters are drawn one block ahead of the items (see draw_tests)
MAX_TEST_POINTS = 10_000  # per dataset: ten times the paper's 1000 (16 datasets build in about a second)
DATASET_NAMES: tuple[str, ...] = tuple(f"{r}__{d}" for r in RELEVANT_TASKS for d in DISTRACTOR_TASKS)


@dataclass(frozen=True)
class Example:
    """One multiple-choice item: three option words, the correct letter, and its role."""

    options: tuple[str, str, str]
    answer: str  # "A" | "B" | "C"
    role: str  # "relevant" | "distractor" | "test"

    def __post_init__(self) -> None:
        if len(self.options) != 3 or len({o.lower() for o in self.options}) != 3:
            raise MasktaxError(f"an item needs three distinct options, got {self.options!r}")
        if self.answer not in LETTERS:
            raise MasktaxError(f"answer must be one of A, B, C, got {self.answer!r}")
        if self.role not in ROLES:
            raise MasktaxError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")

    @property
    def answer_index(self) -> int:
        return LETTERS.index(self.answer)

    @property
    def answer_option(self) -> str:
        """The correct option's word (or number)."""
        return self.options[self.answer_index]


@dataclass(frozen=True)
class Dataset:
    """One of the 16 datasets: a relevant task crossed with a distractor task.

    context: the fixed in-context examples, `N_RELEVANT_CONTEXT` relevant then
    `N_DISTRACTOR_CONTEXT` distractor, each group in its fixed order.
    tests: the test points (role "test"), all asking the relevant rule.
    """

    relevant: str
    distractor: str
    context: tuple[Example, ...]
    tests: tuple[Example, ...]

    @property
    def name(self) -> str:
        return f"{self.relevant}__{self.distractor}"

    @property
    def relevant_examples(self) -> tuple[Example, ...]:
        return tuple(e for e in self.context if e.role == "relevant")

    @property
    def distractor_examples(self) -> tuple[Example, ...]:
        return tuple(e for e in self.context if e.role == "distractor")


def options_line(example: Example) -> str:
    """`Options: (A) knit, (B) quirky, (C) persuade` (the user turn of the chat format)."""
    return "Options: " + ", ".join(f"({letter}) {o}" for letter, o in zip(LETTERS, example.options, strict=True))


def answer_text(example: Example) -> str:
    """`Answer:[B].` (the assistant turn of the chat format)."""
    return f"{ANSWER_PREFIX}{example.answer}{ANSWER_CLOSE}"


def item_text(example: Example, answer: bool = True) -> str:
    """`Options: (A) knit, (B) quirky, (C) persuade\\nAnswer:[B].`; with answer=False the text
    stops right after `Answer:[` (the query form)."""
    tail = answer_text(example) if answer else ANSWER_PREFIX
    return f"{options_line(example)}\n{tail}"


def dataset_names() -> tuple[str, ...]:
    """The 16 dataset names in suite order (relevant task major, distractor minor)."""
    return DATASET_NAMES


def derived_seed(seed: int, *parts: object) -> int:
    """A 64-bit seed from the suite seed and names, stable across processes and machines."""
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def balanced_letters(n: int, rng: random.Random) -> list[str]:
    """n letters, each letter n//3 or n//3 + 1 times, in random order."""
    letters = list(LETTERS) * (n // 3) + rng.sample(LETTERS, n % 3)
    rng.shuffle(letters)
    return letters


def place(target: str, others: list[str], letter: str, rng: random.Random) -> tuple[str, str, str]:
    """Options with `target` at `letter`'s position and the two others shuffled around it."""
    rest = list(others)
    rng.shuffle(rest)
    rest.insert(LETTERS.index(letter), target)
    return (rest[0], rest[1], rest[2])


def relevant_options(task: str, letter: str, rng: random.Random) -> tuple[str, str, str]:
    """One item of a relevant task: a target word plus two foils (see module docstring)."""
    target_cat, foil_cats = RELEVANT_TASKS[task]
    words = load_words()
    target = rng.choice(words[target_cat])
    if len(foil_cats) >= 2:
        foils = [rng.choice(words[c]) for c in rng.sample(foil_cats, 2)]
    else:
        foils = rng.sample(words[foil_cats[0]], 2)
    return place(target, foils, letter, rng)


def distractor_options(task: str, letter: str, rng: random.Random) -> tuple[str, str, str]:
    """Three distinct integers from 1..1000; the smallest / largest sits at `letter`."""
    lo, hi = NUMBER_RANGE
    numbers = sorted(rng.sample(range(lo, hi + 1), 3))
    target = numbers[0] if task == "smallest" else numbers[-1]
    others = [n for n in numbers if n != target]
    return place(str(target), [str(n) for n in others], letter, rng)


def draw_items(make, letters: list[str], role: str, seen: set[frozenset[str]], rng: random.Random) -> list[Example]:
    """Items with the given letters whose option sets are new (added to `seen`)."""
    items = []
    for letter in letters:
        for _ in range(10_000):
            options = make(letter, rng)
            key = frozenset(options)
            if key not in seen:
                break
        else:  # pragma: no cover - the word lists allow hundreds of thousands of option sets
            raise MasktaxError(f"could not draw {len(letters)} distinct {role} items; the word lists are too small")
        seen.add(key)
        items.append(Example(options=options, answer=letter, role=role))
    return items


def draw_tests(make, n_test: int, seen: set[frozenset[str]], rng: random.Random) -> list[Example]:
    """`n_test` test items in blocks of `TEST_BLOCK`: each block's letters (whole permutations of
    A, B, C, the leftover carried to the next block) are drawn before its items.

    The rng is consumed the same way whatever `n_test` is, so the tests of a smaller `n_test` are
    a prefix of a larger one's (and `n_test=1000` matches the first release's draw exactly).
    """
    letters: list[str] = []
    tests: list[Example] = []
    while len(tests) < n_test:
        while len(letters) < TEST_BLOCK:
            letters.extend(rng.sample(LETTERS, 3))
        take = min(TEST_BLOCK, n_test - len(tests))
        tests += draw_items(make, letters[:take], "test", seen, rng)
        letters = letters[TEST_BLOCK:]
    return tests


def build_dataset(relevant: str, distractor: str, *, seed: int = 0, n_test: int = 1000) -> Dataset:
    """One dataset: fixed context (10 relevant, then 40 distractor) and `n_test` test points."""
    if relevant not in RELEVANT_TASKS:
        raise MasktaxError(f"unknown relevant task '{relevant}'; choose from {', '.join(RELEVANT_TASKS)}")
    if distractor not in DISTRACTOR_TASKS:
        raise MasktaxError(f"unknown distractor task '{distractor}'; choose from {', '.join(DISTRACTOR_TASKS)}")
    if n_test < 1:
        raise MasktaxError(f"n_test must be at least 1, got {n_test}")
    if n_test > MAX_TEST_POINTS:
        raise MasktaxError(f"the suite has at most {MAX_TEST_POINTS} test points per dataset, not {n_test} "
                           "(the paper uses 1000)")
    name = f"{relevant}__{distractor}"
    rng = random.Random(derived_seed(seed, name))

    def rel(letter: str, r: random.Random) -> tuple[str, str, str]:
        return relevant_options(relevant, letter, r)

    def dis(letter: str, r: random.Random) -> tuple[str, str, str]:
        return distractor_options(distractor, letter, r)

    seen: set[frozenset[str]] = set()
    context = draw_items(rel, balanced_letters(N_RELEVANT_CONTEXT, rng), "relevant", seen, rng)
    context += draw_items(dis, balanced_letters(N_DISTRACTOR_CONTEXT, rng), "distractor", seen, rng)
    tests = draw_tests(rel, n_test, seen, rng)
    return Dataset(relevant=relevant, distractor=distractor, context=tuple(context), tests=tuple(tests))


def build_suite(seed: int = 0, n_test: int = 1000) -> list[Dataset]:
    """The 16 datasets of [P1] in `dataset_names()` order; byte-identical for the same seed."""
    return [build_dataset(r, d, seed=seed, n_test=n_test) for r in RELEVANT_TASKS for d in DISTRACTOR_TASKS]


def get_dataset(name: str, *, seed: int = 0, n_test: int = 1000) -> Dataset:
    """One dataset by name (e.g. "country__smallest"); MasktaxError listing the valid names."""
    relevant, sep, distractor = name.partition("__")
    if not sep or name not in dataset_names():
        raise MasktaxError(f"unknown dataset '{name}'; choose from {', '.join(dataset_names())}")
    return build_dataset(relevant, distractor, seed=seed, n_test=n_test)
