"""Documents of the probe-suite lm-eval tasks (see `masktax.lmeval.tasks`): one per test point.

lm-eval calls `load(**metadata, **dataset_kwargs)` (`custom_dataset` in the task YAML); `dataset`
names one of the 16 datasets. Each document holds `prompt` (the base-format prompt up to and
including `Answer:[`), `answer` (the letter), `label` (its index in A/B/C), `dataset`, `index`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.prompts.render import arrange, prompt_text
from masktax.tasks.export import verify_export
from masktax.tasks.suite import LETTERS, Dataset, Example, dataset_names, get_dataset


def docs(dataset: Dataset, seed: int) -> list[dict]:
    """The documents of one dataset: its test points after the fixed context, mixed as the masks probe
    mixes it (`arrange(..., "mixed", seed=seed)`: 10 relevant + 40 distractor examples)."""
    context = arrange(dataset, "mixed", seed=seed)
    return [{"prompt": prompt_text(context, test).prefix, "answer": test.answer, "label": LETTERS.index(test.answer),
             "dataset": dataset.name, "index": i} for i, test in enumerate(dataset.tests)]


@lru_cache(maxsize=64)
def _built(name: str, seed: int, n_test: int) -> tuple[dict, ...]:
    return tuple(docs(get_dataset(name, seed=seed, n_test=n_test), seed))


def _exported(root: str, name: str) -> tuple[Dataset, int]:
    """A dataset read back from a `masktax suite export` directory (manifest-checked), and its seed."""
    manifest = verify_export(root)

    def examples(path: Path) -> tuple[Example, ...]:
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
        return tuple(Example(options=tuple(r["options"]), answer=r["answer"], role=r["role"]) for r in rows)

    relevant, distractor = name.split("__")
    context = examples(Path(root) / f"{name}.context.jsonl")
    return Dataset(relevant=relevant, distractor=distractor, context=context,
                   tests=examples(Path(root) / f"{name}.jsonl")), manifest["seed"]


def load(dataset: str = "", suite_dir: str | None = None, suite_seed: int = 0, suite_n_test: int = 1000, **_):
    """lm-eval's `custom_dataset`: {"test": the dataset's documents}."""
    import datasets

    if dataset not in dataset_names():
        raise MasktaxError(f"unknown suite dataset '{dataset}'; choose one of {', '.join(dataset_names())}")
    if suite_dir:
        ds, seed = _exported(str(suite_dir), dataset)
        rows = docs(ds, seed)
    else:
        rows = list(_built(dataset, int(suite_seed), int(suite_n_test)))
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
