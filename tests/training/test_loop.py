"""The shared pieces of the training loops: StepLoop (stop, budget, checkpoints), StopFlag, the lr schedule."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from masktax.training.loop import StepLoop, lr_at


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


def test_step_loop_saves_after_an_error_only_when_asked(tmp_path: Path) -> None:
    for on_error, expected in ((True, [1]), (False, [])):
        saved: list[int] = []
        with pytest.raises(RuntimeError), _loop(tmp_path / str(on_error), saved, save_on_error=on_error) as loop:
            loop.running(0)
            loop.tick(1)
            raise RuntimeError("boom")
        assert saved == expected


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
