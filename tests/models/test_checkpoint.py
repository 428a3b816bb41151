"""`masktax.models.checkpoint`: damaged files are one-line errors naming the file, pickles are
refused, transformers loads strictly and quietly (its progress bars and logging restored after)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny import tiny_checkpoint

from masktax.errors import MasktaxError
from masktax.models import checkpoint as ckpt
from masktax.models import load
from masktax.models.dream import DreamConfig
from masktax.models.llada import LLaDAConfig


@pytest.mark.parametrize("text,message", [
    ("[1, 2]", "holds an array, not a JSON object"),
    ("3.5", "holds a number, not a JSON object"),
    ('"llada"', "holds a string, not a JSON object"),
    ("null", "holds null, not a JSON object"),
    ("{'a': 1}", r"is not valid JSON \(Expecting property name enclosed in double quotes at line 1\)"),
    ("", "is not valid JSON"),
])
def test_read_json_object_names_the_file(tmp_path, text, message):
    file = tmp_path / "x.json"
    file.write_text(text)
    with pytest.raises(MasktaxError, match=f"'{file}' {message}"):
        ckpt.read_json_object(file)


def test_read_json_object_not_utf8(tmp_path):
    (tmp_path / "x.json").write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(MasktaxError, match=r"x\.json' is not UTF-8 text \(invalid continuation byte at byte 7\)"):
        ckpt.read_json_object(tmp_path / "x.json")


@pytest.mark.parametrize("field,value,message", [
    ("model_type", 3, "field 'model_type' should be a string, got a number"),
    ("architectures", "LLaDAModelLM", "field 'architectures' should be a list of class names, got a string"),
    ("auto_map", ["x"], "field 'auto_map' should be an object, got an array"),
    ("mask_token_id", "126336", "field 'mask_token_id' should be a non-negative integer, got a string"),
    ("mask_token_id", True, "field 'mask_token_id' should be a non-negative integer, got a boolean"),
    ("max_position_embeddings", -1, "field 'max_position_embeddings' should be a non-negative integer"),
    ("eos_token_id", [1, "2"], "field 'eos_token_id' should be an integer or a list of integers"),
])
def test_read_config_checks_the_fields_masktax_reads(tmp_path, field, value, message):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llada", field: value}))
    with pytest.raises(MasktaxError, match=f"'{tmp_path / 'config.json'}': {message}"):
        ckpt.read_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llada", "eos_token_id": [1, 2]}))
    assert ckpt.read_config(tmp_path)["eos_token_id"] == [1, 2]


LLADA = {"d_model": 32, "n_heads": 4, "n_layers": 2, "vocab_size": 64}
DREAM = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "vocab_size": 64}


def test_native_config_fields_present_and_typed():
    with pytest.raises(MasktaxError, match=r"field 'n_layers' is missing \(LLaDAConfig needs d_model, n_heads"):
        LLaDAConfig.from_dict({k: v for k, v in LLADA.items() if k != "n_layers"})
    with pytest.raises(MasktaxError, match="field 'vocab_size' is missing"):
        DreamConfig.from_dict({k: v for k, v in DREAM.items() if k != "vocab_size"})
    with pytest.raises(MasktaxError, match="field 'd_model' should be an integer, got 'wide'"):
        LLaDAConfig.from_dict({**LLADA, "d_model": "wide"})
    with pytest.raises(MasktaxError, match="field 'weight_tying' should be true or false, got 1"):
        LLaDAConfig.from_dict({**LLADA, "weight_tying": 1})
    with pytest.raises(MasktaxError, match="field 'n_kv_heads' should be an integer or null, got 2.5"):
        LLaDAConfig.from_dict({**LLADA, "n_kv_heads": 2.5})
    with pytest.raises(MasktaxError, match="field 'n_layers' must be a positive integer, got 0"):
        LLaDAConfig.from_dict({**LLADA, "n_layers": 0})
    with pytest.raises(MasktaxError, match="field 'rope_scaling' should be an object or null"):
        DreamConfig.from_dict({**DREAM, "rope_scaling": "yarn"})
    cfg = LLaDAConfig.from_dict({**LLADA, "rope_theta": 10000, "n_kv_heads": None, "extra_key": [1]})
    assert cfg.rope_theta == 10000 and cfg.extra == {"extra_key": [1]}  # an int is a float


def test_a_native_config_without_a_size_names_the_field_and_file(tmp_path):
    path = tiny_checkpoint("llada", tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    del config["d_model"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(MasktaxError, match=f"'{path / 'config.json'}': field 'd_model' is missing"):
        load(path)


@pytest.mark.parametrize("data,why", [
    (b"", "header too small"),
    (b"\x08\x00\x00\x00\x00\x00\x00\x00{not js}", "Error while deserializing header"),
    (bytes(range(256)) * 4, "Error while deserializing header"),
])
def test_unreadable_safetensors_name_the_file(tmp_path, data, why):
    file = tmp_path / "model.safetensors"
    file.write_bytes(data)
    with pytest.raises(MasktaxError, match=f"'{file}' is not a readable safetensors file \\(.*{why}"):
        ckpt.check_weights(tmp_path)


def test_truncated_safetensors_fail_before_any_tensor_is_read(tmp_path):
    path = tiny_checkpoint("llada", tmp_path / "m")
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(MasktaxError, match="not a readable safetensors file .*file not fully covered"):
        load(path)


def test_pickle_only_checkpoints_are_refused_with_how_to_convert(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(MasktaxError) as info:
        ckpt.weight_files(tmp_path)
    message = str(info.value)
    assert f"'{tmp_path / 'pytorch_model.bin'}' is a pickle file" in message
    assert "safetensors" in message and "save_pretrained(DIR, safe_serialization=True)" in message
    assert "weights_only" not in message and "\n" not in message


@pytest.mark.parametrize("shard", ["../other/model.safetensors", "/etc/passwd", "sub/model.safetensors", ".."])
def test_shards_must_sit_in_the_checkpoint_directory(tmp_path, shard):
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": shard}}))
    with pytest.raises(MasktaxError, match="outside the checkpoint directory"):
        ckpt.weight_files(tmp_path)


def test_transformers_loads_strictly(tmp_path):
    """A tensor the checkpoint lacks, or one of another shape, is an error, not a random re-init."""
    path = tiny_checkpoint("ar", tmp_path / "ar")
    tensors = load_file(path / "model.safetensors")
    name = "model.layers.1.mlp.up_proj.weight"
    save_file({k: v for k, v in tensors.items() if k != name}, str(path / "model.safetensors"))
    with pytest.raises(MasktaxError, match=f"lacks tensor '{name}' \\(1 missing\\)"):
        load(path)
    save_file({**tensors, name: torch.zeros(2, 2)}, str(path / "model.safetensors"))
    with pytest.raises(MasktaxError, match=rf"tensor '{name}' in '.*' has shape \(2, 2\), config implies \(64, 32\)"):
        load(path)


@pytest.mark.parametrize("bars_on", [True, False])
def test_quiet_transformers_restores_bars_and_verbosity(bars_on):
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as hf_logging

    level, was_on, hub_was_off = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(),
                                  are_progress_bars_disabled())
    try:
        hf_logging.set_verbosity_info()
        (hf_logging.enable_progress_bar if bars_on else hf_logging.disable_progress_bar)()
        with ckpt.quiet_transformers():
            assert not hf_logging.is_progress_bar_enabled() and are_progress_bars_disabled()
            assert hf_logging.get_verbosity() == hf_logging.ERROR
        assert hf_logging.is_progress_bar_enabled() == bars_on
        assert are_progress_bars_disabled() == (not bars_on)
        assert hf_logging.get_verbosity() == hf_logging.INFO
    finally:
        hf_logging.set_verbosity(level)
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()
        (disable_progress_bars if hub_was_off else enable_progress_bars)()


def test_reason_is_one_line():
    assert ckpt.reason(ValueError("a\n  b\tc")) == "a b c"
    assert ckpt.reason(KeyError("metadata")) == "missing key 'metadata'"
    assert len(ckpt.reason(ValueError("x" * 1000))) == 300
