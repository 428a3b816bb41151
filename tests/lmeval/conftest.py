"""Fixtures of tests/lmeval: the tiny local tasks (tests/lmeval_tasks.py) and a TaskManager over them."""

from __future__ import annotations

from pathlib import Path

import pytest
from lmeval_tasks import write_tasks


@pytest.fixture(scope="session")
def tiny_tasks(tmp_path_factory) -> Path:
    return write_tasks(tmp_path_factory.mktemp("tiny_tasks"))


@pytest.fixture(scope="session")
def tiny_task_manager(tiny_tasks):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tiny_tasks), include_defaults=False)
