"""The probe suite as lm-eval tasks (masktax.lmeval.tasks): documents equal to `masktax suite export`'s,
the YAML group loads offline, and `python -m masktax.lmeval` adds the include path."""

from __future__ import annotations

import pytest

from masktax.errors import MasktaxError
from masktax.lmeval.__main__ import with_include_path
from masktax.lmeval.tasks import TASKS_DIR
from masktax.lmeval.tasks.suite_data import load
from masktax.tasks.export import export_suite
from masktax.tasks.suite import dataset_names


def test_documents_end_at_the_answer_and_equal_the_export(tmp_path):
    built = load(dataset="verb__largest", suite_n_test=6)["test"].to_list()
    assert len(built) == 6
    for doc in built:
        assert doc["prompt"].endswith("\nAnswer:[") and doc["answer"] == "ABC"[doc["label"]]
        assert doc["prompt"].count("Answer:[") == 51  # 10 relevant + 40 distractor examples, then the question
    export_suite(tmp_path, n_test=6)
    assert load(dataset="verb__largest", suite_dir=str(tmp_path))["test"].to_list() == built
    with pytest.raises(MasktaxError, match="unknown suite dataset"):
        load(dataset="verb")


def test_task_group_loads_offline():
    from lm_eval.tasks import TaskManager, get_task_dict

    tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"suite_n_test": 3})
    for kind in ("next", "mc"):
        assert f"masktax_suite_{kind}" in tm.all_groups
        assert {f"masktax_suite_{kind}_{n}" for n in dataset_names()} <= set(tm.all_tasks)
    tasks = get_task_dict(["masktax_suite_next_colour__smallest", "masktax_suite_mc_colour__smallest"], tm)
    nxt, mc = tasks["masktax_suite_next_colour__smallest"], tasks["masktax_suite_mc_colour__smallest"]
    doc = nxt.test_docs()[0]
    assert len(nxt.test_docs()) == 3 and nxt.doc_to_text(doc).endswith("Answer:[")
    assert nxt.doc_to_target(doc) == doc["answer"] and nxt.config.target_delimiter == ""
    assert mc.doc_to_choice(doc) == ["A", "B", "C"] and mc.doc_to_target(doc) == doc["label"]


@pytest.mark.parametrize("argv,added", [
    (["run", "--model", "masktax", "--tasks", "masktax_suite_next"], True),
    (["--model", "masktax", "--tasks", "x"], True),
    (["ls", "tasks"], True),
    (["run", "--include_path", "mine", "--tasks", "x"], False),
    (["run", "--include_path=mine"], False),
    (["--help"], True),
    ([], False),
])
def test_module_cli_adds_the_suite_include_path(argv, added):
    out = with_include_path(argv)
    assert (out == [*argv, "--include_path", str(TASKS_DIR)]) is added
