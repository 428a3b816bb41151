"""Every probe on the shipped models reproduces the golden fixture (see tests/golden_runs.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import golden_runs

FIXTURE = Path(__file__).resolve().parents[1] / "golden" / "probe_runs.json"


def test_golden_runs_reproduce(tmp_path):
    golden_runs.run_all(tmp_path)
    got = golden_runs.collect(tmp_path)
    want = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert sorted(got) == sorted(want), "the runs wrote other files than the fixture holds"
    differ = [name for name in want if not golden_runs.same_file(name, got[name], want[name])]
    assert not differ, f"files differ from the golden runs: {differ}"
    if os.environ.get("MASKTAX_GOLDEN_EXACT"):
        assert [n for n in want if got[n] != want[n]] == []


def test_tolerance_comparison_catches_a_changed_number():
    want = json.loads(FIXTURE.read_text(encoding="utf-8"))
    summary = json.loads(want["masks/summary.json"])
    point = next(p for pts in summary["models"].values() for p in pts)
    point["accuracy"] += 0.01
    assert not golden_runs.same_file("masks/summary.json", json.dumps(summary), want["masks/summary.json"])
    assert golden_runs.same_file("masks/summary.json", want["masks/summary.json"], want["masks/summary.json"])
