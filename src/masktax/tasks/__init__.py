"""The probe suite of [P1]: curated word lists (words.py), the 16 datasets (suite.py), export (export.py)."""

from masktax.tasks.suite import (
    DATASET_NAMES,
    DISTRACTOR_TASKS,
    RELEVANT_TASKS,
    Dataset,
    Example,
    build_suite,
    get_dataset,
    item_text,
)
from masktax.tasks.words import EXTRA_CATEGORIES, PROBE_CATEGORIES, all_words, load_words

__all__ = [
    "DATASET_NAMES", "DISTRACTOR_TASKS", "EXTRA_CATEGORIES", "PROBE_CATEGORIES", "RELEVANT_TASKS",
    "Dataset", "Example", "all_words", "build_suite", "get_dataset", "item_text", "load_words",
]
