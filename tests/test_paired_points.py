"""scripts/paired_points.py: a paired difference between points of two probe runs on the same items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripts_loader import load_script


def fake_run(path: Path, series: str, per_x: dict[int, dict[str, float]], n_items: int = 6) -> Path:
    path.mkdir(parents=True)
    points = [{"series": series, "x": x, "accuracy": sum(per.values()) / len(per), "per_dataset": per}
              for x, per in per_x.items()]
    (path / "summary.json").write_text(json.dumps({"probe": series, "models": {"m": points}}))
    (path / "config.json").write_text(json.dumps({"seed": 0, "n_items": n_items, "datasets": None}))
    return path


def test_paired_difference_and_its_ci(tmp_path, capsys):
    mod = load_script("paired_points")
    a = fake_run(tmp_path / "a", "one_mask", {0: {"d1": 1.0, "d2": 0.9, "d3": 0.8}})
    b = fake_run(tmp_path / "b", "masks", {2: {"d1": 0.8, "d2": 0.7, "d3": 0.6}, 200: {"d1": 1.0, "d2": 0.9, "d3": 0.8}})
    assert mod.main([f"{a}:one_mask:0", f"{b}:masks:2"]) == 0
    out = capsys.readouterr().out
    assert "A - B: +20.0 points, paired 95% CI [+20.0, +20.0] over 3 datasets" in out  # a constant shift
    mod.main([f"{a}:one_mask:0", f"{b}:masks:200"])
    assert "+0.0 points" in capsys.readouterr().out


def test_refuses_unpaired_runs_and_missing_points(tmp_path):
    mod = load_script("paired_points")
    a = fake_run(tmp_path / "a", "one_mask", {0: {"d1": 1.0, "d2": 0.5}})
    b = fake_run(tmp_path / "b", "masks", {2: {"d1": 0.5, "d2": 0.5}}, n_items=16)
    with pytest.raises(SystemExit, match="different items"):
        mod.main([f"{a}:one_mask:0", f"{b}:masks:2"])
    with pytest.raises(SystemExit, match=r"no point masks:5 .*has masks:2"):
        mod.main([f"{b}:masks:5", f"{b}:masks:2"])
    with pytest.raises(SystemExit, match="RUN_DIR:SERIES:X"):
        mod.main([f"{a}:one_mask", f"{b}:masks:2"])
    with pytest.raises(SystemExit, match="no summary.json"):
        mod.main([f"{tmp_path / 'nope'}:masks:2", f"{b}:masks:2"])
