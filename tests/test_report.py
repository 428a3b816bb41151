"""Plots and Markdown are pure functions of the stored results."""

from __future__ import annotations

import json

import pytest

from masktax.report import markdown
from masktax.report.build import rebuild, rebuild_combined
from masktax.report.plots import make_plots
from masktax.results.store import RunStore, atomic_write_json


def point(x, acc, series="masks"):
    return {"series": series, "x": x, "accuracy": acc, "ci95": [acc - 0.05, acc + 0.05],
            "per_dataset": {"d1": acc, "d2": acc}, "accuracy_abc": acc, "ci95_abc": None,
            "per_dataset_abc": {}, "n_datasets": 2, "n_items": 10, "p_answer": 0.4, "entropy": 1.2,
            "confidence": 0.5}


SUMMARY = {
    "schema_version": 1, "probe": "masks", "grid": [0, 10, 200],
    "models": {"org/mdlm": [point(0, 0.8), point(10, 0.7), point(200, 0.55)], "org/ar": []},
    "references": {"org/ar": {"applicable": False, "reason": "causal", "reference": point(0, 0.75, "reference")}},
    "model_info": {},
}


def test_plots_are_deterministic(tmp_path):
    a = make_plots(SUMMARY, "sweep", tmp_path / "a", xlabel="extra masks", name="masks")
    b = make_plots(SUMMARY, "sweep", tmp_path / "b", xlabel="extra masks", name="masks")
    assert a == b and [n for n, _ in a] == ["masks.png", "masks_uncertainty.png"]
    for name, _ in a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bars_and_lines_plots(tmp_path):
    for kind in ("bars", "line", "single"):
        (name, caption), *_ = make_plots(SUMMARY, kind, tmp_path / kind, xlabel="x", name="locality")
        assert (tmp_path / kind / name).stat().st_size > 1000 and caption
    assert "closer to the mask" in make_plots(SUMMARY, "line", tmp_path / "l", xlabel="x", name="locality")[0][1]


def test_markdown_tables_and_mask_tax():
    text = markdown.render(
        config={"probe": "masks", "models": ["org/mdlm", "org/ar"]}, env={"models": {}}, summary=SUMMARY,
        plots=[("masks.png", "cap")], spec_text={"description": "d", "x_meaning": "x = extra masks"},
    )
    assert "| 0 | 80.0 [75.0, 85.0] |" in text
    assert "| org/mdlm | masks | 0 | 200 | +25.0 | [+25.0, +25.0] |" in text  # 80.0 - 55.0 points, paired
    assert "org/ar: NOT APPLICABLE" in text and "75.0 [70.0, 80.0]" in text
    assert "![cap](plots/masks.png)" in text and "## How to read this" in text


def test_paired_difference_ci_uses_datasets_in_both_points():
    first = {"per_dataset": {"d1": 1.0, "d2": 0.5, "d3": 0.75}}
    last = {"per_dataset": {"d1": 0.5, "d2": 0.5, "d3": 0.25, "d4": 0.0}}  # d4 only at one x: ignored
    m, ci = markdown.paired_difference_ci(first, last)  # differences 0.5, 0, 0.5
    half = 4.303 * (1 / 12) ** 0.5 / 3**0.5  # t_{0.975,2} * s / sqrt(n), s = sqrt(1/12)
    assert m == pytest.approx(1 / 3) and ci == pytest.approx([1 / 3 - half, 1 / 3 + half])
    assert markdown.paired_difference_ci({"per_dataset": {"d1": 1.0}}, {"per_dataset": {"d1": 0.0}})[1] is None


def test_glance_table_signs_and_missing_models():
    locality = {"probe": "locality", "models": {"org/mdlm": [point(0, 0.5, "block"), point(40, 0.9, "block")],
                                                "org/ar": [point(0, 0.6, "block"), point(40, 0.6, "block")]}}
    accuracy = {"probe": "accuracy", "models": {"org/mdlm": [point(0, 0.8, "one_mask")], "org/ar": []}}
    text = "\n".join(markdown.glance_lines({"masks": SUMMARY, "locality": locality, "accuracy": accuracy}))
    assert "| | org/mdlm | org/ar |" in text
    assert "| accuracy with one mask (AR: next token), % [95% CI] | 80.0 [75.0, 85.0] | n/a |" in text
    assert "| +25.0 [+25.0, +25.0] (from x = 0) | n/a |" in text  # no x = 2 in this grid; AR: no points
    assert "| +40.0 [+40.0, +40.0] | +0.0 [+0.0, +0.0] |" in text  # locality: near (last x) minus far
    assert "filler" not in text and markdown.glance_lines({}) == []


def test_mask_tax_is_measured_from_the_format_length():
    pts = [point(0, 0.3), point(1, 0.5), point(2, 0.8), point(200, 0.6)]
    assert [p["x"] for p in markdown.sweep_ends("masks", pts)] == [2, 200]  # x = 0, 1 end the text early
    assert [p["x"] for p in markdown.sweep_ends("locality", pts)] == [0, 200]
    assert [p["x"] for p in markdown.sweep_ends("masks", pts[:3])] == [0, 2]  # x = 2 is the last point
    summary = {"probe": "masks", "models": {"m": pts}}
    assert "| m | masks | 2 | 200 | +20.0 | [+20.0, +20.0] |" in "\n".join(markdown.tax_lines(summary, "masks"))
    assert "| +20.0 [+20.0, +20.0] |" in "\n".join(markdown.glance_lines({"masks": summary}))


def test_rebuild_combined_links_every_run(tmp_path):
    for probe in ("masks", "accuracy"):
        store = RunStore.open(tmp_path / probe, {"probe": probe, "models": [], "grid": None, "datasets": None})
        store.add_model("m")
        atomic_write_json(tmp_path / probe / "env.json", {"models": {"m": {"kind": "mdlm", "series": []}}})
        store.append([{"model": "m", "series": "masks" if probe == "masks" else "one_mask", "x": 0,
                       "dataset": "d", "index": 0, "correct": True, "choice_correct": True,
                       "p_answer": 0.9, "entropy": 0.1, "confidence": 0.9}])
    (tmp_path / "NOTICE.md").write_text("stand-ins\n")
    assert rebuild_combined(tmp_path) == ["accuracy", "masks"]
    top = (tmp_path / "report.md").read_text()
    assert "> stand-ins" in top and "(masks/plots/masks.png)" in top and "(accuracy/report.md)" in top
    assert json.loads((tmp_path / "masks" / "summary.json").read_text())["models"]["m"][0]["accuracy"] == 1.0
    assert rebuild(tmp_path / "masks")["models"]["m"][0]["ci95"] is None  # one dataset: no interval
