"""The training run directory: opening it (`open_training_dir`: an output path that is a file is
refused, a start that failed before training is replaced by the corrected command, a killed run's
temporary directories are removed), `final/` written in one piece (`write_final`), and what a
training command says and returns when its run ends (`end_of_run`; how a run ends:
`training.loop`'s docstring).

Layout: `config.json`, `env.json`, `metrics.csv` (and `suite_eval.csv`, `data_stats.json`,
`tensorboard/` or `tb/` by recipe), `step-NNNNNN/` checkpoints (`training.loop`), `final/` with
`training_state.json` (the run's last state plus `finished`, `stopped_by`, `max_steps`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from masktax.errors import MasktaxError
from masktax.results.store import CONFIG, open_run_dir
from masktax.training.loop import latest_checkpoint, write_json

FINAL = "final"
TRAINING_STATE = "training_state.json"
EXIT_TERMINATED = 143  # 128 + SIGTERM: a training command stopped by SIGTERM (final/ holds an unfinished run)
METRICS_FILES = ("metrics.csv", "suite_eval.csv")
# What a start writes before its first checkpoint; a run dir holding only these (and no metrics
# row) has not trained, so a corrected command may take it over (`open_training_dir`).
START_FILES = (CONFIG, "env.json", "data_stats.json", *METRICS_FILES, "tensorboard", "tb")


def open_training_dir(
    out: str | Path, config: dict, *, free: Sequence[str] = (), normalize: Callable[[dict], dict] | None = None
) -> None:
    """Create or reopen the run dir `out` for `config` (`results.store.open_run_dir`: the same config,
    or only the `free` fields changed, resumes), after two checks of the training side.

    `out` must be a directory (or not exist). A run dir whose start failed (it holds no checkpoint,
    no metrics row and nothing but what a start writes) has not trained: a corrected command with
    another config replaces it instead of being refused. Leftover temporary checkpoint and final/
    directories of a killed run are removed.
    """
    out = check_out_dir(out)
    if out.is_dir():
        for tmp in (*out.glob(".tmp-step-*"), *out.glob(f".tmp-{FINAL}"), *out.glob(f".old-{FINAL}")):
            shutil.rmtree(tmp, ignore_errors=True)
        if (out / CONFIG).is_file() and not began(out):
            (out / CONFIG).unlink()
    open_run_dir(out, config, free=free, normalize=normalize)


def check_out_dir(out: str | Path) -> Path:
    """`out` as a Path; MasktaxError when it exists and is not a directory (called before any slow work)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MasktaxError(f"--out '{out}' is a file, not a directory; pass a directory for the run")
    return out


def began(out: str | Path) -> bool:
    """Whether the run dir `out` has trained, or may hold something other than a failed start: True
    unless it holds masktax's env.json, no checkpoint, no metrics row and nothing a start does not
    write (only then does `open_training_dir` let another config take it over)."""
    out = Path(out)
    try:
        env = json.loads((out / "env.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    if not isinstance(env, dict) or "masktax" not in env or latest_checkpoint(out) is not None:
        return True
    for name in METRICS_FILES:
        path = out / name
        if path.is_file() and path.read_bytes().count(b"\n") > 1:  # a row after the header
            return True
    return any(p.name not in START_FILES for p in out.iterdir())


def write_dir(dest: Path, write: Callable[[Path], None]) -> Path:
    """`dest` in one piece: `write(dir)` fills a temporary sibling directory, which then replaces
    `dest` (an error or a kill meanwhile leaves the previous `dest`, or none, never a partial one;
    the temporary directory is removed on an error, and by the next write after a kill)."""
    tmp, old = dest.with_name(f".tmp-{dest.name}"), dest.with_name(f".old-{dest.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        write(tmp)
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return dest


def write_final(out: Path, write: Callable[[Path], None], state: dict[str, Any]) -> Path:
    """`out/final/` in one piece (`write_dir`): what `write(dir)` saves, plus `state` as training_state.json."""

    def fill(path: Path) -> None:
        write(path)
        write_json(path / TRAINING_STATE, state)

    return write_dir(out / FINAL, fill)


def end_of_run(state: dict[str, Any], out: str | Path) -> tuple[int, str | None]:
    """The exit status of a training command whose `run()` returned `state`, and the line (or None)
    it says on stderr (`training.loop`'s docstring: 0 when finished or out of time budget, 143 after SIGTERM)."""
    if state.get("finished", True):
        return 0, None
    step, total, final = state["step"], state.get("max_steps"), Path(out) / FINAL
    at = f"step {step}" + (f" of {total}" if total else "")
    if state.get("stopped_by") == "SIGTERM":
        return EXIT_TERMINATED, (f"stopped by SIGTERM at {at}; {final} holds that step, not a finished run "
                                 "(training_state.json: finished false); rerun the same command to resume")
    return 0, (f"the time budget ended the run at {at}; {final} holds that step, not a finished run; "
               "rerun the same command to continue")
