"""`masktax.models.finetuned`: adapters are read strictly and from safetensors only; a merge writes
a new directory, complete or not at all."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from masktax.errors import MasktaxError
from masktax.models import load
from masktax.models.finetuned import apply_finetune, merge_finetune


@pytest.fixture()
def run_copy(lora_run, tmp_path):
    """A copy of the 2-step LoRA run (conftest.py) to damage."""
    return shutil.copytree(lora_run, tmp_path / "run")


def test_adapter_matching_none_of_the_model_is_an_error(tiny_ckpts, run_copy):
    weights = run_copy / "final" / "adapter_model.safetensors"
    save_file({f"{k}.renamed": v for k, v in load_file(weights).items()}, str(weights))
    with pytest.raises(MasktaxError, match="does not fit model .*Found missing adapter keys"):
        apply_finetune(load(tiny_ckpts["llada"]), run_copy)


def test_pickled_adapter_is_refused(tiny_ckpts, run_copy):
    weights = run_copy / "final" / "adapter_model.safetensors"
    torch.save(load_file(weights), run_copy / "final" / "adapter_model.bin")
    weights.unlink()
    with pytest.raises(MasktaxError, match=r"adapter_model\.bin' is a pickle file; masktax loads weights only"):
        apply_finetune(load(tiny_ckpts["llada"]), run_copy)


def test_adapter_config_must_name_a_peft_type(tiny_ckpts, run_copy):
    (run_copy / "final" / "adapter_config.json").write_text(json.dumps({"r": 4}))
    with pytest.raises(MasktaxError, match="does not name its peft_type"):
        apply_finetune(load(tiny_ckpts["llada"]), run_copy)


def test_merge_writes_only_a_new_directory(lora_run, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "model.safetensors").write_text("someone's checkpoint")
    with pytest.raises(MasktaxError, match="already exists and is not empty; merge into a new directory"):
        merge_finetune(lora_run, taken)
    assert (taken / "model.safetensors").read_text() == "someone's checkpoint"
    with pytest.raises(MasktaxError, match="already exists; merge into a new directory"):
        merge_finetune(lora_run, taken / "model.safetensors")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert merge_finetune(lora_run, empty) == empty and (empty / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_merge_of_a_failing_run_leaves_nothing(tmp_path, run_copy):
    (run_copy / "final" / "adapter_model.safetensors").write_bytes(b"\x00" * 16)
    out = tmp_path / "merged"
    with pytest.raises(MasktaxError, match="is not a readable safetensors file"):
        merge_finetune(run_copy, out)
    assert not out.exists()


def test_merge_checks_a_full_runs_weights(tiny_ckpts, tmp_path):
    run = tmp_path / "full"
    shutil.copytree(tiny_ckpts["llada"], run / "final")
    (run / "final" / "finetune_config.json").write_text(json.dumps({"model": tiny_ckpts["llada"], "full": True}))
    (run / "final" / "model.safetensors").write_bytes(b"")
    with pytest.raises(MasktaxError, match="header too small"):
        merge_finetune(run, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
