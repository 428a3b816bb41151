"""Results: CI math, the run store (atomic writes, torn lines, resume, config checks), summaries."""

from __future__ import annotations

import json
import math

import pytest

from masktax.errors import MasktaxError
from masktax.results.stats import mean_ci95, t_quantile_975
from masktax.results.store import RunStore, atomic_write_json, item_key, read_items
from masktax.results.summary import summarize, summary_csv


def test_ci_matches_hand_computation():
    # values 0.5, 0.6, 0.7, 0.8: mean 0.65, s = sqrt(0.05/3), t_{0.975,3} = 3.182
    m, (lo, hi) = mean_ci95([0.5, 0.6, 0.7, 0.8])
    half = 3.182 * math.sqrt(0.05 / 3) / 2
    assert m == pytest.approx(0.65)
    assert lo == pytest.approx(0.65 - half) and hi == pytest.approx(0.65 + half)
    assert mean_ci95([0.4]) == (0.4, None)
    assert mean_ci95([0.3, 0.3, 0.3])[1] == pytest.approx([0.3, 0.3])


def test_accuracy_ci_is_clipped_to_the_unit_interval():
    values = [1.0] * 14 + [0.5, 0.6]
    m, (lo, hi) = mean_ci95(values)
    assert hi > 1.0  # the plain t-interval leaves the range
    m2, (lo2, hi2) = mean_ci95(values, bounds=(0.0, 1.0))
    assert m2 == m and lo2 == pytest.approx(lo) and hi2 == 1.0
    assert mean_ci95([0.0, 0.0, 0.1], bounds=(0.0, 1.0))[1][0] == 0.0


def test_t_quantiles():
    assert t_quantile_975(15) == 2.131  # 16 datasets
    assert t_quantile_975(40) == pytest.approx(2.021, abs=1e-3)
    assert t_quantile_975(120) == pytest.approx(1.980, abs=1e-3)
    assert t_quantile_975(31) < t_quantile_975(30)


def rec(model="m", series="s", x=0, dataset="d", index=0, correct=True, **kw):
    base = dict(model=model, series=series, x=x, dataset=dataset, index=index, correct=correct,
                choice_correct=correct, p_answer=0.5, entropy=1.0, confidence=0.6)
    return {**base, **kw}


def test_store_resume_and_torn_line(tmp_path):
    cfg = {"probe": "masks", "models": ["m"], "grid": [0, 1], "out": str(tmp_path / "r")}
    store = RunStore.open(tmp_path / "r", cfg)
    store.add_model("m")
    store.append([rec(index=0), rec(index=1)])
    with open(tmp_path / "r" / "items.jsonl", "a") as f:
        f.write('{"model": "m", "ser')  # a crash mid-append
    again = RunStore.open(tmp_path / "r", cfg)
    assert again.done_count() == 2 and again.is_done(item_key(rec(index=1)))
    assert (tmp_path / "r" / "items.jsonl").read_text().endswith("\n")
    again.append([rec(index=1), rec(index=2)])  # a finished key is not written twice
    assert [r["index"] for r in read_items(tmp_path / "r")] == [0, 1, 2]


def test_store_refuses_another_config_but_accepts_new_models(tmp_path):
    cfg = {"probe": "masks", "models": ["m"], "grid": [0, 1], "batch_size": 4}
    RunStore.open(tmp_path, cfg).add_model("m")
    with pytest.raises(MasktaxError, match=r"grid: \[0, 1\] there vs \[0, 2\] here.*another --out"):
        RunStore.open(tmp_path, {**cfg, "grid": [0, 2]})
    store = RunStore.open(tmp_path, {**cfg, "models": ["m2"], "batch_size": 1})
    store.add_model("m2")
    assert json.loads((tmp_path / "config.json").read_text())["models"] == ["m", "m2"]


def test_store_refuses_foreign_dir_and_corrupt_middle_line(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("mine")
    with pytest.raises(MasktaxError, match="not empty"):
        RunStore.open(tmp_path / "a", {"probe": "masks"})
    RunStore.open(tmp_path / "b", {"probe": "masks"})
    (tmp_path / "b" / "items.jsonl").write_text('{"x": 1}\nnot json\n{"x": 2}\n')
    with pytest.raises(MasktaxError, match="line 2 is corrupt"):
        RunStore.open(tmp_path / "b", {"probe": "masks"})


def test_atomic_write_leaves_no_temp(tmp_path):
    atomic_write_json(tmp_path / "s.json", {"a": 1})
    atomic_write_json(tmp_path / "s.json", {"a": 2})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "s.json", {"a": float("nan")})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 2}


def test_summary_schema_and_aggregation():
    records = []
    for d, accs in (("d1", [1, 1, 0, 0]), ("d2", [1, 1, 1, 0])):
        records += [rec(dataset=d, index=i, correct=bool(c), x=5) for i, c in enumerate(accs)]
    records += [rec(model="ar", series="reference", dataset="d1", index=0)]
    cfg = {"probe": "masks", "models": ["m", "ar"], "grid": [0, 5], "datasets": ["d1", "d2"]}
    s = summarize(cfg, records)
    assert s["schema_version"] == 1 and s["probe"] == "masks"
    (p,) = s["models"]["m"]
    assert p["x"] == 5 and p["per_dataset"] == {"d1": 0.5, "d2": 0.75}
    assert p["accuracy"] == pytest.approx(0.625)
    half = 12.706 * math.sqrt(((0.5 - 0.625) ** 2 + (0.75 - 0.625) ** 2) / 1) / math.sqrt(2)
    assert half > 0.625  # two datasets: the t-interval spans more than [0, 1] and is clipped to it
    assert p["ci95"] == pytest.approx([max(0.0, 0.625 - half), min(1.0, 0.625 + half)]) == [0.0, 1.0]
    assert p["p_answer"] == 0.5 and p["n_items"] == 8
    assert s["models"]["ar"] == []
    assert s["references"]["ar"]["applicable"] is False
    assert s["references"]["ar"]["reference"]["accuracy"] == 1.0
    csv = summary_csv(s).splitlines()
    assert csv[0].startswith("model,series,x,applicable,accuracy")
    assert len(csv) == 3 and ",false," in csv[2]
    json.dumps(s, allow_nan=False)
