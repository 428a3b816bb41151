"""Training commands stopped from outside, run as a user runs them (`python -m masktax.cli.main` in a
subprocess, one torch thread): `masktax pretrain` and `masktax finetune` on tiny configs.

- SIGKILL at seeded random moments (3 kills per command; the test reads metrics.csv to know how far
  a run got, then waits a seeded fraction of a step more, so kills land mid-step, mid-row or
  mid-checkpoint), then the same command to the end: metrics.csv (less its wall-clock columns),
  final/'s weights (bytes), final/training_state.json and the newest checkpoint equal the
  uninterrupted run's.
- Ctrl-C (SIGINT), then SIGTERM on the resumed run, at seeded steps: Ctrl-C exits 130 with one
  stderr line saying how to resume, a checkpoint of the step in progress and no final/; SIGTERM
  exits 143 with one line naming the step and how to resume, final/ of that step marked
  `finished: false`; the same command then ends as the uninterrupted run, final/ marked finished.
Both commands run side by side (two cores, one torch thread each).
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tiny import tiny_checkpoint

STEPS = 40  # long enough for three kills well inside the run (a tiny step takes ~30 ms)
TIMING = ("elapsed_s", "tokens_per_s")  # wall-clock columns: the only ones a kill may change
WEIGHTS = {"pretrain": "model.safetensors", "finetune": "adapter_model.safetensors"}
WORDS = {
    "animals": ["cat", "dog", "horse", "sheep", "goat", "mouse"],
    "fruits": ["apple", "pear", "plum", "grape", "lemon", "mango"],
    "colours": ["red", "blue", "green", "yellow", "purple", "orange"],
    "countries": ["France", "Japan", "Peru", "Chile", "Kenya", "Spain"],
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def commands(tmp_path_factory) -> dict[str, list[str]]:
    """The argv (less --out) of each command: a tiny pretraining config, a tiny LoRA fine-tuning config."""
    root = tmp_path_factory.mktemp("cfg")
    (root / "words.json").write_text(json.dumps(WORDS))
    pretrain = {
        "name": "tiny", "words_file": str(root / "words.json"),
        "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "n_kv_heads": 2, "d_ff": 64},
        "batch_size": 3, "gate_every": 6, "gate_size": 6, "save_every": 4, "log_every": 1, "warmup_steps": 2,
        "stages": [
            {"name": "S0", "spec": {"n_examples": [2, 3], "distractor_share": [0, 0], "repeat_prob": 1.0,
                                    "n_categories": 3, "rules": ["category"], "max_tokens": 96}},
            {"name": "S4", "spec": {"n_examples": [3, 6], "distractor_share": [0.1, 0.8], "max_tokens": 192}},
        ],
    }
    finetune = {"model": str(tiny_checkpoint("llada", root / "llada")), "data": "synthetic", "synthetic_n": 40,
                "max_context": 96, "min_masks": 4, "max_masks": 16, "curriculum_steps": 4, "batch_size": 2,
                "grad_accum": 1, "lora_rank": 4, "save_every": 4, "lr": 1e-3}
    (root / "pretrain.json").write_text(json.dumps(pretrain))
    (root / "finetune.json").write_text(json.dumps(finetune))
    common = ["--max-steps", str(STEPS), "--device", "cpu", "--no-progress"]
    return {name: [sys.executable, "-m", "masktax.cli.main", name, "--config", str(root / f"{name}.json"), *common]
            for name in ("pretrain", "finetune")}


def start(argv: list[str], out: Path) -> subprocess.Popen:
    return subprocess.Popen([*argv, "--out", str(out)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture(scope="module")
def references(commands, tmp_path_factory) -> dict[str, Path]:
    """The uninterrupted run of each command (both at once: one thread each)."""
    root = tmp_path_factory.mktemp("ref")
    procs = {name: start(argv, root / name) for name, argv in commands.items()}
    for proc in procs.values():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    return {name: root / name for name in commands}


def rows_done(out: Path) -> int:
    """Complete metrics rows written so far (one per step: log_every 1)."""
    try:
        return max(0, (out / "metrics.csv").read_bytes().count(b"\n") - 1)
    except FileNotFoundError:
        return 0


def run_until(proc: subprocess.Popen, out: Path, rows: int) -> None:
    """Wait until the run has written `rows` metrics rows; it must still be training then."""
    deadline = time.monotonic() + 120
    while rows_done(out) < rows:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.005)


def results(run: Path, name: str) -> dict:
    """Everything a resumed run must reproduce exactly, with the wall-clock fields left out."""
    with io.StringIO((run / "metrics.csv").read_text(), newline="") as f:
        metrics = [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]
    final_state = json.loads((run / "final" / "training_state.json").read_text())
    ckpts = sorted(p.name for p in run.glob("step-*"))
    ckpt_state = json.loads((run / ckpts[-1] / "state.json").read_text())
    return {
        "config": (run / "config.json").read_text(),
        "metrics": metrics,
        "final_weights": (run / "final" / WEIGHTS[name]).read_bytes(),
        "final_state": {k: v for k, v in final_state.items() if k != "elapsed_s"},
        "checkpoints": ckpts,
        "checkpoint_weights": (run / ckpts[-1] / "model.safetensors").read_bytes(),
        "checkpoint_state": {k: v for k, v in ckpt_state.items() if k != "elapsed_s"},
        "leftovers": sorted(p.name for p in run.iterdir() if p.name.startswith(".")),
    }


def differing(run: Path, reference: Path, name: str) -> list[str]:
    """The fields of `results` in which a run differs from the reference (an empty list when none);
    a failure names them instead of printing two whole dicts."""
    got, want = results(run, name), results(reference, name)
    return [key for key in want if got[key] != want[key]]


def finish(argv: list[str], out: Path) -> None:
    proc = start(argv, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def on_both(commands: dict[str, list[str]], scenario, root: Path) -> dict:
    """`scenario(name, argv, out)` for both commands at once (two cores, one thread each); its result per name."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(scenario, name, argv, root / name) for name, argv in commands.items()}
    return {name: future.result() for name, future in futures.items()}


