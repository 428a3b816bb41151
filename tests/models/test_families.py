"""The newer native families (MMaDA, LLaDA-MoE, LLaDA2, SDAR, SDAR-MoE, Fast-dLLM v2) against their PUBLISHED code's logits.

tests/models/fixtures/<family>/ holds a tiny random checkpoint that the family's published modeling
code saved, and that code's logits for a fixed input (scripts/make_family_fixtures.py made them, in a
throwaway transformers-4.57 environment). Here `masktax.models.load` reads the same checkpoint and
must give the same logits; plus padding (left and right) and batching equal the unpadded rows,
`inputs_embeds` and `logits_to_keep` agree, and block-causal attention hides later blocks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from masktax.errors import MasktaxError
from masktax.models import load
from masktax.models.fast_dllm_v2 import Fast_dLLM_QwenForCausalLM
from masktax.models.llada2 import LLaDA2MoeModelLM
from masktax.models.llada_moe import LLaDAMoEModelLM
from masktax.models.mmada import MMadaModelLM
from masktax.models.moe import grouped_sigmoid_topk, run_experts, softmax_topk
from masktax.models.sdar import SDARForCausalLM
from masktax.models.sdar_moe import SDARMoeForCausalLM

FIXTURES = Path(__file__).parent / "fixtures"
FAMILIES = {"mmada": MMadaModelLM, "lladamoe": LLaDAMoEModelLM, "llada2_moe": LLaDA2MoeModelLM,
            "sdar": SDARForCausalLM, "sdar_moe": SDARMoeForCausalLM, "fast_dllm_v2": Fast_dLLM_QwenForCausalLM}
SHIFTED = {"fast_dllm_v2"}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request):
    name = request.param
    return name, load(FIXTURES / name, device="cpu"), load_file(str(FIXTURES / name / "reference.safetensors"))


def test_matches_published_logits(family):
    name, lm, ref = family
    assert isinstance(lm.model, FAMILIES[name]) and lm.extra["family"] == name
    assert (lm.kind, lm.shift) == ("mdlm", name in SHIFTED)
    with torch.no_grad():
        got = lm.model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).logits  # [2, L, V] raw
    real = ref["attention_mask"].bool()
    torch.testing.assert_close(got[real], ref["logits"][real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_equals_unbatched(family, side):
    _, lm, ref = family
    ids = ref["input_ids"]
    short = ids[1, :11]
    pad = torch.ones(ids.shape[1] - short.shape[0], dtype=torch.long)
    row = torch.cat([pad, short]) if side == "left" else torch.cat([short, pad])
    batch = torch.stack([ids[0], row])  # [2, L]
    mask = (torch.arange(ids.shape[1]) >= pad.shape[0]) if side == "left" else (torch.arange(ids.shape[1]) < 11)
    mask = torch.stack([torch.ones_like(mask), mask]).long()
    with torch.no_grad():
        out = lm.logits(batch, mask)
        first = int(lm.shift)  # aligned position 0 predicts nothing (its shifted logits come from a pad)
        torch.testing.assert_close(out[1, mask[1].bool()][first:], lm.logits(short[None])[0, first:], atol=1e-5,
                                   rtol=1e-5)
        torch.testing.assert_close(out[0], lm.logits(ids[:1])[0], atol=1e-5, rtol=1e-5)


def test_embeds_and_logits_to_keep(family):
    _, lm, ref = family
    ids, mask = ref["input_ids"], ref["attention_mask"]
    with torch.no_grad():
        full = lm.logits(ids, mask)
        torch.testing.assert_close(lm.logits_from_embeds(lm.embed(ids), mask), full)
        pos = torch.tensor([19, 7])
        torch.testing.assert_close(lm.logits_at(ids, pos, mask), full[torch.arange(2), pos], atol=1e-5, rtol=1e-5)
    assert lm.extra.get("logits_to_keep", True)


def test_save_pretrained_round_trip(family, tmp_path):
    name, lm, ref = family
    lm.model.save_pretrained(tmp_path)
    again = FAMILIES[name].from_pretrained(tmp_path)
    ids = ref["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids).logits, lm.model(input_ids=ids).logits, atol=0, rtol=0)
    published = json.loads((FIXTURES / name / "config.json").read_text())
    saved = json.loads((tmp_path / "config.json").read_text())
    assert {k: v for k, v in published.items() if k not in ("dtype", "torch_dtype")}.items() <= saved.items()


BLOCKS = {"mmada": None, "lladamoe": None, "llada2_moe": 8, "sdar": 4, "sdar_moe": 4, "fast_dllm_v2": 8}


def test_block_size_is_an_attribute_of_the_loaded_model(family):
    """`LoadedModel.block_size` (None: not block-causal), not an `extra` entry; env.json records it as before."""
    from masktax.models.loaded import LoadedModel
    from masktax.results.env import model_provenance

    name, lm, _ = family
    assert lm.block_size == BLOCKS[name] and "block_size" not in lm.extra
    assert model_provenance(lm).get("block_size") == BLOCKS[name]
    if BLOCKS[name]:
        with pytest.raises(ValueError, match="block_size"):
            LoadedModel(**{**lm.__dict__, "block_size": 0})


@pytest.mark.parametrize(("name", "block"), [("llada2_moe", 8), ("sdar", 4), ("sdar_moe", 4), ("fast_dllm_v2", 8)])
def test_block_causal_hides_later_blocks(name, block):
    """Changing tokens in a later block leaves earlier blocks' logits exactly as they were."""
    lm = load(FIXTURES / name)
    assert lm.block_size == block
    ids = load_file(str(FIXTURES / name / "reference.safetensors"))["input_ids"][:1]
    other = ids.clone()
    other[0, 2 * block:] = 5  # blocks 2, 3, ...
    earlier = ids.clone()
    earlier[0, 1] = 5  # block 0
    with torch.no_grad():
        base, late, early = lm.logits(ids), lm.logits(other), lm.logits(earlier)
    seen = 2 * block + int(lm.shift)  # aligned logits at i come from raw position i - 1
    torch.testing.assert_close(late[:, :seen], base[:, :seen], atol=0, rtol=0)
    assert not torch.allclose(early[:, block:], base[:, block:])  # later blocks see earlier ones


