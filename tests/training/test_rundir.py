"""The training run dir: a failed start replaced, leftovers removed, final/ in one piece, the exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from masktax.errors import MasktaxError
from masktax.training.rundir import (
    EXIT_TERMINATED,
    began,
    end_of_run,
    open_training_dir,
    write_dir,
    write_final,
)


def test_end_of_run_exit_status_and_line(tmp_path: Path) -> None:
    assert end_of_run({"step": 7, "finished": True, "stopped_by": None, "max_steps": 7}, tmp_path) == (0, None)
    term = {"step": 2, "finished": False, "stopped_by": "SIGTERM", "max_steps": 7}
    status, line = end_of_run(term, tmp_path)
    assert status == EXIT_TERMINATED and "step 2 of 7" in line and line.endswith("rerun the same command to resume")
    status, line = end_of_run({**term, "stopped_by": "time budget"}, tmp_path)
    assert status == 0 and "time budget" in line and "not a finished run" in line


def test_write_dir_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    dest = tmp_path / "final"
    write_dir(dest, lambda p: (p / "a").write_text("1"))

    def broken(p: Path) -> None:
        (p / "b").write_text("2")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_dir(dest, broken)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["final"] and (dest / "a").read_text() == "1"
    write_final(tmp_path, lambda p: (p / "c").write_text("3"), {"step": 1})
    assert sorted(x.name for x in dest.iterdir()) == ["c", "training_state.json"]


def test_a_failed_start_may_be_taken_over_but_not_a_run_that_trained(tmp_path: Path) -> None:
    out = tmp_path / "run"
    open_training_dir(out, {"data": "bad.jsonl"})
    (out / "env.json").write_text(json.dumps({"masktax": "0"}))
    (out / "metrics.csv").write_text("step,loss\r\n")
    (out / ".tmp-step-000002").mkdir()
    open_training_dir(out, {"data": "good.jsonl"})  # nothing trained: the corrected command takes over
    assert json.loads((out / "config.json").read_text()) == {"data": "good.jsonl"}
    assert not (out / ".tmp-step-000002").exists()
    (out / "metrics.csv").write_text("step,loss\r\n1,0.5\r\n")
    with pytest.raises(MasktaxError, match="another config"):
        open_training_dir(out, {"data": "other.jsonl"})
    (out / "metrics.csv").write_text("step,loss\r\n")
    (out / "model.safetensors").write_bytes(b"")  # not what a start writes: never replaced
    assert began(out)
    with pytest.raises(MasktaxError, match="is a file"):
        open_training_dir(out / "config.json", {})
