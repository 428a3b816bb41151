"""The combined report: the At-a-glance table over the probes' summaries, and rebuilding run dirs."""

from __future__ import annotations

import json

from probe_helpers import SWEEP_SUMMARY, point

from masktax.report.build import glance_lines, rebuild, rebuild_combined
from masktax.results.store import NOTICE, RunStore, atomic_write_json


def test_glance_table_signs_and_missing_models():
    locality = {"probe": "locality", "models": {"org/mdlm": [point(0, 0.5, "block"), point(40, 0.9, "block")],
                                                "org/ar": [point(0, 0.6, "block"), point(40, 0.6, "block")]}}
    accuracy = {"probe": "accuracy", "models": {"org/mdlm": [point(0, 0.8, "one_mask")], "org/ar": []}}
    text = "\n".join(glance_lines({"masks": SWEEP_SUMMARY, "locality": locality, "accuracy": accuracy}))
    assert "| | org/mdlm | org/ar |" in text
    assert "| accuracy with one mask (AR: next token), % [95% CI] | 80.0 [75.0, 85.0] | n/a |" in text
    assert "| +25.0 [+25.0, +25.0] (from x = 0) | n/a |" in text  # no x = 2 in this grid; AR: no points
    assert "| +40.0 [+40.0, +40.0] | +0.0 [+0.0, +0.0] |" in text  # locality: near (last x) minus far
    assert "filler" not in text and glance_lines({}) == []


def test_rebuild_combined_links_every_run(tmp_path):
    for probe in ("masks", "accuracy"):
        store = RunStore.open(tmp_path / probe, {"probe": probe, "models": [], "grid": None, "datasets": None})
        store.add_model("m")
        atomic_write_json(tmp_path / probe / "env.json", {"models": {"m": {"kind": "mdlm", "series": []}}})
        store.append([{"model": "m", "series": "masks" if probe == "masks" else "one_mask", "x": 0,
                       "dataset": "d", "index": 0, "correct": True, "choice_correct": True,
                       "p_answer": 0.9, "entropy": 0.1, "confidence": 0.9}])
    assert NOTICE == "NOTICE.md"
    (tmp_path / NOTICE).write_text("stand-ins\n")
    assert rebuild_combined(tmp_path) == ["accuracy", "masks"]
    top = (tmp_path / "report.md").read_text()
    assert "> stand-ins" in top and "(masks/plots/masks.png)" in top and "(accuracy/report.md)" in top
    assert json.loads((tmp_path / "masks" / "summary.json").read_text())["models"]["m"][0]["accuracy"] == 1.0
    assert rebuild(tmp_path / "masks")["models"]["m"][0]["ci95"] is None  # one dataset: no interval
