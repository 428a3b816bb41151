"""The datasets of [P1]'s appendix suites (multi-dimensional classification, HotPotQA, the ICL sets).

Unlike the main suite (3 options, letter answers), an appendix item is a text plus one of the
dataset's LABELS, rendered `<text>\\n<answer_prefix><label><answer_close>` (e.g. `Input: 12 55 87\\n
Answer:[Above].`, HotPotQA's `...\\n**Answer**:[A]`). A `TaskSet` holds the in-context POOL (in a
fixed, label-balanced order: its first k items are the k-shot context) and the test items.

Label-balanced order (`balanced_order`): items are taken in rounds, each round a random permutation
of the labels that still have items, so every prefix is balanced within one item per label (used
for the in-context pool and for the tests, so `--n-items 100` is balanced too).

In-context ORDERS (`order_context`): "mixed" (one seeded shuffle of the k examples, the same for
every test point, as in the main suite), and by L2 distance to the test point ([P1] A.8):
"nearest-next" (the nearest examples sit next to the masked question) and "nearest-far" (the
nearest examples sit farthest from it). With the question at the right end these are [P1]'s
"decreasing" and "increasing" distance orders; at the left end the list is mirrored, so the names
keep saying where the nearest examples are relative to the question.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from masktax.errors import MasktaxError
from masktax.tasks.suite import derived_seed

ORDERS = ("mixed", "nearest-next", "nearest-far")
LABEL_STYLES = ("words", "letters")  # P1's label words, or A/B/C (closed-vocabulary tokenizers)
LETTER_LABELS = ("A", "B", "C")


@dataclass(frozen=True)
class Item:
    """One example: its text (the lines before the answer), its label index, and (MDC) its point."""

    text: str
    answer: int
    point: tuple[int, ...] = ()


@dataclass(frozen=True)
class TaskSet:
    """One dataset of an appendix suite.

    pool: the in-context candidates in their fixed label-balanced order (the first `shots` form a
    prompt's context). tests: the test items (label-balanced order). system: text before everything
    (HotPotQA's instruction; a system turn in the chat format).
    """

    suite: str
    name: str
    labels: tuple[str, ...]
    pool: tuple[Item, ...]
    tests: tuple[Item, ...]
    shots: int
    system: str = ""
    answer_prefix: str = "Answer:["
    answer_close: str = "]."
    separator: str = "\n\n"

    def __post_init__(self) -> None:
        if not 2 <= len(self.labels) <= len(LETTER_LABELS):
            raise MasktaxError(f"{self.name}: a task needs 2 or 3 labels, got {self.labels}")
        if not 0 <= self.shots <= len(self.pool):
            raise MasktaxError(f"{self.name}: --shots must be in 0..{len(self.pool)}, got {self.shots}")
        if not self.tests:
            raise MasktaxError(f"{self.name} has no test items (after its filters)")

    def with_labels(self, style: str) -> TaskSet:
        """The same task with its label words ("words") or A, B, C in label order ("letters")."""
        if style not in LABEL_STYLES:
            raise MasktaxError(f"--labels must be one of {', '.join(LABEL_STYLES)}, got '{style}'")
        if style == "words":
            return self
        return TaskSet(self.suite, self.name, LETTER_LABELS[: len(self.labels)], self.pool, self.tests, self.shots,
                       self.system, self.answer_prefix, self.answer_close, self.separator)

    def answer_text(self, item: Item) -> str:
        """`Answer:[Above].` (the answer line of an in-context example)."""
        return f"{self.answer_prefix}{self.labels[item.answer]}{self.answer_close}"

    def example_text(self, item: Item) -> str:
        """An in-context example: its text, a newline, its answer line."""
        return f"{item.text}\n{self.answer_text(item)}"


def balanced_order(items: Sequence[Item], n_labels: int, rng: random.Random) -> list[Item]:
    """`items` reordered so every prefix is label-balanced within one (see the module docstring)."""
    queues = [[it for it in items if it.answer == k] for k in range(n_labels)]
    for q in queues:
        rng.shuffle(q)
    out: list[Item] = []
    while any(queues):
        live = [k for k in range(n_labels) if queues[k]]
        for k in rng.sample(live, len(live)):
            out.append(queues[k].pop())
    return out


def distance(a: Sequence[int], b: Sequence[int]) -> float:
    """L2 distance between two points."""
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def order_context(task: TaskSet, query: Item, order: str, query_position: str, *, seed: int) -> list[Item]:
    """The `task.shots` in-context examples of a prompt, in reading order (see the module docstring).

    Distance ties keep the pool order (a stable sort), so the result is a function of its inputs.
    """
    chosen = list(task.pool[: task.shots])
    if order == "mixed":
        random.Random(derived_seed(seed, task.suite, task.name, "mixed", task.shots)).shuffle(chosen)
        return chosen
    if order not in ORDERS:
        raise MasktaxError(f"unknown in-context order '{order}'; choose from {', '.join(ORDERS)}")
    if not query.point:
        raise MasktaxError(f"the {order} order needs points; {task.name} has none (only the mdc suite does)")
    nearest_first = sorted(chosen, key=lambda it: distance(it.point, query.point))
    nearest_next = nearest_first[::-1] if query_position == "right" else nearest_first
    return nearest_next if order == "nearest-next" else nearest_next[::-1]
