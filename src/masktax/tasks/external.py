"""HotPotQA ([P1] A.7) and the single-token ICL sets ([P1] A.3): loaded through `datasets`, never downloaded.

Each set is read from ONE labelled split: a local file under `--data DIR` when there is one, else
the local `datasets` cache (offline; nothing is ever downloaded). The in-context pool is drawn from
that split and its items never appear among the tests (our choice: one file per set; [P1] does not
say which split its examples came from). When neither is there, the error names the file and the
`datasets` name it needs.

| set | file under --data | `datasets` name (config, split) | text | labels |
|---|---|---|---|---|
| hotpotqa | hotpotqa.jsonl or hotpot_dev_distractor_v1.json | hotpotqa/hotpot_qa (distractor, validation) | see below | A, B |
| sst2 | sst2.jsonl | nyu-mll/glue (sst2, validation) | `Review: ...` | negative, positive |
| rotten_tomatoes | rotten_tomatoes.jsonl | cornell-movie-review-data/rotten_tomatoes (test) | `Review: ...` | negative, positive |
| ag_news | ag_news.jsonl | fancyzhx/ag_news (test) | `Article: ...` | World, Sports, Business |
| mrpc | mrpc.jsonl | nyu-mll/glue (mrpc, validation) | `Sentence 1: ...\\nSentence 2: ...` | no, yes |
| rte | rte.jsonl | nyu-mll/glue (rte, validation) | `Premise: ...\\nHypothesis: ...` | yes, no |
| qnli | qnli.jsonl | nyu-mll/glue (qnli, validation) | `Question: ...\\nSentence: ...` | yes, no |

Files may also be .json, .parquet or .csv with the `datasets` columns (`sentence`/`text`, `label`;
`sentence1`, `sentence2`; `question`, `sentence`); labels keep the `datasets` numbering (GLUE RTE/QNLI:
0 = entailment -> "yes"). Filters ([P1]): AG News without Science/Technology (label 3); RTE, QNLI and
AG News texts under 500 characters (each text field). ICL sets: a pool of 64 label-balanced items (half
the set when it is smaller), the first `shots` (default 25) forming the context; tests: up to 1000 of the rest, label-balanced order.

HotPotQA ([P1] A.7), distractor setting: questions whose last comma-separated clause is "X or Y"
with the answer equal to X or Y (case-insensitive) become two options [A] X, [B] Y in the question's
order; the context is the ten paragraphs (title: sentences) joined by spaces. Format:

    Which of the following answers is true? Respond with [A] or [B].      (system prompt)

    **Context**:
    '<paragraphs>'.

    **Question**: '<question>' [A] <X>
     [B] <Y>
    **Answer**:[A]

One in-context example (the first usable question of the split, excluded from the tests). [P1]
keeps inputs under 1000 tokens of its tokenizer; so that every model scores the same items we keep
prompts (example + test, without system prompt) under 4000 characters (about 1000 BPE tokens).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.results.store import parse_json_file
from masktax.tasks.appendix import Item, TaskSet, balanced_order
from masktax.tasks.suite import derived_seed

EXTENSIONS = ("jsonl", "json", "parquet", "csv")
POOL_SIZE = 64  # in-context candidates per ICL set (label-balanced)
ICL_SHOTS = 25
MAX_TESTS = 1000
MAX_TEXT_CHARS = 500  # RTE, QNLI, AG News ([P1])
HOTPOT_MAX_CHARS = 4000  # our tokenizer-free stand-in for [P1]'s 1000 tokens
HOTPOT_SYSTEM = "Which of the following answers is true? Respond with [A] or [B]."


@dataclass(frozen=True)
class Source:
    """Where a set comes from: its `datasets` name, config and split; its text fields and labels."""

    hub: str
    config: str | None
    split: str
    fields: tuple[tuple[str, str], ...]  # (column, shown name), in order
    labels: tuple[str, ...]
    max_chars: int | None = None
    drop_labels: tuple[int, ...] = ()
    files: tuple[str, ...] = ()  # other accepted file names (official releases)


ICL_SETS: dict[str, Source] = {
    "sst2": Source("nyu-mll/glue", "sst2", "validation", (("sentence", "Review"),), ("negative", "positive")),
    "rotten_tomatoes": Source("cornell-movie-review-data/rotten_tomatoes", None, "test", (("text", "Review"),),
                              ("negative", "positive")),
    "ag_news": Source("fancyzhx/ag_news", None, "test", (("text", "Article"),), ("World", "Sports", "Business"),
                      max_chars=MAX_TEXT_CHARS, drop_labels=(3,)),
    "mrpc": Source("nyu-mll/glue", "mrpc", "validation", (("sentence1", "Sentence 1"), ("sentence2", "Sentence 2")),
                   ("no", "yes")),
    "rte": Source("nyu-mll/glue", "rte", "validation", (("sentence1", "Premise"), ("sentence2", "Hypothesis")),
                  ("yes", "no"), max_chars=MAX_TEXT_CHARS),
    "qnli": Source("nyu-mll/glue", "qnli", "validation", (("question", "Question"), ("sentence", "Sentence")),
                   ("yes", "no"), max_chars=MAX_TEXT_CHARS),
}
HOTPOTQA = Source("hotpotqa/hotpot_qa", "distractor", "validation", (), ("A", "B"),
                  files=("hotpot_dev_distractor_v1.json",))


def _hub_hint(source: Source) -> str:
    config = f", '{source.config}'" if source.config else ""
    return f"datasets.load_dataset('{source.hub}'{config}, split='{source.split}')"


def local_file(name: str, source: Source, data_dir: str | None) -> Path | None:
    """The first accepted file of a set under `data_dir` (None if there is none)."""
    if data_dir is None:
        return None
    root = Path(data_dir)
    if not root.is_dir():
        raise MasktaxError(f"--data {data_dir} is not a directory")
    for file in (*(f"{name}.{ext}" for ext in EXTENSIONS), *source.files):
        if (root / file).is_file():
            return root / file
    return None


def load_rows(name: str, source: Source, data_dir: str | None, *, cache_dir: str | None = None) -> list[dict]:
    """The split's rows: the local file through `datasets` (an official HotPotQA release file, whose
    mixed-type lists Arrow cannot hold, through `json`), else the offline `datasets` cache."""
    file = local_file(name, source, data_dir)
    if file is not None and file.name in source.files:
        rows = parse_json_file(file, str(file))
        if not isinstance(rows, list):
            raise MasktaxError(f"{file} is not a list of questions (the official HotPotQA release layout)")
        return rows
    try:
        import datasets
    except ImportError:
        raise MasktaxError(f"the {name} set needs the `datasets` package: pip install 'masktax[data]'") from None
    if file is not None:
        builder = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv"}[file.suffix[1:]]
        try:
            with _quiet(datasets):
                rows = datasets.load_dataset(builder, data_files=str(file), split="train", cache_dir=cache_dir)
        except Exception as err:  # noqa: BLE001 - datasets raises many kinds; the message names the file
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise MasktaxError(f"could not read {file} as {builder}: {first}") from err
        return [dict(r) for r in rows]
    names = " or ".join((f"{name}.jsonl", *source.files))
    where = f"under --data {data_dir}" if data_dir else "under --data DIR"
    config = f" ({source.config})" if source.config else ""
    try:
        with _offline(datasets), _quiet(datasets):
            rows = datasets.load_dataset(source.hub, source.config, split=source.split, cache_dir=cache_dir)
    except Exception:  # noqa: BLE001 - not in the cache (offline): say what is needed
        raise MasktaxError(
            f"the {name} set needs {names} (or .json, .parquet, .csv) {where}, or the `datasets` cache of "
            f"'{source.hub}'{config} split {source.split}, cached once online with {_hub_hint(source)}") from None
    return [dict(r) for r in rows]


class _quiet:
    """Context manager: no `datasets` progress bars (stderr keeps the one-line errors and our own bar)."""

    def __init__(self, datasets_module) -> None:
        self.datasets = datasets_module
        self.was = True

    def __enter__(self):
        self.was = self.datasets.is_progress_bar_enabled()
        self.datasets.disable_progress_bars()
        return self

    def __exit__(self, *exc) -> None:
        if self.was:
            self.datasets.enable_progress_bars()


class _offline:
    """Context manager: `datasets` and huggingface_hub offline (cache only) while loading."""

    def __init__(self, datasets_module) -> None:
        import huggingface_hub.constants as hub_constants

        self.targets = [(datasets_module.config, "HF_HUB_OFFLINE"), (hub_constants, "HF_HUB_OFFLINE")]
        self.saved: list = []

    def __enter__(self):
        self.saved = [getattr(obj, attr, None) for obj, attr in self.targets]
        for obj, attr in self.targets:
            setattr(obj, attr, True)
        return self

    def __exit__(self, *exc) -> None:
        for (obj, attr), value in zip(self.targets, self.saved, strict=True):
            setattr(obj, attr, value)


def icl_items(name: str, rows: list[dict]) -> list[Item]:
    """Rows -> items of an ICL set, after its filters (dropped labels, text length)."""
    source = ICL_SETS[name]
    items = []
    for row in rows:
        label = int(row["label"])
        if label in source.drop_labels or not 0 <= label < len(source.labels):
            continue
        texts = [str(row[col]).strip() for col, _ in source.fields]
        if source.max_chars is not None and any(len(t) >= source.max_chars for t in texts):
            continue
        items.append(Item("\n".join(f"{shown}: {t}" for (_, shown), t in zip(source.fields, texts, strict=True)), label))
    return items


def build_icl(name: str, *, seed: int = 0, shots: int = ICL_SHOTS, data_dir: str | None = None,
              cache_dir: str | None = None) -> TaskSet:
    """One ICL set: a label-balanced pool of `POOL_SIZE` items and up to `MAX_TESTS` tests."""
    if name not in ICL_SETS:
        raise MasktaxError(f"unknown ICL set '{name}'; choose from {', '.join(ICL_SETS)}")
    source = ICL_SETS[name]
    items = icl_items(name, load_rows(name, source, data_dir, cache_dir=cache_dir))
    rng = random.Random(derived_seed(seed, "icl", name))
    ordered = balanced_order(items, len(source.labels), rng)
    size = min(POOL_SIZE, len(ordered) // 2)  # a small set (a test fixture) keeps half for the tests
    pool = ordered[:size]
    tests = balanced_order(ordered[size:], len(source.labels), rng)[:MAX_TESTS]
    return TaskSet("icl", name, source.labels, tuple(pool), tuple(tests), shots)


OR_CLAUSE = re.compile(r"^(?P<a>.+?) or (?P<b>.+?)\?*$")


def hotpot_options(question: str, answer: str) -> tuple[str, str] | None:
    """(X, Y) of a binary "..., X or Y?" question whose answer is X or Y; None otherwise."""
    clause = question.strip().rsplit(", ", 1)[-1] if ", " in question else ""
    match = OR_CLAUSE.match(clause.strip())
    if match is None or " or " in match["b"]:
        return None
    a, b = match["a"].strip(), match["b"].strip().rstrip("?").strip()
    if not a or not b or a.lower() == b.lower() or answer.strip().lower() not in (a.lower(), b.lower()):
        return None
    return a, b


def hotpot_context(context: object) -> str:
    """The distractor paragraphs, `Title: sentences`, joined by spaces (both the `datasets` layout
    {"title": [...], "sentences": [[...]]} and the official [[title, [sentences]], ...])."""
    if isinstance(context, dict):
        pairs = list(zip(context["title"], context["sentences"], strict=True))
    else:
        pairs = [(title, sentences) for title, sentences in context]  # type: ignore[union-attr]
    return " ".join(f"{title}: {''.join(sentences).strip()}" for title, sentences in pairs)


def hotpot_text(context: str, question: str, options: tuple[str, str]) -> str:
    """An item's text before `**Answer**:[` ([P1]'s format)."""
    return f"**Context**:\n'{context}'.\n\n**Question**: '{question}' [A] {options[0]}\n [B] {options[1]}"


def hotpot_items(rows: list[dict]) -> list[Item]:
    """Usable questions (binary "X or Y" with the answer among the options), in split order."""
    items = []
    for row in rows:
        options = hotpot_options(str(row["question"]), str(row["answer"]))
        if options is None:
            continue
        answer = [o.lower() for o in options].index(str(row["answer"]).strip().lower())
        items.append(Item(hotpot_text(hotpot_context(row["context"]), str(row["question"]).strip(), options), answer))
    return items


def build_hotpotqa(*, seed: int = 0, shots: int = 1, data_dir: str | None = None,
                   cache_dir: str | None = None) -> TaskSet:
    """HotPotQA: the first usable question is the in-context example; the tests are the others whose
    prompt stays under `HOTPOT_MAX_CHARS`, up to `MAX_TESTS`, in split order."""
    if shots not in (0, 1):
        raise MasktaxError(f"hotpotqa has one in-context example ([P1]); --shots must be 0 or 1, got {shots}")
    items = hotpot_items(load_rows("hotpotqa", HOTPOTQA, data_dir, cache_dir=cache_dir))
    if not items:
        raise MasktaxError("the hotpotqa split holds no binary 'X or Y' question")
    example = items[0]
    tests = [it for it in items[1:] if len(example.text) + len(it.text) < HOTPOT_MAX_CHARS][:MAX_TESTS]
    return TaskSet("hotpotqa", "hotpotqa", HOTPOTQA.labels, (example,), tuple(tests), shots, system=HOTPOT_SYSTEM,
                   answer_prefix="**Answer**:[", answer_close="]")
