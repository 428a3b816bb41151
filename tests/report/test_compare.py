"""masktax.report.compare: curves, legend names, tables and errors on synthetic summary.json files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from probe_helpers import write_summary

from masktax.errors import MasktaxError
from masktax.render.names import label
from masktax.report import compare


def test_overlay_puts_runs_in_one_panel_with_distinct_legend_names(tmp_path: Path) -> None:
    a = write_summary(tmp_path / "a", {"masks": [0.8, 0.7, 0.6]})
    b = write_summary(tmp_path / "b", {"masks": [0.8, 0.8, 0.8]})
    curves = compare.compare_runs([a, b], tmp_path / "one", overlay=True)["curves"]
    assert (tmp_path / "one" / "compare.png").is_file() and all("_key" not in c for c in curves)
    # the same model in two runs: the overlaid legend names carry the run
    assert compare.curve_names(curves, overlay=True) == ["a: embedded-mdlm", "b: embedded-mdlm"]
    assert compare.curve_names(curves, overlay=False) == ["embedded-mdlm", "embedded-mdlm"]
    side = compare.compare_runs([a, b], tmp_path / "two")["curves"]
    assert (tmp_path / "one" / "compare.png").read_bytes() != (tmp_path / "two" / "compare.png").read_bytes()
    assert len(side) == len(curves) == 2
    # different series (e.g. a masks run and a filler run of the same model): one panel each, so the
    # model keeps its plain name and one colour across the panels
    f = write_summary(tmp_path / "f", {"filler": [0.8, 0.8, 0.7]})
    mixed = compare.compare_runs([a, f], tmp_path / "three", overlay=True)["curves"]
    assert compare.curve_names(mixed, overlay=True) == ["embedded-mdlm", "embedded-mdlm"]


def test_tables_name_a_final_dir_by_its_run_and_the_csv_keeps_the_id(tmp_path: Path) -> None:
    run = write_summary(tmp_path / "r", {"masks": [0.8, 0.7, 0.6]})
    summary = json.loads((run / "summary.json").read_text())
    summary["models"] = {"runs/ma/ft_ce_tv/final": summary["models"]["embedded-mdlm"]}
    (run / "summary.json").write_text(json.dumps(summary))
    compare.compare_runs([run], tmp_path / "out")
    assert "| r | ft_ce_tv | masks |" in (tmp_path / "out" / "compare.md").read_text()
    assert "runs/ma/ft_ce_tv/final" in (tmp_path / "out" / "compare.csv").read_text()


def test_compare_errors(tmp_path: Path) -> None:
    run = write_summary(tmp_path / "r", {"single-step": [0.5, 0.4, 0.3]})
    with pytest.raises(MasktaxError, match="no summary.json"):
        compare.compare_runs([tmp_path / "missing"], tmp_path / "o")
    with pytest.raises(MasktaxError, match="--label"):
        compare.compare_runs([run], tmp_path / "o", ["a", "b"])
    with pytest.raises(MasktaxError, match="same name"):
        compare.compare_runs([run, run], tmp_path / "o")


def test_config_needs_runs_and_out_or_paired_points(tmp_path: Path) -> None:
    with pytest.raises(MasktaxError, match="--paired"):
        compare.CompareConfig()
    with pytest.raises(MasktaxError, match="--out"):
        compare.CompareConfig(run_dirs=(tmp_path,))
    with pytest.raises(MasktaxError, match="--model"):
        compare.CompareConfig(run_dirs=(tmp_path,), out=tmp_path, model="m")
    pair = compare.CompareConfig(paired=(f"{tmp_path / 'a'}:masks:0", f"{tmp_path / 'a'}:masks:2"), out=tmp_path)
    assert pair.runs() == [tmp_path / "a"]  # the points' runs, each once


def test_parse_point_keeps_colons_of_the_run_dir() -> None:
    assert compare.parse_point("C:/runs/masks:masks:2") == ("C:/runs/masks", "masks", 2)
    with pytest.raises(MasktaxError, match="RUN_DIR:SERIES:X"):
        compare.parse_point("runs/masks:masks:two")


def test_short_names_for_checkpoint_paths(tmp_path) -> None:
    assert label("runs/ma_demo/ft_ce_tv/final") == "ft_ce_tv"
    assert label("runs/controlled/x/default/final") != label("runs/controlled/x/eostail/final")
    assert label("embedded-mdlm") == "embedded-mdlm"
    assert label("GSAI-ML/LLaDA-8B-Base") == "GSAI-ML/LLaDA-8B-Base"
    assert label(str(tmp_path / "snap_200")) == "snap_200"
    assert label("runs/eval/mdlm_s13000/") == "mdlm_s13000"
