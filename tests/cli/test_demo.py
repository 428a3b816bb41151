"""`masktax demo`: which models it runs, its steps' quick options, and a tiny end-to-end run on the stand-ins."""

from __future__ import annotations

import json

from masktax.errors import MasktaxError
from masktax.probes import PROBES
from masktax.report import demo


def fake_load(installed):
    def load(name, **_):
        if name not in installed:
            raise MasktaxError(f"{name} is not installed")
        return object()

    return load


def test_installed_embedded_models_are_used_in_order(monkeypatch, tmp_path):
    monkeypatch.setattr("masktax.models.load", fake_load({"embedded-ar", "embedded-mdlm-dream"}))
    chosen = demo.demo_models(tmp_path)
    assert chosen.names == ("embedded-ar", "embedded-mdlm-dream") and chosen.notice is None
    assert not (tmp_path / "models").exists()


def test_without_embedded_models_the_demo_says_so_and_builds_stand_ins(monkeypatch, tmp_path):
    monkeypatch.setattr("masktax.models.load", fake_load(set()))
    chosen = demo.demo_models(tmp_path)
    assert len(chosen.names) == 3 and all((tmp_path / "models").glob("*/config.json"))
    assert "not installed" in chosen.notice and "RANDOM" in chosen.notice


def test_every_step_is_a_probe_and_its_quick_options_are_valid_options():
    assert set(demo.DEMO_PROBES) == set(PROBES) and len(demo.DEMO_PROBES) == len(PROBES)
    for step in demo.DEMO_STEPS:
        probe = PROBES[step.probe]
        quick = probe.Options(**dict(step.quick_options))  # a TypeError for a field the probe lacks
        assert all(getattr(quick, k) == v for k, v in step.quick_options)
    grids = {s.probe: dict(s.quick_options).get("grid") for s in demo.DEMO_STEPS}
    assert grids["masks"] == grids["filler"] == grids["uncertainty"]  # uncertainty reuses both runs' passes
    unmask = next(s for s in demo.DEMO_STEPS if s.probe == "unmask")
    assert dict(unmask.quick_options)["grid"] == (0, 50) and unmask.quick_items == 2


def test_demo_end_to_end_on_stand_ins_writes_one_report(monkeypatch, tmp_path):
    monkeypatch.setattr(demo, "EMBEDDED", ("no-such-embedded-model",))  # as if none were installed
    chosen = ("accuracy", "masks", "filler", "format", "uncertainty")
    monkeypatch.setattr(demo, "DEMO_STEPS", tuple(s for s in demo.DEMO_STEPS if s.probe in chosen))
    from masktax.cli.main import main

    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--n-items", "1", "--datasets", "country__smallest", "--no-progress"])
    assert code == 0
    report = (out / "report.md").read_text()
    for probe in ("accuracy", "masks", "format", "uncertainty"):
        assert (out / probe / "summary.json").is_file()
        assert f"masktax probe: {probe}" in report
    assert "| mask tax: format part; comprehension part (A/B/C choice)" in report  # the decomposition, at a glance
    assert "| format probe: closure `].` after the answer - none" in report and "## Format and comprehension" in report
    assert "Untrained stand-ins" in report
    summary = json.loads((out / "uncertainty" / "summary.json").read_text())
    expected = {m: info["expected_items"] for m, info in json.loads((out / "uncertainty" / "env.json").read_text())["models"].items()}
    assert summary["reused_items"] == expected  # every record reused: no forward pass of its own

