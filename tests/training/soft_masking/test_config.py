"""`SMConfig`: checks, flags over a file or the defaults, the shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from masktax.errors import MasktaxError
from masktax.training.soft_masking.config import SMConfig, load_config


def test_shipped_train_sm_configs_load() -> None:
    files = sorted((Path(__file__).resolve().parents[3] / "configs" / "train_sm").glob("*.json"))
    cfgs = {f.stem: load_config(f) for f in files}
    assert {"embedded", "embedded_cpu", "llada_lora", "dream_dora"} <= set(cfgs)
    assert all(c.p_sm == 0.8 for c in cfgs.values())
    assert cfgs["embedded_cpu"].omega_lr > cfgs["embedded"].omega_lr


def test_load_config_applies_the_given_overrides_to_a_file_or_the_defaults(tmp_path: Path) -> None:
    assert load_config(None) == SMConfig()
    assert load_config(None, k=1, lr=None) == SMConfig(k=1)
    f = tmp_path / "c.json"
    f.write_text('{"_comment": "tiny", "p_sm": 0.5, "lora_targets": ["q_proj"]}')
    cfg = load_config(f, seed=3)
    assert (cfg.p_sm, cfg.lora_targets, cfg.seed) == (0.5, ("q_proj",), 3)
    with pytest.raises(MasktaxError, match="p_sm"):
        load_config(f, p_sm=1.5)
