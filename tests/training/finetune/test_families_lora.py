"""LoRA fine-tuning of the newer native families (MMaDA, LLaDA-MoE, LLaDA2, SDAR, Fast-dLLM v2):
the default targets per family (attention incl. LLaDA2's fused `query_key_value`; never the MoE router,
the routed experts or the output head), a 2-step `masktax finetune`, `finetune merge`, and the merged
checkpoint's logits against the base model with the adapter on (unmerged, through peft).

The models are the architectures of tests/models/fixtures/<family> (their config.json, made by the
published code) over the tests' word-level tokenizer, random weights (tests/tiny.py: tiny_family_checkpoint).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny import tiny_family_checkpoint, tiny_tokenizer

from masktax.cli.main import main
from masktax.models import load

FAMILIES = ("mmada", "lladamoe", "llada2_moe", "sdar", "sdar_moe", "fast_dllm_v2")
# family -> (module names every default adapter set must hold, suffixes no adapter may sit on)
ADAPTED = {
    "mmada": ({"transformer.blocks.0.q_proj", "transformer.blocks.1.attn_out", "transformer.blocks.0.ff_proj",
               "transformer.blocks.1.ff_out"}, ("transformer.ff_out",)),
    "lladamoe": ({"layers.0.self_attn.q_proj", "layers.1.self_attn.o_proj", "layers.0.mlp.gate_proj",
                  "layers.1.shared_expert.down_proj"}, ("mlp.gate",)),
    "llada2_moe": ({"layers.0.attention.query_key_value", "layers.1.attention.query_key_value",
                    "layers.1.attention.dense", "layers.0.mlp.up_proj", "layers.1.mlp.shared_experts.gate_proj"},
                   ("mlp.gate",)),
    "sdar": ({"layers.0.self_attn.q_proj", "layers.1.self_attn.v_proj", "layers.1.mlp.down_proj"}, ()),
    "sdar_moe": ({"layers.0.self_attn.q_proj", "layers.1.self_attn.o_proj", "layers.0.mlp.gate_proj"},
                 ("mlp.gate",)),  # layer 0 dense (mlp_only_layers), layer 1 routed experts: frozen
    "fast_dllm_v2": ({"layers.0.self_attn.k_proj", "layers.1.self_attn.o_proj", "layers.0.mlp.gate_proj"}, ()),
}


def adapted_modules(run_dir: Path) -> set[str]:
    """The module names (after `base_model.model.model.`) the saved adapter has LoRA weights for."""
    keys = load_file(str(run_dir / "final" / "adapter_model.safetensors"))
    return {k.split(".lora_", 1)[0].removeprefix("base_model.model.").removeprefix("model.") for k in keys}


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_finetune_merge_and_load(family: str, tmp_path: Path, one_thread) -> None:
    from peft import PeftModel

    base_dir = tiny_family_checkpoint(family, tmp_path / family)
    run_dir, merged_dir = tmp_path / "run", tmp_path / "merged"
    assert main(["finetune", "--model", str(base_dir), "--data", "synthetic", "--out", str(run_dir),
                 "--max-steps", "2", "--batch-size", "2", "--grad-accum", "1", "--max-context", "64",
                 "--min-masks", "4", "--max-masks", "12", "--lora-rank", "4", "--lr", "1e-2", "--no-progress",
                 "--device", "cpu"]) == 0
    adapted = adapted_modules(run_dir)
    want, never = ADAPTED[family]
    assert want <= adapted, sorted(adapted)
    assert not [m for m in adapted if m.endswith(never) or ".experts." in m or "lm_head" in m], sorted(adapted)

    assert main(["finetune", "merge", str(run_dir), str(merged_dir)]) == 0
    merged = load(str(merged_dir), device="cpu")
    base = load(str(base_dir), device="cpu")
    assert (merged.extra["family"], merged.block_size, merged.mask_id) == (family, base.block_size, base.mask_id)

    ids = torch.randint(4, len(tiny_tokenizer()), (2, 19), generator=torch.Generator().manual_seed(0))  # [b, l]
    ids[:, 5::3] = base.mask_id
    am = torch.ones_like(ids)
    am[1, :4] = 0  # a left-padded row
    with torch.no_grad():
        before = base.logits(ids, am)  # [b, l, V]
        base.model = PeftModel.from_pretrained(base.model, str(run_dir / "final")).eval()
        with_adapter = base.logits(ids, am)  # [b, l, V] base + adapter, unmerged
        after = merged.logits(ids, am)  # [b, l, V]
    rows = am.bool()
    torch.testing.assert_close(after[rows], with_adapter[rows], atol=1e-5, rtol=1e-4)
    assert (after[rows] - before[rows]).abs().max() > 1e-4  # the two steps changed the model


def test_soft_masking_training_targets_llada2s_fused_attention(tmp_path: Path, one_thread) -> None:
    """train-sm's default DoRA targets name q/k/v/o; LLaDA2 fuses them (query_key_value, dense)."""
    import json

    from masktax.training.finetune.lora import present_targets
    from masktax.training.soft_masking.config import SMConfig

    base_dir = tiny_family_checkpoint("llada2_moe", tmp_path / "base")
    assert present_targets(load(base_dir).model, SMConfig().lora_targets) == ("query_key_value", "dense")
    cfg_file = tmp_path / "sm.json"
    cfg_file.write_text(json.dumps({"init_from": str(base_dir), "stage": "S0", "batch_size": 2, "warmup_steps": 1,
                                    "log_every": 1, "answer_focus_share": 0.5, "tuning": "dora"}))
    assert main(["train-sm", "--config", str(cfg_file), "--out", str(tmp_path / "sm"), "--max-steps", "2",
                 "--p-sm", "1.0", "--device", "cpu", "--no-progress"]) == 0
    assert (tmp_path / "sm" / "final" / "soft_mask.json").is_file()
