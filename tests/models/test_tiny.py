"""`masktax.models.tiny`: one builder per family over shared dimensions, seeded inits, the demo's stand-ins."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tiny import tiny_tokenizer

from masktax.models import load
from masktax.models import tiny as builders


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_families_share_their_dimensions():
    tok = tiny_tokenizer()
    dims = builders.Dims(hidden=48, layers=3, heads=6, kv_heads=3, ffn=80, context=256)
    llada, dream, llama = (f(tok, dims=dims) for f in (builders.tiny_llada, builders.tiny_dream, builders.tiny_llama))
    assert (llada.config.d_model, llada.config.n_layers, llada.config.mlp_hidden_size) == (48, 3, 80)
    assert (dream.config.hidden_size, dream.config.num_key_value_heads, dream.config.max_position_embeddings) == (48, 3, 256)
    assert (llama.config.num_attention_heads, llama.config.intermediate_size) == (6, 80)
    qkv_bias = 3 * (48 + 2 * 24)  # Dream's q/k/v biases (3 layers; 3 KV heads of 8)
    assert _n_params(llada) == _n_params(llama) == _n_params(dream) - qkv_bias


def test_seeded_inits_are_reproducible_and_leave_the_global_rng_alone():
    tok = tiny_tokenizer()
    for build in (builders.tiny_llada, builders.tiny_dream, builders.tiny_llama):
        a, b, c = build(tok, seed=1), build(tok, seed=1), build(tok, seed=2)
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
        assert not torch.equal(next(iter(a.state_dict().values())), next(iter(c.state_dict().values())))
        assert not a.training
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    builders.seeded(lambda: torch.nn.Linear(4, 4), seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_stand_ins_are_seeded_loadable_and_kept(tmp_path):
    paths = builders.build_stand_ins(tmp_path / "a", seed=0)
    assert [Path(p).name for p in paths] == ["random-llada", "random-dream", "random-llama-ar"]
    kinds = [(m.kind, m.shift) for m in (load(p, device="cpu") for p in paths)]
    assert kinds == [("mdlm", False), ("mdlm", True), ("ar", True)]
    again = builders.build_stand_ins(tmp_path / "b", seed=0)
    other = builders.build_stand_ins(tmp_path / "c", seed=1)
    for p, q, r in zip(paths, again, other, strict=True):
        weights = (Path(p) / "model.safetensors").read_bytes()
        assert weights == (Path(q) / "model.safetensors").read_bytes()
        assert weights != (Path(r) / "model.safetensors").read_bytes()
    # LLaDA's published rope_theta (the stand-ins have always used it); the others 10000
    assert json.loads((Path(paths[0]) / "config.json").read_text())["rope_theta"] == 500000.0
    stamp = (Path(paths[0]) / "model.safetensors").stat().st_mtime_ns
    builders.build_stand_ins(tmp_path / "a", seed=7)  # already there: kept as they are
    assert (Path(paths[0]) / "model.safetensors").stat().st_mtime_ns == stamp
