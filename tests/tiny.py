"""Tiny assets shared by the tests: a word-level tokenizer and tiny random models.

Nothing here downloads. Model builders return modules with random but seeded weights.
"""

from __future__ import annotations

from masktax.embedded.tokenizer import build_tokenizer

# A few real words per probe category; anything else maps to [UNK] (fine for random models).
TINY_WORDS = (
    "France", "Japan", "Peru", "Alice", "Bob", "Carol", "Garden", "Bridge", "table", "spoon",
    "run", "jump", "knit", "quirky", "happy", "under", "over", "cat", "dog", "apple", "tennis",
    "red", "blue", "joy", "anger", "persuade", "lamp",
)


def tiny_tokenizer():
    """Word-level tokenizer with a mask token, EOS/pad, chat template and numbers 0..1000."""
    return build_tokenizer(TINY_WORDS)
