"""A probe sweep killed at random moments (SIGKILL) or interrupted (SIGINT) loses nothing: resumed,
its files are byte-identical to an uninterrupted run's; a report of an unfinished run says so."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from masktax.cli.main import main

DATASETS = "country__smallest,verb__largest,colour__smallest"
KEPT = ("items.jsonl", "summary.json", "summary.csv", "config.json")


def argv(ckpts: dict, out: Path) -> list[str]:
    return ["probe", "masks", "--model", ckpts["llada"], "--model", ckpts["ar"], "--n-items", "3",
            "--datasets", DATASETS, "--grid", "0,2,8,30", "--batch-size", "2", "--no-progress", "--out", str(out)]


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "masktax.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def kill_after_items(proc: subprocess.Popen, items: Path, at_least: int, timeout: float = 60.0) -> bool:
    """SIGKILL once items.jsonl has grown past `at_least` lines; False if the run finished first."""
    end = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        if lines(items) > at_least:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)
    proc.wait()
    return False


@pytest.fixture(scope="module")
def full(tiny_ckpts, tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must equal."""
    out = tmp_path_factory.mktemp("faults") / "full"
    assert main(argv(tiny_ckpts, out)) == 0
    return out


def test_sigkill_at_random_moments_resumes_byte_identical(tiny_ckpts, tmp_path, full):
    total = lines(full / "items.jsonl")
    rng = random.Random(0)
    cut = tmp_path / "cut"
    kills = 0
    for _ in range(5):
        done = lines(cut / "items.jsonl")
        if done >= total:
            break
        kills += kill_after_items(start(argv(tiny_ckpts, cut)), cut / "items.jsonl", done + rng.randint(0, 8))
    assert kills >= 2, "the runs finished before they could be killed; the test did not test anything"
    assert main(argv(tiny_ckpts, cut)) == 0
    for name in KEPT:
        want = (full / name).read_text().replace(str(full), "OUT")
        assert (cut / name).read_text().replace(str(cut), "OUT") == want, name


def test_sigint_exits_nonzero_says_how_to_resume_and_resumes(tiny_ckpts, tmp_path, full):
    out = tmp_path / "run"
    proc = start(argv(tiny_ckpts, out))
    end = time.monotonic() + 60
    while lines(out / "items.jsonl") < 4 and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "masktax: interrupted; rerun the same command to resume"
    assert "Traceback" not in err
    assert not (out / "summary.json").exists()  # nothing that looks like a finished run
    assert main(argv(tiny_ckpts, out)) == 0
    assert (out / "items.jsonl").read_bytes() == (full / "items.jsonl").read_bytes()


def test_report_of_an_unfinished_run_says_partial_with_counts(tmp_path, full, capsys):
    out = tmp_path / "run"
    shutil.copytree(full, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["state"] == "complete" and summary["run"]["items_done"] == summary["run"]["items_expected"]
    rows = (out / "items.jsonl").read_bytes().splitlines(keepends=True)
    (out / "items.jsonl").write_bytes(b"".join(rows[:5]))  # as if killed after 5 items
    assert main(["report", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["state"] == "partial" and summary["run"]["items_done"] == 5
    report = (out / "report.md").read_text()
    assert f"PARTIAL RUN: 5 of {summary['run']['items_expected']} items scored" in report
    assert main(["compare", str(out), "--out", str(tmp_path / "cmp")]) == 0
    assert "(PARTIAL)" in capsys.readouterr().out
    assert "PARTIAL RUN" in (tmp_path / "cmp" / "compare.md").read_text()
