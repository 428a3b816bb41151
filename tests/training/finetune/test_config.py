"""`FinetuneConfig`: the paper's table fills beta and lr, flags override a file, the shipped configs load."""

from __future__ import annotations

from pathlib import Path

import pytest

from masktax.errors import MasktaxError
from masktax.training.finetune.config import load_config


def test_shipped_finetune_configs_load() -> None:
    files = sorted((Path(__file__).resolve().parents[3] / "configs" / "finetune").glob("*.json"))
    assert len(files) >= 8
    for f in files:
        cfg = load_config(f)
        beta, lr = cfg.resolved_beta_lr
        assert (beta == 0) == ("_ce.json" in f.name or f.name.endswith("_ce.json")), f.name
        assert lr > 0


def test_load_config_applies_the_given_overrides_to_a_file_or_to_nothing(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text('{"_comment": "tiny", "model": "from-file", "max_steps": 5}')
    assert load_config(f, max_steps=None, lr=1e-4).max_steps == 5
    assert load_config(f, model="flag").model == "flag" and load_config(f, lr=1e-4).resolved_beta_lr == (1.0, 1e-4)
    assert load_config(None, model="m", full=True).full
    with pytest.raises(MasktaxError, match="give --model"):
        load_config(None, full=True)
    f.write_text("{}")
    with pytest.raises(MasktaxError, match="names no model"):
        load_config(f)
