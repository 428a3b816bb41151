"""`masktax compare` end to end: run dirs into one plot and table, and --paired points."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import typer
from probe_helpers import write_summary
from typer.testing import CliRunner

from masktax.cli import compare as compare_cli
from masktax.errors import MasktaxError


def fake_run(path: Path, series: str, per_x: dict[int, dict[str, float]], n_items: int = 6) -> Path:
    """A run dir with summary.json (model m, per-dataset accuracies) and the config fields pairing reads."""
    path.mkdir(parents=True)
    points = [{"series": series, "x": x, "accuracy": sum(per.values()) / len(per), "per_dataset": per}
              for x, per in per_x.items()]
    (path / "summary.json").write_text(json.dumps({"probe": series, "models": {"m": points}}))
    (path / "config.json").write_text(json.dumps({"seed": 0, "n_items": n_items, "datasets": None}))
    return path


def invoke(*args: str):
    """`masktax compare ARGS` on an app holding only this command (a MasktaxError ends up in .exception)."""
    app = typer.Typer()
    compare_cli.register(app)
    app.command("noop")(lambda: None)  # a second command keeps "compare" a named subcommand
    return CliRunner().invoke(app, ["compare", *args])


def test_compare_end_to_end(tmp_path: Path) -> None:
    before = write_summary(tmp_path / "before", {"single-step": [0.8, 0.6, 0.4]})
    after = write_summary(tmp_path / "after", {"single-step": [0.8, 0.78, 0.76], "random-2": [0.7, 0.7, 0.7]},
                          probe="unmask", rd={"embedded-mdlm": {"mean_over_steps": {"random": 0.05}, "steps": [2]}})
    out = tmp_path / "cmp"
    result = invoke(str(before), str(after), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "relative degradation 50.0%" in result.output
    for name in ("compare.png", "compare.csv", "compare.md"):
        assert (out / name).is_file()
    rows = list(csv.DictReader((out / "compare.csv").open()))
    assert len(rows) == 9
    rd = {(r["run"], r["series"]): float(r["relative_degradation"]) for r in rows}
    assert rd[("before", "single-step")] == pytest.approx(0.5)
    assert rd[("after", "single-step")] == pytest.approx(0.05)
    assert rd[("after", "random-2")] == pytest.approx(0.0)
    md = (out / "compare.md").read_text()
    assert "| after | embedded-mdlm | random | 2 | 5.0% |" in md and "50.0%" in md


def test_paired_difference_and_its_ci(tmp_path: Path) -> None:
    a = fake_run(tmp_path / "a", "one_mask", {0: {"d1": 1.0, "d2": 0.9, "d3": 0.8}})
    b = fake_run(tmp_path / "b", "masks", {2: {"d1": 0.8, "d2": 0.7, "d3": 0.6}, 200: {"d1": 1.0, "d2": 0.9, "d3": 0.8}})
    result = invoke("--paired", f"{a}:one_mask:0", f"{b}:masks:2")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "A - B: +20.0 points, paired 95% CI [+20.0, +20.0] over 3 datasets" in out  # a constant shift
    assert out == (f"A {a}:one_mask:0: 90.0%  B {b}:masks:2: 70.0%  A - B: +20.0 points, "
                   "paired 95% CI [+20.0, +20.0] over 3 datasets\n")  # the one line, and no files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert "+0.0 points" in invoke("--paired", f"{a}:one_mask:0", f"{b}:masks:200").output


def test_paired_with_out_also_compares_the_points_runs(tmp_path: Path) -> None:
    a = fake_run(tmp_path / "a", "one_mask", {0: {"d1": 1.0, "d2": 0.9, "d3": 0.8}})
    b = fake_run(tmp_path / "b", "masks", {2: {"d1": 0.8, "d2": 0.7, "d3": 0.6}, 200: {"d1": 1.0, "d2": 0.9, "d3": 0.8}})
    result = invoke("--paired", f"{a}:one_mask:0", f"{b}:masks:2", "--model", "m", "--out", str(tmp_path / "cmp"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("A ") and "b / masks: relative degradation 22.2%" in lines  # (0.9 - 0.7) / 0.9
    assert {r["run"] for r in csv.DictReader((tmp_path / "cmp" / "compare.csv").open())} == {"a", "b"}


def test_refuses_unpaired_runs_and_missing_points(tmp_path: Path) -> None:
    a = fake_run(tmp_path / "a", "one_mask", {0: {"d1": 1.0, "d2": 0.5}})
    b = fake_run(tmp_path / "b", "masks", {2: {"d1": 0.5, "d2": 0.5}}, n_items=16)
    for args, match in (
        ((f"{a}:one_mask:0", f"{b}:masks:2"), "different items"),
        ((f"{b}:masks:5", f"{b}:masks:2"), r"no point masks:5 .*has masks:2"),
        ((f"{a}:one_mask", f"{b}:masks:2"), "RUN_DIR:SERIES:X"),
        ((f"{tmp_path / 'nope'}:masks:2", f"{b}:masks:2"), "no summary.json"),
        ((f"{a}:one_mask:0", f"{a}:one_mask:0", "--model", "x"), "no model 'x'"),
    ):
        error = invoke("--paired", *args).exception  # masktax.cli.main prints it as one line, exit 2
        assert isinstance(error, MasktaxError) and re.search(match, str(error)), (match, error)
