"""A tiny pretraining config (2 layers of width 32, a two-stage curriculum over a few words) for the
pretraining tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

WORDS = {
    "animals": ["cat", "dog", "horse", "sheep", "goat", "mouse"],
    "fruits": ["apple", "pear", "plum", "grape", "lemon", "mango"],
    "colours": ["red", "blue", "green", "yellow", "purple", "orange"],
    "countries": ["France", "Japan", "Peru", "Chile", "Kenya", "Spain"],
}


@pytest.fixture
def words() -> dict[str, list[str]]:
    """The tiny config's word lists."""
    return WORDS


@pytest.fixture
def tiny_config(tmp_path: Path) -> Callable[..., Path]:
    """`tiny_config(**changes)` writes the tiny config (with `changes`) under tmp_path; returns its path."""

    def make(**changes) -> Path:
        words = tmp_path / "words.json"
        words.write_text(json.dumps(WORDS))
        cfg = {
            "name": "tiny", "objective": "mdlm", "words_file": str(words),
            "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "n_kv_heads": 2, "d_ff": 64},
            "batch_size": 3, "gate_every": 2, "gate_size": 6, "save_every": 3, "log_every": 1, "warmup_steps": 2,
            "stages": [
                {"name": "S0", "spec": {"n_examples": [2, 3], "distractor_share": [0, 0], "repeat_prob": 1.0,
                                        "n_categories": 3, "rules": ["category"], "max_tokens": 96}},
                {"name": "S4", "spec": {"n_examples": [3, 6], "distractor_share": [0.1, 0.8], "max_tail": 10,
                                        "max_tokens": 192}},
            ],
        }
        cfg.update(changes)
        path = tmp_path / f"{cfg['name']}.json"
        path.write_text(json.dumps(cfg))
        return path

    return make
