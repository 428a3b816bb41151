"""The embedded checkpoints that ship in the package: they load by name and do the probe task.

Skipped for a checkpoint that is not installed (src/masktax/embedded/weights/<name>/); when one is,
these guard it: a broken export, tokenizer or lm setting shows up as chance accuracy.
"""

from __future__ import annotations

import json

import pytest
import torch

from masktax.models import load
from masktax.models.load import EMBEDDED_DIR

SHIPPED = [name for name in ("embedded-mdlm", "embedded-ar", "embedded-mdlm-dream")
           if (EMBEDDED_DIR / name / "config.json").is_file()]
KIND = {"embedded-mdlm": ("mdlm", False), "embedded-ar": ("ar", True), "embedded-mdlm-dream": ("mdlm", True)}


@pytest.mark.parametrize("name", SHIPPED or [pytest.param("none", marks=pytest.mark.skip("no embedded weights"))])
def test_shipped_model_loads_by_name_and_beats_chance_on_the_suite(name):
    from masktax.training.suite_eval import suite_accuracy

    torch.manual_seed(0)
    lm = load(name)
    assert (lm.kind, lm.shift) == KIND[name]
    record = json.loads((EMBEDDED_DIR / name / "training.json").read_text())
    assert record["steps"] > 0 and record["hardware"] and record["command"]
    acc = suite_accuracy(lm.model, lm.tokenizer, causal=lm.kind == "ar", shift=lm.shift,
                         mask_id=lm.tokenizer.mask_token_id, eos_id=lm.eos_id, max_length=lm.max_length,
                         n_items=3)
    assert acc >= 0.5, f"{name}: {acc:.3f} on 48 suite items (chance 1/3)"
