"""The newer families through masktax's probe path: tiny random checkpoints over the tests' tokenizer.

Each family (MMaDA, LLaDA-MoE, LLaDA2, SDAR, SDAR-MoE, Fast-dLLM v2) is built natively with random weights
(2 layers, hidden 32, a few experts), saved with the tiny word-level tokenizer and read back by
`masktax.models.load`. The probes' engine must score padded batches exactly as single items, every
probe must run end to end on every family (one run per probe, all families in it), and every
sampler that applies must decode on each from the command line.
"""

from __future__ import annotations

import json

import pytest
import torch
from tiny import tiny_tokenizer

from masktax.cli.main import main
from masktax.models import load
from masktax.models.fast_dllm_v2 import Fast_dLLM_QwenForCausalLM, FastDLLMQwenConfig
from masktax.models.llada import LLaDAConfig
from masktax.models.llada2 import LLaDA2MoeConfig, LLaDA2MoeModelLM
from masktax.models.llada_moe import LLaDAMoEConfig, LLaDAMoEModelLM
from masktax.models.mmada import MMadaModelLM
from masktax.models.sdar import SDARConfig, SDARForCausalLM
from masktax.models.sdar_moe import SDARMoeConfig, SDARMoeForCausalLM
from masktax.probes.engine import ProbeItem, score_items

SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)


def build(family: str, vocab: int, mask: int):
    if family == "mmada":
        return MMadaModelLM(LLaDAConfig(d_model=32, n_heads=4, n_kv_heads=2, n_layers=2, mlp_hidden_size=48,
                                        vocab_size=vocab, embedding_size=vocab, rope_theta=10000.0, mask_token_id=mask))
    if family == "lladamoe":
        return LLaDAMoEModelLM(LLaDAMoEConfig(**SIZES, vocab_size=vocab, dense_intermediate_size=48,
                                              expert_intermediate_size=16, shared_expert_intermediate_size=16,
                                              num_experts=4, num_experts_per_tok=2, moe_layer_freq=[0, 1],
                                              qk_layernorm=True, rope_theta=10000.0, partial_rotary_factor=1.0,
                                              mask_token_id=mask))
    if family == "llada2_moe":
        return LLaDA2MoeModelLM(LLaDA2MoeConfig(**SIZES, vocab_size=vocab, intermediate_size=48,
                                                moe_intermediate_size=16, num_experts=8, num_shared_experts=1,
                                                n_group=4, topk_group=2, first_k_dense_replace=1, block_size=8,
                                                mask_token_id=mask))
    if family == "sdar":
        return SDARForCausalLM(SDARConfig(**SIZES, vocab_size=vocab, intermediate_size=48, head_dim=8,
                                          block_size=4, mask_token_id=mask))
    if family == "sdar_moe":
        return SDARMoeForCausalLM(SDARMoeConfig(**SIZES, vocab_size=vocab, intermediate_size=48, head_dim=8,
                                                moe_intermediate_size=16, num_experts=4, num_experts_per_tok=2,
                                                norm_topk_prob=True, mlp_only_layers=[0], block_size=4,
                                                mask_token_id=mask))
    return Fast_dLLM_QwenForCausalLM(FastDLLMQwenConfig(**SIZES, vocab_size=vocab, intermediate_size=48,
                                                        bd_size=8, mask_token_id=mask))


FAMILIES = ("mmada", "lladamoe", "llada2_moe", "sdar", "sdar_moe", "fast_dllm_v2")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    tok = tiny_tokenizer()
    root = tmp_path_factory.mktemp("families")
    paths = {}
    for i, family in enumerate(FAMILIES):
        model = build(family, len(tok), tok.mask_token_id)
        model.reset_parameters(seed=i)
        model.save_pretrained(root / family)
        tok.save_pretrained(root / family)
        paths[family] = root / family
    return paths


@pytest.mark.parametrize("family", FAMILIES)
def test_padded_batches_score_as_single_items(family, checkpoints):
    lm = load(checkpoints[family])
    assert lm.extra["family"] == family and lm.mask_id == tiny_tokenizer().mask_token_id
    g = torch.Generator().manual_seed(1)
    items = []
    for i in range(6):
        length = 30 + 3 * i
        ids = torch.randint(3, 1000, (length,), generator=g).tolist()
        answer_pos = length - 1 - (i % 4)
        ids[answer_pos] = lm.mask_id
        items.append(ProbeItem(model="m", series="s", x=0, dataset="d", index=i, ids=tuple(ids),
                               answer_pos=answer_pos, answer_id=5, letter_ids=(5, 6, 7)))
    alone = {r["index"]: r for batch in score_items(lm, items, batch_size=1) for r in batch}
    for r in (r for batch in score_items(lm, items, batch_size=len(items)) for r in batch):
        assert r["pred_id"] == alone[r["index"]]["pred_id"]
        assert r["p_answer"] == pytest.approx(alone[r["index"]]["p_answer"], rel=1e-4, abs=1e-7)


