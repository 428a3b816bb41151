"""`masktax compare` end to end on two synthetic summary.json files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from masktax.cli import compare as compare_cli
from masktax.errors import MasktaxError
from masktax.report.names import label


def _summary(path: Path, accs: dict[str, list[float]], probe: str = "masks", rd: dict | None = None) -> Path:
    path.mkdir(parents=True)
    points = [{"series": s, "x": x, "accuracy": a, "ci95": [a - 0.05, a + 0.05], "per_dataset": {}}
              for s, values in accs.items() for x, a in zip((0, 10, 100), values, strict=True)]
    summary = {"schema_version": 1, "probe": probe, "models": {"embedded-mdlm": points}}
    if rd is not None:
        summary["relative_degradation"] = rd
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_compare_end_to_end(tmp_path: Path) -> None:
    before = _summary(tmp_path / "before", {"single-step": [0.8, 0.6, 0.4]})
    after = _summary(tmp_path / "after", {"single-step": [0.8, 0.78, 0.76], "random-2": [0.7, 0.7, 0.7]},
                     probe="unmask", rd={"embedded-mdlm": {"mean_over_steps": {"random": 0.05}, "steps": [2]}})
    app = typer.Typer()
    compare_cli.register(app)
    app.command("noop")(lambda: None)  # a second command keeps "compare" a named subcommand
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["compare", str(before), str(after), "--out", str(out)])
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


def test_overlay_puts_runs_in_one_panel_with_distinct_legend_names(tmp_path: Path) -> None:
    a = _summary(tmp_path / "a", {"masks": [0.8, 0.7, 0.6]})
    b = _summary(tmp_path / "b", {"masks": [0.8, 0.8, 0.8]})
    curves = compare_cli.compare_runs([a, b], tmp_path / "one", overlay=True)["curves"]
    assert (tmp_path / "one" / "compare.png").is_file() and all("_key" not in c for c in curves)
    # the same model in two runs: the overlaid legend names carry the run
    assert compare_cli.curve_names(curves, overlay=True) == ["a: embedded-mdlm", "b: embedded-mdlm"]
    assert compare_cli.curve_names(curves, overlay=False) == ["embedded-mdlm", "embedded-mdlm"]
    side = compare_cli.compare_runs([a, b], tmp_path / "two")["curves"]
    assert (tmp_path / "one" / "compare.png").read_bytes() != (tmp_path / "two" / "compare.png").read_bytes()
    assert len(side) == len(curves) == 2
    # different series (e.g. a masks run and a filler run of the same model): one panel each, so the
    # model keeps its plain name and one colour across the panels
    f = _summary(tmp_path / "f", {"filler": [0.8, 0.8, 0.7]})
    mixed = compare_cli.compare_runs([a, f], tmp_path / "three", overlay=True)["curves"]
    assert compare_cli.curve_names(mixed, overlay=True) == ["embedded-mdlm", "embedded-mdlm"]


def test_tables_name_a_final_dir_by_its_run_and_the_csv_keeps_the_id(tmp_path: Path) -> None:
    run = _summary(tmp_path / "r", {"masks": [0.8, 0.7, 0.6]})
    summary = json.loads((run / "summary.json").read_text())
    summary["models"] = {"runs/ma/ft_ce_tv/final": summary["models"]["embedded-mdlm"]}
    (run / "summary.json").write_text(json.dumps(summary))
    compare_cli.compare_runs([run], tmp_path / "out")
    assert "| r | ft_ce_tv | masks |" in (tmp_path / "out" / "compare.md").read_text()
    assert "runs/ma/ft_ce_tv/final" in (tmp_path / "out" / "compare.csv").read_text()


def test_compare_errors(tmp_path: Path) -> None:
    run = _summary(tmp_path / "r", {"single-step": [0.5, 0.4, 0.3]})
    with pytest.raises(MasktaxError, match="no summary.json"):
        compare_cli.compare_runs([tmp_path / "missing"], tmp_path / "o")
    with pytest.raises(MasktaxError, match="--label"):
        compare_cli.compare_runs([run], tmp_path / "o", ["a", "b"])
    with pytest.raises(MasktaxError, match="same name"):
        compare_cli.compare_runs([run, run], tmp_path / "o")


def test_short_names_for_checkpoint_paths(tmp_path) -> None:
    assert label("runs/ma_demo/ft_ce_tv/final") == "ft_ce_tv"
    assert label("runs/controlled/x/default/final") != label("runs/controlled/x/eostail/final")
    assert label("embedded-mdlm") == "embedded-mdlm"
    assert label("GSAI-ML/LLaDA-8B-Base") == "GSAI-ML/LLaDA-8B-Base"
    assert label(str(tmp_path / "snap_200")) == "snap_200"
    assert label("runs/eval/mdlm_s13000/") == "mdlm_s13000"
