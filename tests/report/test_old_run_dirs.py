"""Run dirs written by masktax 0.1 (before the probe-layer rebuild) still rebuild with `masktax report`:
the same summary (plus its run state, "unknown" for them), CSV and report."""

from __future__ import annotations

import json
from pathlib import Path

import golden_runs
import pytest

from masktax.cli.main import main

FIXTURE = Path(__file__).resolve().parents[1] / "golden" / "runs_v0_1.json"


@pytest.mark.parametrize("probe", ["masks", "unmask"])
def test_a_0_1_run_dir_rebuilds_to_the_same_outputs(tmp_path, probe):
    files = json.loads(FIXTURE.read_text(encoding="utf-8"))
    run = tmp_path / probe
    run.mkdir()
    for name in ("config.json", "items.jsonl"):
        (run / name).write_text(files[f"{probe}/{name}"], encoding="utf-8")
    env = json.loads(files[f"{probe}/env.json"])  # the fixture stores it with sorted keys: models in run order again
    models = json.loads(files[f"{probe}/config.json"])["models"]
    env["models"] = {m: env["models"][m] for m in models}
    (run / "env.json").write_text(json.dumps(env), encoding="utf-8")
    assert main(["report", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary.pop("run")["state"] == "unknown"  # 0.1 recorded no plan to compare with
    assert golden_runs.close(summary, json.loads(files[f"{probe}/summary.json"]))
    assert golden_runs.same_file("summary.csv", (run / "summary.csv").read_text(), files[f"{probe}/summary.csv"])
    assert golden_runs.normalise(run / "report.md", tmp_path) == files[f"{probe}/report.md"]
