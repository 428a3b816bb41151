"""`masktax.tasks.external` and `masktax.tasks.registry`: the HotPotQA and ICL-set loaders on the tiny
fixture files of tests/tasks/fixtures (real column layouts), their filters, and the one-line error
when a set is missing. Nothing downloads: the `datasets` cache is a temporary directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from masktax.errors import MasktaxError
from masktax.tasks import external
from masktax.tasks.registry import SuiteChoice, suite_datasets

FIXTURES = Path(__file__).resolve().parent / "fixtures"
pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("hf-cache"))


def load(suite: str, names=None, *, shots=4, data=FIXTURES, cache_dir=None, labels="words"):
    return suite_datasets(SuiteChoice(suite, shots, labels, str(data)), names=names, cache_dir=cache_dir)


def test_icl_sets_from_local_files(cache):
    tasks = {t.name: t for t in load("icl", cache_dir=cache)}
    assert list(tasks) == ["sst2", "rotten_tomatoes", "ag_news", "mrpc", "rte", "qnli"]
    for task in tasks.values():
        n = len(task.labels)
        assert task.shots == 4 and not set(task.pool) & set(task.tests)
        for items in (task.pool, task.tests):  # label-balanced in every prefix
            for k in range(1, len(items) + 1):
                counts = [sum(it.answer == a for it in items[:k]) for a in range(n)]
                assert max(counts) - min(counts) <= 1
    assert tasks["sst2"].labels == ("negative", "positive")
    assert tasks["sst2"].example_text(tasks["sst2"].pool[0]).startswith("Review: ")
    assert tasks["sst2"].example_text(tasks["sst2"].pool[0]).endswith(
        f"\nAnswer:[{tasks['sst2'].labels[tasks['sst2'].pool[0].answer]}].")
    rt = tasks["rotten_tomatoes"].pool[0].text
    assert rt.startswith("Review: ") and rt[8:] == rt[8:].lower()  # read from the csv (lower-case texts)
    rte = tasks["rte"].pool[0].text.split("\n")
    assert rte[0].startswith("Premise: ") and rte[1].startswith("Hypothesis: ")
    assert tasks["rte"].labels == ("yes", "no") and tasks["mrpc"].labels == ("no", "yes")


def test_ag_news_filters(cache):
    (task,) = load("icl", ("ag_news",), cache_dir=cache)
    assert task.labels == ("World", "Sports", "Business")
    items = task.pool + task.tests
    assert len(items) == 30  # 34 rows: 3 Science/Technology and one text of 500+ characters dropped
    assert all(len(it.text) < 500 + len("Article: ") for it in items)
    assert {it.answer for it in items} == {0, 1, 2}


def test_hotpotqa_format_and_filters(cache, tmp_path):
    (task,) = load("hotpotqa", shots=None, cache_dir=cache)
    assert task.labels == ("A", "B") and task.shots == 1 and len(task.pool) == 1
    assert task.system == "Which of the following answers is true? Respond with [A] or [B]."
    example = task.example_text(task.pool[0])
    assert example.startswith("**Context**:\n'Arthur's Magazine: Arthur's Magazine was an American literary periodical.")
    assert example.endswith("'.\n\n**Question**: 'Which magazine was started first, Arthur's Magazine or First for "
                            "Women?' [A] Arthur's Magazine\n [B] First for Women\n**Answer**:[A]")
    questions = [it.text.split("**Question**: '")[1].split("'")[0] for it in task.tests]
    assert "Were Scott Derrickson and Ed Wood of the same nationality?" not in questions  # yes/no
    assert "Is Paris or Lyon the capital of France?" not in questions  # no "..., X or Y" clause
    assert "Which is older, the Louvre or the Prado?" not in questions  # prompt too long
    assert len(task.tests) == 7 and [it.answer for it in task.tests] == [1, 0, 1, 0, 0, 1, 1]
    official = tmp_path / "official"
    official.mkdir()
    shutil.copy(FIXTURES / "hotpot_dev_distractor_v1.json", official)
    (same,) = load("hotpotqa", shots=None, data=official, cache_dir=cache)  # the official release file: same items
    assert same == task


def test_hotpot_options_parse():
    assert external.hotpot_options("Who was born first, Alan Turing or John von Neumann?", "John von Neumann") == (
        "Alan Turing", "John von Neumann")
    assert external.hotpot_options("Which is older, the Louvre or the Prado?", "the louvre") == ("the Louvre", "the Prado")
    assert external.hotpot_options("Which is older, the Louvre or the Prado?", "Paris") is None
    assert external.hotpot_options("Is Paris or Lyon the capital?", "Paris") is None
    assert external.hotpot_options("Which one, A or B or C?", "A") is None


def test_missing_set_is_one_line_naming_file_and_datasets_name(tmp_path, cache):
    with pytest.raises(MasktaxError) as err:
        load("icl", ("sst2",), data=tmp_path, cache_dir=cache)
    message = str(err.value)
    assert "\n" not in message
    assert f"needs sst2.jsonl (or .json, .parquet, .csv) under --data {tmp_path}" in message
    assert "'nyu-mll/glue' (sst2) split validation" in message
    with pytest.raises(MasktaxError, match="hotpotqa.jsonl or hotpot_dev_distractor_v1.json"):
        load("hotpotqa", shots=None, data=tmp_path, cache_dir=cache)


def test_choices_are_validated(cache):
    with pytest.raises(MasktaxError, match="--suite must be one of main, mdc, hotpotqa, icl"):
        SuiteChoice("glue")
    with pytest.raises(MasktaxError, match="apply to the appendix suites"):
        SuiteChoice("main", shots=5)
    with pytest.raises(MasktaxError, match="unknown dataset"):
        suite_datasets(SuiteChoice("mdc"), names=("sst2",))
    with pytest.raises(MasktaxError, match="--shots must be 0 or 1"):
        load("hotpotqa", shots=3)
    (letters,) = load("icl", ("sst2",), labels="letters", cache_dir=cache)
    assert letters.labels == ("A", "B")
