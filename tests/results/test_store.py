"""The run store: atomic writes, torn lines, resume, config checks."""

from __future__ import annotations

import json

import pytest

from masktax.errors import MasktaxError
from masktax.results.store import RunStore, atomic_write_json, config_diff, item_key, read_items


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
    store = RunStore.open(tmp_path, cfg)
    store.add_model("m")
    store.append([{"model": "m", "series": "masks", "x": 0, "dataset": "d", "index": 0}])
    with pytest.raises(MasktaxError, match=r"grid: \[0, 1\] there vs \[0, 2\] here.*another --out"):
        RunStore.open(tmp_path, {**cfg, "grid": [0, 2]})
    with pytest.raises(MasktaxError, match=r"batch_size: 4 there vs 1 here"):  # batching is part of the identity
        RunStore.open(tmp_path, {**cfg, "batch_size": 1})
    store = RunStore.open(tmp_path, {**cfg, "models": ["m2"]})
    store.add_model("m2")
    assert json.loads((tmp_path / "config.json").read_text())["models"] == ["m", "m2"]


def test_a_field_added_later_counts_as_the_value_older_run_dirs_had(tmp_path):
    old = {"probe": "masks", "models": ["m"], "grid": [0, 1]}  # written before prefix_cache existed
    assert config_diff(old, {**old, "prefix_cache": False}) == []
    assert config_diff(old, {**old, "prefix_cache": True}) == ["prefix_cache: False there vs True here"]
    assert config_diff(old, old) == []  # a config without the field (training) is not given it


def test_a_start_that_scored_nothing_is_replaced_by_the_corrected_command(tmp_path):
    cfg = {"probe": "masks", "models": [], "grid": [0, 100000]}
    RunStore.open(tmp_path, cfg).add_model("m")  # e.g. the prompt was too long: nothing scored
    (tmp_path / "env.json").write_text("{}")
    store = RunStore.open(tmp_path, {**cfg, "grid": [0, 2]})
    assert store.config["grid"] == [0, 2] and store.config["models"] == []
    assert not (tmp_path / "env.json").exists()


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


def test_atomic_write_gives_the_mode_open_would(tmp_path):
    """mkstemp creates 0600 files; results must be readable as any file the user writes (umask)."""
    import os
    import stat

    atomic_write_json(tmp_path / "new.json", {"a": 1})
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    os.chmod(tmp_path / "new.json", 0o640)
    atomic_write_json(tmp_path / "new.json", {"a": 2})  # replacing keeps the file's mode
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640