def stop_with(signum: int, argv: list[str], out: Path, rows: int) -> tuple[int, list[str]]:
    """Send `signum` once the run has written `rows` rows; its exit status and stderr lines."""
    proc = start(argv, out)
    run_until(proc, out, rows)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    return proc.returncode, [line for line in err.splitlines() if line.strip()]


def test_sigkill_at_seeded_random_moments_then_rerun_equals_the_uninterrupted_run(
    commands, references, tmp_path: Path
) -> None:
    def kill_three_times_then_finish(name: str, argv: list[str], out: Path) -> list[int]:
        rng = random.Random(f"sigkill/{name}/0")
        kills = []
        for target in sorted(rng.sample(range(3, STEPS - 8), 3)):
            proc = start(argv, out)
            run_until(proc, out, target)
            time.sleep(rng.uniform(0.0, 0.03))  # up to about one step more: mid-step, mid-row or mid-checkpoint
            assert proc.poll() is None
            proc.kill()
            proc.communicate()
            assert proc.returncode == -signal.SIGKILL and not (out / "final").exists()
            kills.append(rows_done(out))
        finish(argv, out)
        assert differing(out, references[name], name) == [], f"{name}: killed after rows {kills}"
        assert results(out, name)["leftovers"] == []
        return kills

    kills = on_both(commands, kill_three_times_then_finish, tmp_path)
    for at in kills.values():  # three kills each, inside the run, each after the previous one
        assert len(at) == 3 and at == sorted(at) and 0 < at[0] and at[-1] < STEPS


def test_ctrl_c_then_sigterm_stop_honestly_and_the_rerun_equals_the_uninterrupted_run(
    commands, references, tmp_path: Path
) -> None:
    def interrupt_terminate_finish(name: str, argv: list[str], out: Path) -> None:
        rng = random.Random(f"signals/{name}")
        first, second = sorted(rng.sample(range(3, 30), 2))
        # Ctrl-C: exit 130, one line saying how to resume, the step in progress saved, no final/
        status, err = stop_with(signal.SIGINT, argv, out, first)
        assert status == 130 and len(err) == 1 and err[0].startswith("masktax: interrupted")  # the CLI boundary's line
        assert "rerun the same command to resume" in err[0]
        assert not (out / "final").exists() and not list(out.glob(".*"))
        newest = sorted(out.glob("step-*"))[-1]
        assert int(newest.name.removeprefix("step-")) == rows_done(out) >= first
        # SIGTERM (the same command resumed, then stopped): exit 143, final/ of that step marked unfinished
        status, err = stop_with(signal.SIGTERM, argv, out, second)
        state = json.loads((out / "final" / "training_state.json").read_text())
        step = state["step"]
        assert status == 143 and state["finished"] is False and state["stopped_by"] == "SIGTERM"
        assert (out / f"step-{step:06d}").is_dir() and second <= step == rows_done(out) < STEPS
        assert err[-1].startswith(f"masktax: stopped by SIGTERM at step {step} of {STEPS}; ")
        assert err[-1].endswith("rerun the same command to resume")
        assert len([line for line in err if "rerun" in line]) == 1
        # the same command again: the uninterrupted run's results, final/ marked finished
        finish(argv, out)
        assert json.loads((out / "final" / "training_state.json").read_text())["finished"] is True
        assert differing(out, references[name], name) == []

    on_both(commands, interrupt_terminate_finish, tmp_path)