def test_routers_and_batched_experts_against_loops():
    """The routers and the sorted expert pass against plain per-token loops (float64)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 6, generator=g, dtype=torch.float64)
    experts = torch.nn.ModuleList(torch.nn.Linear(6, 6).double() for _ in range(8))
    logits = torch.randn(7, 8, generator=g, dtype=torch.float64)
    bias = torch.randn(8, generator=g, dtype=torch.float64) * 0.1
    w, ids = grouped_sigmoid_topk(logits, 3, bias, n_group=4, topk_group=2, scale=2.5)
    for t in range(7):
        s = torch.sigmoid(logits[t])
        groups = sorted(range(4), key=lambda j: -float((s + bias)[2 * j:2 * j + 2].sum()))[:2]
        allowed = [e for e in range(8) if e // 2 in groups]
        best = sorted(allowed, key=lambda e: -float(s[e] + bias[e]))[:3]
        assert sorted(ids[t].tolist()) == sorted(best)
        torch.testing.assert_close(w[t].sum(), torch.tensor(2.5, dtype=w.dtype))
    w2, ids2 = softmax_topk(logits, 2, bias)
    torch.testing.assert_close(w2, torch.topk(torch.softmax(logits.float(), -1) + bias.float(), 2).values)
    w3, ids3 = softmax_topk(logits, 2, None, norm=True)  # SDAR-MoE (Qwen3-MoE): renormalised, no bias
    top = torch.topk(torch.softmax(logits.float(), -1), 2)
    torch.testing.assert_close(w3, top.values / top.values.sum(-1, keepdim=True))
    assert torch.equal(ids3, top.indices)
    y = run_experts(x, ids, w, experts)
    want = torch.stack([sum(w[t, j] * experts[int(ids[t, j])](x[t]) for j in range(3)) for t in range(7)])
    torch.testing.assert_close(y, want)


def test_llada_moe_published_model_type_is_detected(tmp_path):
    """LLaDA-MoE's Hub config.json says model_type "llada" (dllm asks users to edit it); its MoE fields decide."""
    import shutil

    shutil.copytree(FIXTURES / "lladamoe", tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["model_type"] = "llada"
    config.pop("architectures")
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    assert isinstance(load(tmp_path / "m").model, LLaDAMoEModelLM)


def test_cards_of_the_new_families():
    from masktax.models.cards import MODEL_CARDS
    from masktax.models.catalog import models_table

    want = {"lladamoe": 156895, "llada2_moe": 156895, "mmada": 126336, "sdar": 151669, "sdar_moe": 151669,
            "fast_dllm_v2": 151665}
    for family, mask in want.items():
        cards = [c for c in MODEL_CARDS.values() if c.family == family]
        assert cards and all(c.mask_id == mask and c.shift == (family in SHIFTED) and c.hf_id for c in cards)
    table = models_table()
    assert "inclusionAI/LLaDA2.0-mini" in table and "JetLM/SDAR-8B-Chat" in table and "Gen-Verse/MMaDA-8B-Base" in table
    assert "JetLM/SDAR-30B-A3B-Chat" in table and "JetLM/SDAR-8B-Chat-b32" in table


def test_published_4d_masks():
    """The published samplers' own 4-D masks: LLaDA2's additive log(tril) in bf16, SDAR's 0/1 floats."""
    for name, block in (("llada2_moe", 8), ("sdar", 4), ("sdar_moe", 4)):
        lm = load(FIXTURES / name)
        ids = load_file(str(FIXTURES / name / "reference.safetensors"))["input_ids"][:1]
        blk = torch.arange(ids.shape[1]) // block
        tril = (blk[None, :] <= blk[:, None]).float()[None, None]  # [1, 1, L, L]
        given = tril.log().to(torch.bfloat16) if name == "llada2_moe" else tril
        with torch.no_grad():
            torch.testing.assert_close(lm.model(input_ids=ids, attention_mask=given).logits,
                                       lm.model(input_ids=ids).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("card", "fixture", "block"), [
    ("JetLM/SDAR-30B-A3B-Chat", "sdar_moe", 4), ("JetLM/SDAR-30B-A3B-Chat-b32", "sdar_moe", 32),
    ("JetLM/SDAR-8B-Chat", "sdar", 4), ("JetLM/SDAR-8B-Chat-b64", "sdar", 64)])
def test_card_block_size_reaches_the_loaded_model(card, fixture, block, monkeypatch):
    """SDAR's -bN checkpoints state their block size only in their name: the card carries it to the model."""
    import importlib

    load_module = importlib.import_module("masktax.models.load")
    monkeypatch.setattr(load_module, "resolve_path", lambda name, card, revision=None: FIXTURES / fixture)
    lm = load(card, mask_token_id=2)  # the card's 151669 is outside the fixture's 64 tokens
    assert lm.name == card and lm.extra["family"] == fixture
    assert lm.block_size == lm.model.block_size == block
    ids = load_file(str(FIXTURES / fixture / "reference.safetensors"))["input_ids"][:1]
    blk = torch.arange(ids.shape[1]) // block
    tril = (blk[None, :] <= blk[:, None])[None, None]  # [1, 1, L, L]
    with torch.no_grad():
        torch.testing.assert_close(lm.model(input_ids=ids).logits, lm.model(input_ids=ids, attention_mask=tril).logits,
                                   atol=1e-5, rtol=1e-5)


def test_sdar_moe_layers_as_the_published_config_chooses():
    """Layer i is MoE iff i is not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0; else a dense SwiGLU."""
    from masktax.models.moe import SwiGLU
    from masktax.models.sdar_moe import SDARMoeSparseMoeBlock

    sizes = dict(vocab_size=64, hidden_size=16, intermediate_size=24, moe_intermediate_size=8, num_hidden_layers=6,
                 num_attention_heads=2, num_key_value_heads=1, num_experts=4, num_experts_per_tok=2)
    model = SDARMoeForCausalLM.from_config_dict({**sizes, "decoder_sparse_step": 2, "mlp_only_layers": [3]})
    kinds = [isinstance(layer.mlp, SDARMoeSparseMoeBlock) for layer in model.model.layers]
    assert kinds == [False, True, False, False, False, True]
    assert all(isinstance(layer.mlp, SwiGLU) for layer, moe in zip(model.model.layers, kinds, strict=True) if not moe)
    assert model.model.layers[0].self_attn.q_proj.out_features == 16  # head_dim absent: hidden / heads
    with pytest.raises(MasktaxError, match="num_experts_per_tok"):
        SDARMoeForCausalLM.from_config_dict({**sizes, "num_experts_per_tok": 5})


def test_sdar_moe_reads_the_published_shard_layout(tmp_path):
    """SDAR-30B-A3B-Chat's index maps each layer to `layer-N-ep-0-of-1.safetensors` and the rest to
    `others.safetensors`; the loader follows the index whatever the shards are called."""
    import shutil

    from safetensors.torch import save_file

    src = FIXTURES / "sdar_moe"
    tensors = load_file(str(src / "model.safetensors"))
    shard = {k: (f"layer-{k.split('.')[2]}-ep-0-of-1.safetensors" if k.startswith("model.layers.") else "others.safetensors")
             for k in tensors}
    (tmp_path / "m").mkdir()
    for name in set(shard.values()):
        save_file({k: v for k, v in tensors.items() if shard[k] == name}, str(tmp_path / "m" / name))
    (tmp_path / "m" / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": shard}))
    shutil.copy(src / "config.json", tmp_path / "m" / "config.json")
    ref = load_file(str(src / "reference.safetensors"))
    with torch.no_grad():
        got = load(tmp_path / "m").model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).logits
        whole = load(src).model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).logits
    real = ref["attention_mask"].bool()
    assert torch.equal(got[real], whole[real])  # the same weights, read from the shards
    torch.testing.assert_close(got[real], ref["logits"][real], atol=1e-5, rtol=1e-5)  # the thread count rounds