def test_masks_probe_end_to_end_on_a_block_causal_model(checkpoints, tmp_path):
    out = tmp_path / "run"
    model = str(checkpoints["sdar"])
    assert main(["probe", "masks", "--out", str(out), "--n-items", "2", "--datasets", "country__smallest",
                 "--no-progress", "--model", model, "--grid", "0,1,10"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [p["x"] for p in summary["models"][model]] == [0, 1, 10]
    env = json.loads((out / "env.json").read_text())
    assert env["models"][model]["kind"] == "mdlm" and env["models"][model]["block_size"] == 4
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert items and all("answer_pos" in it for it in items)  # with block_size: the answer's offset in its block


@pytest.mark.parametrize(("offset", "grid"), [(0, "0,3,10"), (3, "0,10")])
def test_masks_probe_places_the_answer_in_its_block(checkpoints, tmp_path, offset, grid):
    """--block-offset o puts every answer at offset o of its block (SDAR here, B = 4): the masks after
    the block's end are invisible, so the answer's probabilities stop changing at x = B - 1 - o."""
    out = tmp_path / "run"
    model = str(checkpoints["sdar"])
    assert main(["probe", "masks", "--out", str(out), "--n-items", "3", "--datasets", "country__smallest",
                 "--no-progress", "--model", model, "--grid", grid, "--block-offset", str(offset)]) == 0
    assert json.loads((out / "config.json").read_text())["options"]["block_offset"] == offset
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert items and all(it["answer_pos"] % 4 == offset for it in items)
    p = {(it["x"], it["index"]): it["p_answer"] for it in items}
    last, edge = int(grid.split(",")[-1]), 3 - offset
    for index in range(3):
        assert p[(last, index)] == pytest.approx(p[(edge, index)], abs=1e-6)  # later blocks cost nothing
    if edge:
        assert any(p[(0, i)] != pytest.approx(p[(edge, i)], abs=1e-6) for i in range(3))  # the block's masks do


def test_card_names_load_from_the_hub_cache_without_flags(checkpoints, tmp_path, monkeypatch):
    """`load("JetLM/SDAR-4B-Chat")` finds the snapshot in the local Hugging Face cache (a fake one here)
    and needs no flags: family, mask id, block size from the card and the config."""
    import shutil

    import huggingface_hub.constants

    snap = tmp_path / "hub" / "models--JetLM--SDAR-4B-Chat" / "snapshots" / ("0" * 40)
    shutil.copytree(checkpoints["sdar"], snap)  # the tiny tokenizer; a vocabulary that holds the card's mask id
    model = SDARForCausalLM(SDARConfig(**SIZES, vocab_size=151680, intermediate_size=48, head_dim=8,
                                       tie_word_embeddings=True))
    model.reset_parameters(seed=0)
    model.save_pretrained(snap)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lm = load("JetLM/SDAR-4B-Chat")
    assert (lm.name, lm.extra["family"], lm.mask_id, lm.block_size) == ("JetLM/SDAR-4B-Chat", "sdar", 151669, 4)


def test_filler_probe_takes_block_offset_too(checkpoints, tmp_path):
    out = tmp_path / "run"
    assert main(["probe", "filler", "--out", str(out), "--n-items", "1", "--datasets", "country__smallest",
                 "--no-progress", "--model", str(checkpoints["llada2_moe"]), "--grid", "0,20",
                 "--block-offset", "7"]) == 0
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert all(it["answer_pos"] % 8 == 7 for it in items)
    assert items[0]["p_answer"] == pytest.approx(items[1]["p_answer"], abs=1e-6)  # no filler is visible


# probe -> flags that keep its run small (tiny models, one test point of one dataset)
SMALL = {
    "accuracy": (), "masks": ("--grid", "0,2"), "filler": ("--grid", "0,2"), "uncertainty": ("--grid", "0,2"),
    "format": ("--grid", "0,10", "--kinds", "masks", "--closures", "none"), "locality": ("--grid", "0,40"),
    "query-position": (), "context-length": ("--grid", "0,10"), "unmask": ("--grid", "0,3", "--steps", "2"),
    "attribution": ("--n-masks", "3", "--orderings", "1", "--questions", "1"),
}


@pytest.mark.parametrize("probe", list(SMALL))
def test_every_probe_runs_on_every_family(probe, checkpoints, tmp_path):
    from masktax.probes import PROBES

    assert set(SMALL) == set(PROBES)  # a new probe gets a row here
    out = tmp_path / probe
    models = [a for family in FAMILIES for a in ("--model", str(checkpoints[family]))]
    assert main(["probe", probe, "--out", str(out), "--n-items", "1", "--datasets", "country__smallest",
                 "--no-progress", *models, *SMALL[probe]]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["state"] == "complete"
    assert (out / "report.md").read_text().count("\n") > 5


@pytest.mark.parametrize("family", FAMILIES)
def test_every_sampler_decodes_every_family(family, checkpoints, capsys):
    from masktax.samplers import BLOCK_SAMPLER, SAMPLERS

    lm = load(checkpoints[family])
    samplers = [s for s in SAMPLERS if s != BLOCK_SAMPLER or lm.block_size is not None]
    for sampler in ["auto", *samplers]:
        block = sampler == BLOCK_SAMPLER or (sampler == "auto" and lm.block_size is not None)
        steps = ["--steps-per-block", "2"] if block else ["--steps", "4", "--block-length", "4"]
        code = main(["generate", "--model", str(checkpoints[family]), "--prompt", "Options: (A) cat",
                     "--sampler", sampler, "--gen-length", "8", *steps])
        out, err = capsys.readouterr()
        assert code == 0, (sampler, err)
        assert "tokens/s" in err
