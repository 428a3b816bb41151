"""`PretrainConfig`: bad fields, and the shipped configs (shared dimensions, one-choice controlled variants)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.training.pretrain.config import PretrainConfig, load_config

REPO = Path(__file__).resolve().parents[3]


def test_bad_configs_raise_masktax_error(tmp_path):
    with pytest.raises(MasktaxError):
        PretrainConfig(objective="bert")
    with pytest.raises(MasktaxError):
        PretrainConfig.from_dict({"lr_typo": 1})
    with pytest.raises(MasktaxError):
        load_config(tmp_path / "missing.json")
    assert main(["pretrain", "--config", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x")]) == 2


def test_shipped_configs_load_and_share_dimensions():
    cfgs = {p.stem: load_config(p) for p in sorted((REPO / "configs" / "embedded").glob("*.json"))}
    assert {"mdlm", "ar", "mdlm_dream"} <= set(cfgs)
    assert len({c.model for c in cfgs.values()}) == 1  # identical architecture dimensions
    assert cfgs["ar"].objective == "ar" and cfgs["mdlm_dream"].shift and cfgs["mdlm_dream"].init_from


def test_cpu_configs_load_and_controlled_continuations_differ_in_one_choice():
    cpu = REPO / "configs" / "embedded" / "cpu"
    cfgs = {p.stem: load_config(p) for p in sorted(cpu.glob("*.json"))}
    assert {"mdlm", "ar", "mdlm_dream", "mdlm_dream_sft"} <= set(cfgs)
    expected = {"eostail": {"eos_tail"}, "noinvp": {"weighting"}, "nofocus": {"answer_focus_share"}}
    after = {"after": {"stages"}}  # the corpus choice sits in the stage spec: checked below
    for prefix, variants in (("mdlm_dream_cont_", expected), ("mdlm_branch_", expected | after)):
        raw = {p.stem.removeprefix(prefix): json.loads(p.read_text()) for p in cpu.glob(prefix + "*.json")}
        control = raw.pop("default")
        assert set(raw) == set(variants), prefix
        for key, cfg in raw.items():
            changed = {f for f in cfg.keys() | control.keys() if cfg.get(f) != control.get(f)} - {"name", "_comment"}
            assert changed == variants[key], (prefix, key)
    branch = json.loads((cpu / "mdlm_branch_after.json").read_text())["stages"]
    control = json.loads((cpu / "mdlm_branch_default.json").read_text())["stages"]
    assert len(branch) == len(control) == 1
    spec, base = branch[0]["spec"], control[0]["spec"]
    assert {f for f in spec.keys() | base.keys() if spec.get(f) != base.get(f)} == {"max_after"}
