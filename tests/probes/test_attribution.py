"""The attribution probe on suite prompts: AR zeros, [0, 1] scores, batching, frozen weights, orderings,
aggregation on hand numbers, and `masktax probe attribution` end to end plus bad input.

(Gradient exactness against finite differences is in test_gradients.py.)"""

from __future__ import annotations

import json

import pytest
from probe_helpers import DATASET, assert_one_line_error, assert_usage_error, probe_setup, tiny_adapter

from masktax.cli.main import main
from masktax.probes import run_probe
from masktax.probes.attribution import build_items, profile, score_batch, summarize
from masktax.probes.run import ProbeRun, select_datasets
from masktax.results.store import read_items

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("attr") / "run"
    adapters = {"llada": tiny_adapter("mdlm"), "ar": tiny_adapter("ar")}
    run_probe(*probe_setup("attribution", out, ("llada", "ar"), n_items=1, datasets=(DATASET,), n_masks=4,
                           orderings=2), loaded=adapters)
    return out, adapters


def test_ar_model_gives_the_answer_position_and_masks_exactly_zero(probe_run):
    out, _ = probe_run
    ar = [r for r in read_items(out) if r["model"] == "ar"]
    assert len(ar) == 2
    for r in ar:
        assert r["groups"]["masks"] == 0.0 and r["groups"]["answer"] == 0.0
        assert r["groups"]["nonmask"] > 0.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"]["ar"][0]["groups"]["masks"] == {**summary["models"]["ar"][0]["groups"]["masks"],
                                                              "mean": 0.0, "std": 0.0}


def test_scores_lie_in_unit_interval_and_weights_stay_frozen_without_grad(probe_run):
    out, adapters = probe_run
    records = list(read_items(out))
    for r in records:
        assert all(0.0 <= v <= 1.0 for v in r["profile"])
        assert all(v is None or 0.0 <= v <= 1.0 for v in r["groups"].values())
    (example,) = [r["example"] for r in records if "example" in r and r["model"] == "llada"]
    assert max(example["scores"]) == 1.0 and min(example["scores"]) >= 0.0
    assert len(example["tokens"]) == len(example["scores"])
    for a in adapters.values():
        assert all(p.grad is None and p.requires_grad for p in a.model.parameters())
    by_ordering = {r["ordering"]: r for r in records if r["model"] == "llada"}
    assert set(by_ordering) == {0, 1} and by_ordering[0]["max_score"] != by_ordering[1]["max_score"]


def test_batched_equals_unbatched():
    llada = tiny_adapter("mdlm")
    probe, cfg, opts = probe_setup("attribution", "unused", ("llada",), n_items=3, datasets=(DATASET,), n_masks=2,
                                   orderings=1, questions=3)
    datasets = select_datasets(cfg)
    run = ProbeRun(probe=probe.NAME, cfg=cfg, options=opts, store=None, datasets=datasets)  # building needs no store
    its = build_items(run, llada, "llada", datasets[0], "base")
    batched = score_batch(llada, its, 2, 3, example=False)
    for it, b in zip(its, batched, strict=True):
        (single,) = score_batch(llada, [it], 2, 3, example=False)
        assert single["pred_id"] == b["pred_id"]
        assert single["groups"] == pytest.approx(b["groups"], rel=1e-4, abs=1e-7)


def test_profile_and_aggregation_on_hand_numbers():
    assert profile([0.0, 0.2, 0.4, 0.6, 1.0], bin_size=2) == pytest.approx([0.8, 0.3, 0.0])
    recs = [{"model": "m", "dataset": d, "correct": c, "answer_pos": 3, "groups": g, "profile": p}
            for d, c, g, p in [
                ("a", True, {"masks": 0.2, "last50": 0.1, "nonmask": 0.1, "answer": 1.0}, [1.0, 0.5]),
                ("a", False, {"masks": 0.4, "last50": 0.3, "nonmask": 0.2, "answer": 1.0}, [0.5]),
                ("b", True, {"masks": 0.6, "last50": 0.2, "nonmask": 0.3, "answer": 0.5}, [0.0, 0.1]),
            ]]
    s = summarize({"probe": "attribution", "models": ["m"], "options": {"n_masks": 2}}, recs, {})
    (p,) = s["models"]["m"]
    assert p["groups"]["masks"]["mean"] == pytest.approx(0.4)
    assert p["groups"]["masks"]["std"] == pytest.approx((0.08 / 3) ** 0.5)
    assert p["groups"]["masks"]["per_dataset"] == pytest.approx({"a": 0.3, "b": 0.6})
    assert p["accuracy"] == pytest.approx(0.75)  # mean over datasets of 0.5 and 1.0
    assert p["profile"]["mean"] == pytest.approx([0.5, 0.3]) and p["profile"]["n"] == [3, 2]


def test_cli_end_to_end(tmp_path, tiny_ckpts):
    out = tmp_path / "run"
    args = ["probe", "attribution", "--model", tiny_ckpts["llada"], "--model", tiny_ckpts["ar"], "--out", str(out),
            "--n-items", "1", "--datasets", DATASET, "--orderings", "1", "--n-masks", "3", "--no-progress"]
    assert main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["schema_version"] == 1 and s["probe"] == "attribution" and s["options"]["n_masks"] == 3
    (p,) = s["models"][tiny_ckpts["llada"]]
    assert {"x", "accuracy", "ci95", "per_dataset", "groups", "profile"} <= set(p)
    assert {f.name for f in (out / "plots").iterdir()} == {
        "attribution_groups.png", "attribution_position.png", "attribution_example.png"}
    report = (out / "report.md").read_text()
    assert "| model | masks | last 50 non-mask | all non-mask |" in report and "exactly zero" in report
    assert (out / "summary.csv").read_text().startswith("model,n_masks,accuracy")


@pytest.mark.parametrize(("extra", "message"), [
    (["--n-masks", "-1"], "--n-masks must be at least 0, got -1"),
    (["--orderings", "0"], "--orderings must be at least 1, got 0"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, extra, message):
    args = ["probe", "attribution", "--model", "unused", "--out", str(tmp_path / "x"), "--no-progress", *extra]
    assert_one_line_error(args, message, capsys)


@pytest.mark.parametrize("extra", [["--steps", "2"], ["--grid", "1,2"]])
def test_cli_flags_of_other_probes_are_usage_errors(tmp_path, capsys, extra):
    """Once `the attribution probe does not take --steps` / `has no --grid` (masktax errors); now the
    sub-command has no such option: click's usage error naming the flag."""
    args = ["probe", "attribution", "--model", "unused", "--out", str(tmp_path / "x"), "--no-progress", *extra]
    assert_usage_error(args, extra[0], capsys)
