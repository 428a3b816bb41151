"""Batched (padded) scoring equals unbatched scoring for EVERY family masktax loads.

Each family is a tiny random checkpoint saved with its own classes and read back through
`masktax.models.load` (so the loader's choices, such as RoBERTa's positions counted from
`padding_idx + 1`, are what is tested). Items of different lengths, with the answer position at
different places, are scored by the probes' engine with `--batch-size 1` and with batches padded
to the longest item: the predictions must be identical and the probabilities equal to float noise.
"""

from __future__ import annotations

import pytest
import torch
from tiny import (
    save_tiny_checkpoint,
    tiny_diffusion_gemma,
    tiny_dream,
    tiny_llada,
    tiny_llama_ar,
    tiny_tokenizer,
)

from masktax.models import load
from masktax.probes.engine import ProbeItem, score_items

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


def hf_model(family: str, tok):
    """A tiny random transformers model of `family` over the tiny tokenizer (seeded)."""
    import transformers as tf

    vocab, pad, eos = len(tok), tok.pad_token_id, tok.eos_token_id
    builds = {
        "bert": lambda: tf.BertForMaskedLM(tf.BertConfig(vocab_size=vocab, pad_token_id=pad, max_position_embeddings=128,
                                                         **SMALL)),
        "roberta": lambda: tf.RobertaForMaskedLM(tf.RobertaConfig(
            vocab_size=vocab, pad_token_id=pad, bos_token_id=eos, eos_token_id=eos,
            max_position_embeddings=128 + pad + 1, **SMALL)),
        "modernbert": lambda: tf.ModernBertForMaskedLM(tf.ModernBertConfig(
            vocab_size=vocab, pad_token_id=pad, bos_token_id=eos, eos_token_id=eos, cls_token_id=eos, sep_token_id=eos,
            max_position_embeddings=128, global_attn_every_n_layers=2, local_attention=16, **SMALL)),
        "qwen2": lambda: tf.Qwen2ForCausalLM(tf.Qwen2Config(vocab_size=vocab, pad_token_id=pad, eos_token_id=eos,
                                                            num_key_value_heads=2, max_position_embeddings=128, **SMALL)),
        "gpt2": lambda: tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4,
                                                         n_positions=128, pad_token_id=pad, eos_token_id=eos,
                                                         bos_token_id=eos)),
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return builds[family]().eval()


def tiny_sdar_moe(tok):
    """Native SDAR-MoE over the tiny tokenizer (seeded): a dense and a MoE layer, block-causal (blocks of 4)."""
    from masktax.models.sdar_moe import SDARMoeForCausalLM

    model = SDARMoeForCausalLM.from_config_dict(dict(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, norm_topk_prob=True,
        mlp_only_layers=[0], max_position_embeddings=4096, mask_token_id=tok.mask_token_id))
    model.reset_parameters(0)
    return model.eval()


NATIVE = {"llada": tiny_llada, "dream": tiny_dream, "diffusion_gemma": tiny_diffusion_gemma, "llama": tiny_llama_ar}


def build(family: str, tok):
    if family == "sdar_moe":
        return tiny_sdar_moe(tok)
    return NATIVE[family](seed=0) if family in NATIVE else hf_model(family, tok)


KINDS = {"llada": "mdlm", "dream": "mdlm", "diffusion_gemma": "uniform", "bert": "mdlm", "roberta": "mdlm",
         "modernbert": "mdlm", "llama": "ar", "qwen2": "ar", "gpt2": "ar", "sdar_moe": "mdlm"}


def items_for(lm, n: int = 8) -> list[ProbeItem]:
    """n items of lengths 30..44 (within the engine's padding slack), answer positions varying; a
    uniform-noise model's canvas is the tail from the answer position."""
    g = torch.Generator().manual_seed(1)
    items = []
    for i in range(n):
        length = 30 + 2 * i
        ids = torch.randint(3, 1000, (length,), generator=g).tolist()
        answer_pos = length - 1 - (i % 4)
        if lm.mask_id is not None:
            ids[answer_pos] = lm.mask_id
        items.append(ProbeItem(model="m", series="s", x=0, dataset="d", index=i, ids=tuple(ids),
                               answer_pos=answer_pos, answer_id=5, letter_ids=(5, 6, 7)))
    return items


@pytest.mark.parametrize("family", list(KINDS))
def test_padded_batches_score_as_single_items(family, tmp_path):
    tok = tiny_tokenizer()
    lm = load(save_tiny_checkpoint(build(family, tok), tok, tmp_path / family), device="cpu")
    assert lm.kind == KINDS[family]
    items = items_for(lm)
    alone = [r for batch in score_items(lm, items, batch_size=1) for r in batch]
    batched = [r for batch in score_items(lm, items, batch_size=len(items)) for r in batch]
    assert len(batched) == len(alone) == len(items)
    by_index = {r["index"]: r for r in batched}
    for r in alone:
        b = by_index[r["index"]]
        assert b["pred_id"] == r["pred_id"], (family, r["index"])
        assert b["p_answer"] == pytest.approx(r["p_answer"], rel=1e-4, abs=1e-7)
        assert b["entropy"] == pytest.approx(r["entropy"], rel=1e-4)
