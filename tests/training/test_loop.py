"""The shared pieces of the training loops: StepLoop (signals, budget, checkpoints), StopFlag, metrics.csv, the
lr schedule."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from masktax.training.loop import STOPS, MetricsLog, StepLoop, lr_at


def _loop(out: Path, saved: list[int], **kw) -> StepLoop:
    def save(step: int) -> None:
        saved.append(step)
        (out / f"step-{step:06d}").mkdir(parents=True, exist_ok=True)
        (out / f"step-{step:06d}" / "state.json").write_text("{}")

    return StepLoop(out, save=save, progress=False, **{"step": 0, "max_steps": 7, "save_every": 3, **kw})


def test_step_loop_saves_every_k_steps_and_once_at_the_end(tmp_path: Path) -> None:
    saved: list[int] = []
    step = 0
    with _loop(tmp_path, saved) as loop:
        while loop.running(step):
            step += 1
            loop.tick(step, loss="0.1")
    assert step == 7 and saved == [3, 6, 7]
    saved.clear()
    with _loop(tmp_path, saved, step=6, max_steps=6) as loop:  # resumed at the end: a checkpoint exists, none written
        assert not loop.running(6)
    assert saved == []


def test_step_loop_stops_on_sigterm_and_on_the_time_budget(tmp_path: Path) -> None:
    saved: list[int] = []
    step = 0
    before = signal.getsignal(signal.SIGTERM)
    with _loop(tmp_path, saved, max_steps=100) as loop:
        while loop.running(step):
            step += 1
            if step == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # the flag stops the loop after this step
            loop.tick(step)
    assert step == 2 and saved == [2]
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is back
    with _loop(tmp_path / "b", [], max_minutes=1e-9) as loop:
        assert not loop.running(0)


def test_step_loop_saves_nothing_after_an_error(tmp_path: Path) -> None:
    saved: list[int] = []
    with pytest.raises(RuntimeError), _loop(tmp_path, saved) as loop:
        loop.running(0)
        loop.tick(1)
        raise RuntimeError("boom")  # mid-step: the weights may be a step ahead of the count
    assert saved == []


def test_a_first_ctrl_c_stops_at_the_step_boundary_and_a_second_at_once(tmp_path: Path) -> None:
    saved: list[int] = []
    step = 0
    before = signal.getsignal(signal.SIGINT)
    with _loop(tmp_path, saved, max_steps=100) as loop:
        while loop.running(step):
            step += 1
            if step == 4:
                os.kill(os.getpid(), signal.SIGINT)  # finishes this step, then the checkpoint
            loop.tick(step)
    assert step == 4 and saved == [3, 4] and loop.stopped_by == "SIGINT"
    with pytest.raises(KeyboardInterrupt):
        loop.raise_if_interrupted()
    assert signal.getsignal(signal.SIGINT) == before
    saved.clear()
    with pytest.raises(KeyboardInterrupt), _loop(tmp_path / "b", saved, max_steps=100) as loop:
        loop.running(0)
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # asked twice: raised mid-step, nothing saved
    assert saved == [] and signal.getsignal(signal.SIGINT) == before


def test_outcome_says_whether_the_run_finished(tmp_path: Path) -> None:
    with _loop(tmp_path, []) as loop:
        step = 0
        while loop.running(step):
            step += 1
            loop.tick(step)
    assert loop.outcome() == {"finished": True, "stopped_by": None, "max_steps": 7}
    with _loop(tmp_path / "b", [], max_minutes=1e-9) as loop:
        assert not loop.running(0)
    assert loop.outcome() == {"finished": False, "stopped_by": "time budget", "max_steps": 7}
    assert loop.outcome(done=True)["finished"] is True  # the recipe's own stop rule (pretraining's gate)


def test_processes_agree_on_the_strongest_stop(tmp_path: Path) -> None:
    seen: list[int] = []

    def agree(code: int) -> int:  # another process was sent SIGTERM
        seen.append(code)
        return max(code, STOPS.index("SIGTERM"))

    with _loop(tmp_path, [], agree=agree) as loop:
        assert not loop.running(0)
    assert seen == [0] and loop.stopped_by == "SIGTERM"


def test_metrics_log_drops_rows_past_the_checkpoint_and_a_torn_row(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    log = MetricsLog(path, ("step", "loss"), resume_step=None)
    for s in (1, 2, 3):
        log.write({"step": s, "loss": 0.5})
    with path.open("ab") as f:
        f.write(b"1")  # a kill mid-append of step 12's row
    MetricsLog(path, ("step", "loss"), resume_step=2)
    assert path.read_bytes() == b"step,loss\r\n1,0.5\r\n2,0.5\r\n"


def test_lr_schedule():
    kw = {"lr": 1.0, "warmup": 10, "max_steps": 110, "min_ratio": 0.1}
    assert lr_at(0, schedule="constant", **kw) == pytest.approx(0.1)
    assert lr_at(50, schedule="constant", **kw) == 1.0
    assert lr_at(10, schedule="cosine", **kw) == pytest.approx(1.0)
    assert lr_at(110, schedule="cosine", **kw) == pytest.approx(0.1)
    assert lr_at(60, schedule="cosine", **kw) == pytest.approx(0.55)
    wsd = {**kw, "schedule": "wsd", "decay_start": 50, "decay_steps": 20}
    assert lr_at(49, **wsd) == 1.0 and lr_at(50, **wsd) == pytest.approx(1.0)
    assert lr_at(60, **wsd) == pytest.approx(0.55) and lr_at(70, **wsd) == pytest.approx(0.1)
    assert lr_at(500, **wsd) == pytest.approx(0.1)


def test_pruning_removes_checkpoints_a_kill_left_half_deleted(tmp_path: Path) -> None:
    """A SIGKILL while an old checkpoint was being deleted left `step-*` without state.json (which the
    resume skips as incomplete); the next save removes it with the other old ones, and no hidden leftover."""
    import torch

    from masktax.training.loop import checkpoint_dirs, save_checkpoint

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in (4, 8):
        save_checkpoint(tmp_path, step, model, opt, {"step": step}, keep=2)
    (tmp_path / "step-000004" / "state.json").unlink()  # half-deleted by a kill
    (tmp_path / ".old-step-000002").mkdir()  # a kill between the move aside and the delete
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-000008"]
    save_checkpoint(tmp_path, 12, model, opt, {"step": 12}, keep=2)
    save_checkpoint(tmp_path, 12, model, opt, {"step": 12}, keep=2)  # the same step again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000008", "step-000012"]
