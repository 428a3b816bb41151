"""The three embedded families share one function: the Dream-like MDLM starts as the AR twin."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.training.pretrain.build import build_model
from masktax.training.pretrain.config import ModelSpec, PretrainConfig

REPO = Path(__file__).resolve().parents[3]
SPEC = ModelSpec(d_model=64, n_layers=1, n_heads=4, n_kv_heads=2, d_ff=96, rope_theta=500.0)


def _build(**kw):
    return build_model(PretrainConfig(model=SPEC, **kw), vocab=50, mask_id=2, eos_id=1)


def test_dream_like_from_ar_equals_ar_at_last_position(tmp_path):
    ar = _build(objective="ar")
    ar.save_pretrained(tmp_path)
    dream = _build(shift=True, init_from=str(tmp_path))
    x = torch.randint(3, 50, (2, 12))
    with torch.no_grad():
        a = ar(input_ids=x).logits  # [b, l, V] causal
        d = dream(input_ids=x).logits  # [b, l, V] bidirectional, raw (unshifted)
    # one layer: the last position attends to everything in both, so the functions agree there
    assert torch.allclose(a[:, -1], d[:, -1], atol=1e-5)
    assert not torch.allclose(a[:, 0], d[:, 0], atol=1e-3)  # earlier positions see the future


def test_same_seed_same_init_and_parameter_counts():
    a, b = _build(), _build()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in
              {"llada": _build(), "ar": _build(objective="ar"), "dream": _build(shift=True)}.items()}
    qkv_bias = 64 + 2 * 32  # Dream's q/k/v biases (GQA: 2 kv heads of 16)
    assert counts["llada"] == counts["ar"] == counts["dream"] - qkv_bias


def test_init_from_accepts_a_shipped_embedded_name(tmp_path):
    from safetensors.torch import load_file

    from masktax.models import load
    from masktax.training.pretrain.build import load_init

    ar = load("embedded-ar", device="cpu")
    out = tmp_path / "run"
    args = ["pretrain", "--config", str(REPO / "configs" / "embedded" / "cpu" / "mdlm_dream.json"), "--out", str(out),
            "--max-steps", "1", "--no-progress", "--device", "cpu"]
    assert main([*args, "--init-from", "embedded-ar"]) == 0
    # after one step the weights are still the AR twin's (bf16 export), not a random init
    weights = load_file(str(out / "final" / "model.safetensors"))
    key = next(k for k in weights if "embed_tokens" in k)
    emb = ar.embedding_weight().float()
    assert (weights[key].float() - emb).abs().max() < 0.05 < emb.abs().max()
    with pytest.raises(MasktaxError, match="unknown model 'embedded-mdlm-nope'"):
        load_init(ar.model, "embedded-mdlm-nope")
